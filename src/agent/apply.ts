import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Logger } from "../log.js";
import {
  allocationTypes,
  changeset,
  checkAllocations,
  currentValue,
  wantedValue,
  type Allocation,
  type AllocationType,
  type Allocator,
  type Change,
  type CpuManagerPolicy,
  type NodeFacts,
  type RefusalReason,
} from "./allocator.js";
import {
  cgroupDir,
  containerCgroupPath,
  type CgroupLayout,
  type CgroupReader,
  type TaskAllocationState,
  type TaskSample,
} from "./cgroups.js";
import { formatCpuList, parseCpuList } from "./kernel.js";
import type { Task } from "./tasks.js";

/**
 * Applying allocations to pod cgroups, every iteration: read back, decide, check, write only
 * what differs, read back again to confirm. The kubelet rewrites pod cgroups on its own sync,
 * so a value it reverted shows up as a difference and is written again; nothing is remembered
 * between iterations except what the kernel holds.
 *
 * A cpu quota goes on the pod's cgroup and on each of its containers' cgroups: every container
 * keeps its own quota (its cpu limit), so a pod quota alone could not raise what a container
 * gets, and on cgroup v1 the kernel refuses a pod quota below a container's. The order keeps
 * every step valid on v1: lowering writes the containers first, raising the pod first. A
 * container whose cgroup is not found refuses the quota rather than reporting a pod-only write
 * as done. cpusets go down the tree the same way (writeCpusetTree); shares stay on the pod,
 * where they weigh the pod against its siblings.
 */

/** AllocationOutcome: what happened to one knob of one pod this iteration. */
export type AllocationOutcome = "unchanged" | "updated" | "refused" | "failed";

/** CgroupWrite is what happened to one cgroup (the pod's or a container's) for one knob. */
export interface CgroupWrite {
  /** path is the cgroup, relative to the hierarchy root. */
  path: string;
  from: string;
  to: string;
  /** outcome: not-attempted when an earlier step of the safe order failed. */
  outcome: "unchanged" | "updated" | "failed" | "not-attempted";
  message?: string;
}

/** AllocationResult is one knob of one pod after an iteration. */
export interface AllocationResult {
  taskId: string;
  taskName: string;
  type: AllocationType;
  outcome: AllocationOutcome;
  /** value is the wanted value in the cgroup's units (µs quota, shares or weight, cpu list). */
  value?: string;
  reason?: RefusalReason | "write-failed" | "not-applied" | "container-cgroup-missing";
  message?: string;
  /** cgroups are the per-cgroup steps of a cpu quota, pod and containers, in the order taken. */
  cgroups?: CgroupWrite[];
}

/** ContainerQuota is a container cgroup's quota as read before writing. */
interface ContainerQuota {
  path: string;
  state: TaskAllocationState;
}

/** CpuManagerSettings say how to learn the kubelet's CPU manager policy. */
export interface CpuManagerSettings {
  policy: "auto" | "none" | "static";
  stateFile: string;
}

/** ApplierOptions configure AllocationApplier. */
export interface ApplierOptions {
  layout: CgroupLayout;
  reader: CgroupReader;
  allocator: Allocator;
  cpuManager: CpuManagerSettings;
  log: Logger;
}

/** AllocationApplier runs the allocator against the pods' cgroups; see the file comment. */
export class AllocationApplier {
  private readonly options: ApplierOptions;
  /** reported remembers the last refusal per knob, so the log says it once, not every iteration. */
  private reported = new Map<string, string>();

  constructor(options: ApplierOptions) {
    this.options = options;
  }

  /**
   * apply runs one allocation round over the tasks that have a cgroup sample. The samples of
   * written pods get the state read back after writing.
   */
  apply(tasks: readonly Task[], samples: ReadonlyMap<string, TaskSample>): AllocationResult[] {
    const { allocator, layout } = this.options;
    const live = tasks.filter((t) => samples.get(t.id)?.allocation !== undefined);
    const current = new Map<string, TaskAllocationState>();
    for (const t of live) current.set(t.id, samples.get(t.id)?.allocation ?? {});
    const decided = allocator.allocate({ tasks: live, current });
    const checked = checkAllocations(live, decided.allocations, this.nodeFacts(live, samples));
    const byId = new Map(live.map((t) => [t.id, t]));
    const results: AllocationResult[] = [];
    for (const r of [...decided.refusals, ...checked.refusals]) {
      results.push({ ...r, outcome: "refused" });
    }
    const changes = changeset(checked.allocations, current, layout.version);
    const changed = new Set(changes.map((c) => `${c.taskId}/${c.type}`));
    for (const [id, a] of checked.allocations) {
      const task = byId.get(id) as Task;
      const sample = samples.get(id) as TaskSample;
      for (const type of allocationTypes(a)) {
        if (type === "cpu_quota") results.push(this.applyQuota(task, sample, a));
        else if (!changed.has(`${id}/${type}`))
          results.push({ taskId: id, taskName: task.name, type, outcome: "unchanged" });
      }
    }
    for (const change of changes) {
      if (change.type === "cpu_quota") continue;
      const task = byId.get(change.taskId) as Task;
      const sample = samples.get(change.taskId) as TaskSample;
      results.push(this.write(task, sample, change));
    }
    this.logResults(results);
    return results;
  }

