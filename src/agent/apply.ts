import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Logger } from "../log.js";
import {
  allocationTypes,
  changeset,
  checkAllocations,
  currentValue,
  type AllocationType,
  type Allocator,
  type Change,
  type CpuManagerPolicy,
  type NodeFacts,
  type RefusalReason,
} from "./allocator.js";
import {
  cgroupDir,
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
 */

/** AllocationOutcome: what happened to one knob of one pod this iteration. */
export type AllocationOutcome = "unchanged" | "updated" | "refused" | "failed";

/** AllocationResult is one knob of one pod after an iteration. */
export interface AllocationResult {
  taskId: string;
  taskName: string;
  type: AllocationType;
  outcome: AllocationOutcome;
  /** value is the wanted value in the cgroup's units (µs quota, shares or weight, cpu list). */
  value?: string;
  reason?: RefusalReason | "write-failed" | "not-applied";
  message?: string;
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
      for (const type of allocationTypes(a)) {
        if (!changed.has(`${id}/${type}`))
          results.push({ taskId: id, taskName: task.name, type, outcome: "unchanged" });
      }
    }
    for (const change of changes) {
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
      const message = `writing ${change.type} ${change.to} to ${sample.path} failed: ${(err as Error).message}${this.hint(change, err)}`;
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

  /** hint explains the kernel refusals a user can do something about. */
  private hint(change: Change, err: unknown): string {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EINVAL" && change.type === "cpu_quota" && this.options.layout.version === "v1") {
      return " (on cgroup v1 a pod's quota cannot go below a container's own quota, i.e. its cpu limit)";
    }
    if ((code === "EINVAL" || code === "EBUSY") && change.type === "cpuset_cpus") {
      return " (the cpus must be online and within the parent cgroup's cpuset)";
    }
    return "";
  }

  private writeKnob(sample: TaskSample, change: Change): void {
    const { layout } = this.options;
    const v2 = layout.version === "v2";
    if (change.type === "cpu_quota") {
      const dir = requireDir(layout, "cpu", sample.path);
      const period = sample.allocation?.cpuPeriodUsec ?? 100000;
      if (v2) writeFileSync(join(dir, "cpu.max"), `${change.to} ${period}`);
      else writeFileSync(join(dir, "cpu.cfs_quota_us"), change.to === "max" ? "-1" : change.to);
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
        log.info({ task: r.taskName, type: r.type, change: r.message }, "allocation applied");
      if (r.outcome === "refused" || r.outcome === "failed") {
        const said = `${r.outcome}/${r.reason}/${r.message}`;
        if (this.reported.get(key) !== said) {
          log.warn(
            { task: r.taskName, type: r.type, outcome: r.outcome, reason: r.reason, detail: r.message },
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