  /** nodeFacts gathers what the safety checks need: CPU manager policy, parents' cpus, quota floor. */
  private nodeFacts(tasks: readonly Task[], samples: ReadonlyMap<string, TaskSample>): NodeFacts {
    const { policy, source } = cpuManagerPolicy(this.options.cpuManager);
    const parentCpus = new Map<string, string>();
    const minQuotaCores = new Map<string, number>();
    const parents = new Map<string, string | undefined>();
    for (const t of tasks) {
      const sample = samples.get(t.id) as TaskSample;
      const parent = dirname(sample.path);
      if (!parents.has(parent)) parents.set(parent, this.effectiveCpus(parent));
      const cpus = parents.get(parent);
      if (cpus !== undefined) parentCpus.set(t.id, cpus);
      minQuotaCores.set(t.id, 1000 / (sample.allocation?.cpuPeriodUsec ?? 100000));
    }
    const current = new Map<string, TaskAllocationState>();
    for (const t of tasks) current.set(t.id, samples.get(t.id)?.allocation ?? {});
    return { cpuManager: policy, cpuManagerSource: source, parentCpus, minQuotaCores, current };
  }

  private effectiveCpus(path: string): string | undefined {
    const dir = cgroupDir(this.options.layout, "cpuset", path);
    if (dir === undefined) return undefined;
    const file = this.options.layout.version === "v2" ? "cpuset.cpus.effective" : "cpuset.effective_cpus";
    const text = readOptional(join(dir, file));
    const list = text === undefined ? undefined : parseCpuList(text);
    return list === undefined ? undefined : formatCpuList(list);
  }

  private write(task: Task, sample: TaskSample, change: Change): AllocationResult {
    const base = { taskId: task.id, taskName: task.name, type: change.type, value: change.to };
    try {
      this.writeKnob(sample, change);
    } catch (err) {
      const message = `writing ${change.type} ${change.to} to ${sample.path} failed: ${(err as Error).message}${this.hint(change.type, err)}`;
      return { ...base, outcome: "failed", reason: "write-failed", message };
    }
    const state = this.options.reader.readAllocation(sample.path);
    // The sample now says what the cgroup holds, so the metrics of this iteration show it.
    sample.allocation = state;
    const after = currentValue(change.type, state, this.options.layout.version);
    if (after !== change.to) {
      const message = `wrote ${change.type} ${change.to} to ${sample.path} but read back ${after || "nothing"}`;
      return { ...base, outcome: "failed", reason: "not-applied", message };
    }
    return { ...base, outcome: "updated", message: `${change.from || "(unset)"} -> ${change.to}` };
  }

  /**
   * applyQuota sets a cpu quota on the pod and its containers in the safe order (see the file
   * comment), writing only the cgroups that differ and reading each back.
   */
  private applyQuota(task: Task, sample: TaskSample, a: Allocation): AllocationResult {
    const { layout, reader } = this.options;
    const version = layout.version;
    const base = { taskId: task.id, taskName: task.name, type: "cpu_quota" as const };
    const podState = sample.allocation ?? {};
    const podTo = wantedValue("cpu_quota", a, podState, version);
    const containers = this.containerQuotas(task, sample);
    if (typeof containers === "string") {
      return {
        ...base,
        value: podTo,
        outcome: "refused",
        reason: "container-cgroup-missing",
        message: containers,
      };
    }
    const pod: ContainerQuota = { path: sample.path, state: podState };
    const podNow = podState.cpuQuota ?? Infinity;
    const lowering = (a.cpuQuota ?? Infinity) < podNow;
    const order = lowering ? [...containers, pod] : [pod, ...containers];
    const steps: CgroupWrite[] = order.map(({ path, state }) => {
      const from = currentValue("cpu_quota", state, version);
      const to = wantedValue("cpu_quota", a, state, version);
      return { path, from, to, outcome: from === to ? "unchanged" : "not-attempted" };
    });
    if (steps.every((st) => st.outcome === "unchanged")) return { ...base, outcome: "unchanged" };
    const failure = this.runQuotaSteps(steps, order);
    // The sample now says what the pod cgroup holds, so the metrics of this iteration show it.
    sample.allocation = reader.readAllocation(sample.path);
    if (failure) {
      const done = steps.filter((st) => st.outcome === "updated").map((st) => st.path);
      const partly = done.length > 0 ? ` (already set: ${done.join(", ")})` : "";
      return {
        ...base,
        value: podTo,
        outcome: "failed",
        ...failure,
        message: `${failure.message}${partly}`,
        cgroups: steps,
      };
    }
    const message = quotaSummary(steps, sample.path);
    return { ...base, value: podTo, outcome: "updated", message, cgroups: steps };
  }

  /**
   * runQuotaSteps writes the steps that differ, in order, reading each back; it stops at the
   * first failure, as the later steps depend on it on v1.
   */
  private runQuotaSteps(
    steps: CgroupWrite[],
    order: readonly ContainerQuota[],
  ): Pick<AllocationResult, "reason" | "message"> | undefined {
    const { layout, reader } = this.options;
    for (const [i, step] of steps.entries()) {
      if (step.outcome === "unchanged") continue;
      try {
        writeQuota(layout, step.path, step.to, order[i]?.state.cpuPeriodUsec ?? 100000);
      } catch (err) {
        step.outcome = "failed";
        step.message = `writing cpu_quota ${step.to} to ${step.path} failed: ${(err as Error).message}${this.hint("cpu_quota", err)}`;
        return { reason: "write-failed", message: step.message };
      }
      const after = currentValue("cpu_quota", reader.readQuota(step.path) ?? {}, layout.version);
      if (after !== step.to) {
        step.outcome = "failed";
        step.message = `wrote cpu_quota ${step.to} to ${step.path} but read back ${after || "nothing"}`;
        return { reason: "not-applied", message: step.message };
      }
      step.outcome = "updated";
    }
    return undefined;
  }

  /**
   * containerQuotas reads the quota of each of the pod's containers, or says which container
   * has no cgroup (not started yet, or a runtime whose naming the agent does not know).
   */
  private containerQuotas(task: Task, sample: TaskSample): ContainerQuota[] | string {
    const { layout, reader } = this.options;
    if (task.containers.length === 0) {
      return `no container of ${task.name} has a container ID yet, so their cgroups cannot be found; a quota on the pod alone would not reach them`;
    }
    const out: ContainerQuota[] = [];
    for (const c of task.containers) {
      const path = containerCgroupPath(layout.driver, sample.path, c);
      const state = reader.readQuota(path);
      if (state === undefined) {
        return `container ${c.name} (${c.runtime} ${c.id.slice(0, 12)}) has no cpu cgroup at ${path}; a quota on the pod alone would not change what the container may use`;
      }
      out.push({ path, state });
    }
    return out;
  }

  /** hint explains the kernel refusals a user can do something about. */
  private hint(type: AllocationType, err: unknown): string {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EINVAL" && type === "cpu_quota" && this.options.layout.version === "v1") {
      return " (on cgroup v1 a cgroup's quota cannot go below a child's own quota: is there a cgroup under the pod that is not one of its containers?)";
    }
    if ((code === "EINVAL" || code === "EBUSY") && type === "cpuset_cpus") {
      return " (the cpus must be online and within the parent cgroup's cpuset)";
    }
    return "";
  }

  private writeKnob(sample: TaskSample, change: Change): void {
    const { layout } = this.options;
    const v2 = layout.version === "v2";
    if (change.type === "cpu_quota") {
      writeQuota(layout, sample.path, change.to, sample.allocation?.cpuPeriodUsec ?? 100000);
    } else if (change.type === "cpu_shares") {
      const dir = requireDir(layout, "cpu", sample.path);
      writeFileSync(join(dir, v2 ? "cpu.weight" : "cpu.shares"), change.to);
    } else {
      const dir = requireDir(layout, "cpuset", sample.path);
      if (v2) writeFileSync(join(dir, "cpuset.cpus"), change.to);
      else writeCpusetTree(dir, change.to);
    }
  }

  private logResults(results: readonly AllocationResult[]): void {
    const { log } = this.options;
    const seen = new Set<string>();
    for (const r of results) {
      const key = `${r.taskId}/${r.type}`;
      seen.add(key);
      if (r.outcome === "updated")
        log.info(
          { task: r.taskName, type: r.type, change: r.message, cgroups: r.cgroups },
          "allocation applied",
        );
      if (r.outcome === "refused" || r.outcome === "failed") {
        const said = `${r.outcome}/${r.reason}/${r.message}`;
        if (this.reported.get(key) !== said) {
          log.warn(
            {
              task: r.taskName,
              type: r.type,
              outcome: r.outcome,
              reason: r.reason,
              detail: r.message,
              cgroups: r.cgroups,
            },
            "allocation not applied",
          );
        }
        this.reported.set(key, said);
      } else {
        this.reported.delete(key);
      }
    }
    for (const key of this.reported.keys()) if (!seen.has(key)) this.reported.delete(key);
  }
}

function requireDir(layout: CgroupLayout, controller: "cpu" | "cpuset", path: string): string {
  const dir = cgroupDir(layout, controller, path);
  if (dir === undefined) throw new Error(`the ${controller} controller is not mounted under ${layout.root}`);
  return dir;
}

/** quotaSummary says what a successful quota round changed: the pod's from -> to, and how many containers. */
function quotaSummary(steps: readonly CgroupWrite[], podPath: string): string {
  const pod = steps.find((st) => st.path === podPath) as CgroupWrite;
  const moved = steps.filter((st) => st.path !== podPath && st.outcome === "updated").length;
  const cgroups = `${moved} container cgroup${moved === 1 ? "" : "s"}`;
  if (pod.outcome !== "updated") return `${pod.to} already on the pod; set in ${cgroups}`;
  return `${pod.from || "(unset)"} -> ${pod.to}${moved === 0 ? "" : ` (and in ${cgroups})`}`;
}

/** writeQuota writes one cgroup's quota: µs per period, or "max". */
function writeQuota(layout: CgroupLayout, path: string, usec: string, periodUsec: number): void {
  const dir = requireDir(layout, "cpu", path);
  if (layout.version === "v2") writeFileSync(join(dir, "cpu.max"), `${usec} ${periodUsec}`);
  else writeFileSync(join(dir, "cpu.cfs_quota_us"), usec === "max" ? "-1" : usec);
}

/**
 * writeCpusetTree sets a v1 cpuset on a pod and its containers. v1 refuses (EBUSY) a parent
 * cpuset that leaves out cpus a child uses, and a child cpuset wider than its parent, so the
 * parent first gets the union of old and new, then the children the new set, then the parent
 * the new set.
 */
export function writeCpusetTree(dir: string, cpus: string): void {
  const old = parseCpuList(readOptional(join(dir, "cpuset.cpus")) ?? "") ?? [];
  const wantList = parseCpuList(cpus) ?? [];
  const union = formatCpuList([...old, ...wantList]);
  if (old.length > 0 && union !== formatCpuList(old)) writeFileSync(join(dir, "cpuset.cpus"), union);
  for (const child of readdirSync(dir)) {
    const sub = join(dir, child);
    if (statSync(sub).isDirectory()) writeCpusetTree(sub, cpus);
  }
  writeFileSync(join(dir, "cpuset.cpus"), cpus);
}

/** cpuManagerPolicy learns the kubelet's CPU manager policy from the settings or its state file. */
export function cpuManagerPolicy(settings: CpuManagerSettings): { policy: CpuManagerPolicy; source: string } {
  if (settings.policy !== "auto")
    return { policy: settings.policy, source: "cpu_manager.policy in agent.yaml" };
  const text = readOptional(settings.stateFile);
  if (text === undefined) return { policy: "unknown", source: `${settings.stateFile} not found` };
  try {
    const state = JSON.parse(text) as { policyName?: unknown };
    if (state.policyName === "static")
      return { policy: "static", source: `policy static in ${settings.stateFile}` };
    if (state.policyName === "none")
      return { policy: "none", source: `policy none in ${settings.stateFile}` };
    return {
      policy: "unknown",
      source: `unknown policy ${JSON.stringify(state.policyName)} in ${settings.stateFile}`,
    };
  } catch {
    return { policy: "unknown", source: `${settings.stateFile} is not JSON` };
  }
}

function readOptional(file: string): string | undefined {
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}
