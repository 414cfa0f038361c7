import type { AllocationRuleConfig, LabelSelector } from "./config.js";
import type { TaskAllocationState } from "./cgroups.js";
import { formatCpuList, parseCpuList, sharesToWeight } from "./kernel.js";
import { resourceValue } from "./quantity.js";
import type { QosClass, Task } from "./tasks.js";

/**
 * Allocation decisions, pure: an Allocator says what each pod's cgroup should allow; the checks
 * here refuse what is unsafe on a Kubernetes node; `changeset` keeps only what differs from what
 * the cgroups hold now. apply.ts does the writing.
 */

/** AllocationType names a knob, as in WCA and in the allocation metrics' allocation_type label. */
export type AllocationType = "cpu_quota" | "cpu_shares" | "cpuset_cpus";

/** Allocation is what one pod's cgroup should allow; a knob left out is left alone. */
export interface Allocation {
  /** cpuQuota in cores; Infinity for no limit. */
  cpuQuota?: number;
  /** cpuShares in cgroup v1 units (2..262144); written as cpu.weight on v2. */
  cpuShares?: number;
  /** cpusetCpus is a kernel cpu list, canonical ("0-3,8"). */
  cpusetCpus?: string;
}

/**
 * RefusalReason says why an allocation was not applied:
 * - `invalid-value`: the value is outside what the kernel takes (quota under 1 ms per period, bad cpu list);
 * - `mixed-qos`: cpu shares asked for pods of different QoS classes;
 * - `cpu-manager-static` / `cpu-manager-unknown`: cpusets while the kubelet's static CPU manager
 *   owns them, or while that cannot be ruled out;
 * - `cpuset-outside-parent`: cpus the pod's parent cgroup does not have;
 * - `controller-missing`: the pod's cgroup lacks the file for the knob.
 */
export type RefusalReason =
  | "invalid-value"
  | "mixed-qos"
  | "cpu-manager-static"
  | "cpu-manager-unknown"
  | "cpuset-outside-parent"
  | "controller-missing";

/** Refusal is one allocation not applied, with the sentence the log and the user read. */
export interface Refusal {
  taskId: string;
  taskName: string;
  type: AllocationType;
  reason: RefusalReason;
  message: string;
}

/** AllocatorInput is what an allocator decides from: the tasks and what their cgroups allow now. */
export interface AllocatorInput {
  tasks: readonly Task[];
  current: ReadonlyMap<string, TaskAllocationState>;
}

/** AllocatorResult: allocations by task ID, and what the allocator itself refused. */
export interface AllocatorResult {
  allocations: Map<string, Allocation>;
  refusals: Refusal[];
}

/**
 * Allocator decides allocations. It is called every iteration and must return the full desired
 * state each time (the kubelet resets pod cgroups on its sync; only what differs is written).
 * Tasks it leaves out are left untouched.
 */
export interface Allocator {
  readonly name: string;
  allocate(input: AllocatorInput): AllocatorResult;
}

/** ANNOTATIONS are the pod annotations RuleAllocator reads when from_annotations is on. */
export const ANNOTATIONS: Record<AllocationType, string> = {
  cpu_quota: "kubewise.dev/cpu-quota",
  cpu_shares: "kubewise.dev/cpu-shares",
  cpuset_cpus: "kubewise.dev/cpuset-cpus",
};

const types: AllocationType[] = ["cpu_quota", "cpu_shares", "cpuset_cpus"];

/** RuleAllocatorOptions configure RuleAllocator. */
export interface RuleAllocatorOptions {
  rules: readonly AllocationRuleConfig[];
  /** fromAnnotations lets a pod's kubewise.dev/* annotations override the rules. @default false */
  fromAnnotations?: boolean;
}

/**
 * RuleAllocator allocates from configuration: for each knob, the pod's annotation (when allowed)
 * or else the first rule that matches the pod and sets that knob.
 */
export class RuleAllocator implements Allocator {
  readonly name = "rules";
  private readonly rules: readonly AllocationRuleConfig[];
  private readonly fromAnnotations: boolean;

  constructor(options: RuleAllocatorOptions) {
    this.rules = options.rules;
    this.fromAnnotations = options.fromAnnotations ?? false;
  }

  allocate(input: AllocatorInput): AllocatorResult {
    const allocations = new Map<string, Allocation>();
    const refusals: Refusal[] = [];
    for (const task of input.tasks) {
      const rules = this.rules.filter((r) => ruleMatches(r, task));
      const allocation: Allocation = {};
      for (const type of types) {
        const annotation = this.fromAnnotations ? task.annotations[ANNOTATIONS[type]] : undefined;
        const rule = rules.find((r) => r[type] !== undefined);
        const raw = annotation ?? rule?.[type];
        if (raw === undefined) continue;
        const source = annotation !== undefined ? `annotation ${ANNOTATIONS[type]}` : `rule "${rule?.name}"`;
        const problem = setValue(allocation, type, raw);
        if (problem) refusals.push(refusal(task, type, "invalid-value", `${source}: ${problem}`));
      }
      if (Object.keys(allocation).length > 0) allocations.set(task.id, allocation);
    }
    return { allocations, refusals };
  }
}

function setValue(allocation: Allocation, type: AllocationType, raw: string | number): string | undefined {
  if (type === "cpu_quota") {
    const cores = raw === "max" ? Infinity : resourceValue("cpu", raw);
    if (cores === undefined) return `"${raw}" is not cores ("500m", "1.5") or "max"`;
    allocation.cpuQuota = cores;
  } else if (type === "cpu_shares") {
    const shares = Number(raw);
    if (!Number.isInteger(shares) || shares < 2 || shares > 262144)
      return `"${raw}" is not a whole number in 2..262144`;
    allocation.cpuShares = shares;
  } else {
    const cpus = parseCpuList(String(raw));
    if (!cpus || cpus.length === 0) return `"${raw}" is not a cpu list such as "0-3,8"`;
    allocation.cpusetCpus = formatCpuList(cpus);
  }
  return undefined;
}

/** ruleMatches tells whether a rule applies to a task (namespaces, QoS classes, label selector). */
export function ruleMatches(rule: AllocationRuleConfig, task: Task): boolean {
  if (rule.namespaces && !rule.namespaces.includes(task.namespace)) return false;
  if (rule.qos_classes && !rule.qos_classes.includes(task.qos)) return false;
  return rule.selector === undefined || selectorMatches(rule.selector, task.podLabels);
}

/** selectorMatches is Kubernetes' LabelSelector semantics: every term must hold; empty matches all. */
export function selectorMatches(selector: LabelSelector, labels: Record<string, string>): boolean {
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  return (selector.matchExpressions ?? []).every((e) => requirementHolds(e, labels));
}

type Requirement = NonNullable<LabelSelector["matchExpressions"]>[number];

function requirementHolds(e: Requirement, labels: Record<string, string>): boolean {
  const has = Object.hasOwn(labels, e.key);
  switch (e.operator) {
    case "In":
      return has && (e.values ?? []).includes(labels[e.key] ?? "");
    case "NotIn":
      return !has || !(e.values ?? []).includes(labels[e.key] ?? "");
    case "Exists":
      return has;
    case "DoesNotExist":
      return !has;
  }
}

function refusal(task: Task, type: AllocationType, reason: RefusalReason, message: string): Refusal {
  return { taskId: task.id, taskName: task.name, type, reason, message };
}

/** CpuManagerPolicy is the kubelet's CPU manager policy as far as the agent knows it. */
export type CpuManagerPolicy = "none" | "static" | "unknown";

/** NodeFacts are what the safety checks need to know about the node. */
export interface NodeFacts {
  cpuManager: CpuManagerPolicy;
  /** cpuManagerSource says where the policy came from, for messages. */
  cpuManagerSource: string;
  /** parentCpus maps a pod's task ID to the cpus its parent cgroup has (effective), when known. */
  parentCpus: ReadonlyMap<string, string>;
  /** minQuotaCores maps a task ID to the smallest quota the kernel takes for its period (1 ms). */
  minQuotaCores: ReadonlyMap<string, number>;
  /** current is what each pod's cgroup holds now; a knob it has no file for is refused. */
  current: ReadonlyMap<string, TaskAllocationState>;
}

/**
 * checkAllocations removes what is unsafe and says why. Shares only weigh a pod against its
 * siblings, and the kubelet puts each QoS class under its own parent (guaranteed pods directly
 * under kubepods), so shares across classes would not mean what they say: refused for all of
 * them (WCA's validate_shares_allocation_for_kubernetes). Cpusets are refused when the kubelet's
 * static CPU manager may own them, since it rewrites container cpusets and would fight us.
 */
export function checkAllocations(
  tasks: readonly Task[],
  allocations: ReadonlyMap<string, Allocation>,
  facts: NodeFacts,
): AllocatorResult {
  const byId = new Map(tasks.map((t) => [t.id, t]));
  const accepted = new Map<string, Allocation>();
  const refusals: Refusal[] = [];
  const sharesQos = new Map<QosClass, number>();
  for (const [id, a] of allocations) {
    const task = byId.get(id);
    if (task && a.cpuShares !== undefined) sharesQos.set(task.qos, (sharesQos.get(task.qos) ?? 0) + 1);
  }
  const mixed = sharesQos.size > 1 ? describeQos(sharesQos) : undefined;
  for (const [id, a] of allocations) {
    const task = byId.get(id);
    if (!task) continue;
    const kept: Allocation = { ...a };
    const refuse = (type: AllocationType, reason: RefusalReason, message: string): void => {
      refusals.push(refusal(task, type, reason, message));
      if (type === "cpu_quota") delete kept.cpuQuota;
      if (type === "cpu_shares") delete kept.cpuShares;
      if (type === "cpuset_cpus") delete kept.cpusetCpus;
    };
    checkControllers(kept, facts.current.get(id) ?? {}, refuse);
    checkQuota(kept, facts.minQuotaCores.get(id), refuse);
    if (kept.cpuShares !== undefined && mixed) {
      refuse(
        "cpu_shares",
        "mixed-qos",
        `cpu shares asked for pods of several QoS classes (${mixed}); shares only weigh a pod against ` +
          `pods of its own class, so they are applied only when every pod given shares has the same class`,
      );
    }
    if (kept.cpusetCpus !== undefined) checkCpuset(kept.cpusetCpus, facts, facts.parentCpus.get(id), refuse);
    if (Object.keys(kept).length > 0) accepted.set(id, kept);
  }
  return { allocations: accepted, refusals };
}

type Refuse = (type: AllocationType, reason: RefusalReason, message: string) => void;

function checkControllers(a: Allocation, now: TaskAllocationState, refuse: Refuse): void {
  const missing = (file: string): string =>
    `the pod's cgroup has no readable ${file}: is the controller enabled for it?`;
  if (a.cpuQuota !== undefined && now.cpuQuota === undefined)
    refuse("cpu_quota", "controller-missing", missing("cpu quota"));
  if (a.cpuShares !== undefined && now.cpuShares === undefined && now.cpuWeight === undefined) {
    refuse("cpu_shares", "controller-missing", missing("cpu.shares or cpu.weight"));
  }
  if (a.cpusetCpus !== undefined && now.cpusetCpus === undefined)
    refuse("cpuset_cpus", "controller-missing", missing("cpuset.cpus"));
}

function checkQuota(a: Allocation, minCores: number | undefined, refuse: Refuse): void {
  if (a.cpuQuota === undefined || a.cpuQuota === Infinity) return;
  const min = minCores ?? 0.01;
  if (!(a.cpuQuota >= min)) {
    refuse(
      "cpu_quota",
      "invalid-value",
      `cpu quota ${a.cpuQuota} cores is below the kernel's minimum of 1 ms per period (${min} cores)`,
    );
  }
}

function checkCpuset(cpus: string, facts: NodeFacts, parent: string | undefined, refuse: Refuse): void {
  if (facts.cpuManager === "static") {
    refuse(
      "cpuset_cpus",
      "cpu-manager-static",
      `cpuset refused: the kubelet's static CPU manager owns cpusets on this node (${facts.cpuManagerSource}) and would undo or fight any change`,
    );
  } else if (facts.cpuManager === "unknown") {
    refuse(
      "cpuset_cpus",
      "cpu-manager-unknown",
      `cpuset refused: cannot tell whether the kubelet's static CPU manager owns cpusets (${facts.cpuManagerSource}); set cpu_manager.policy in agent.yaml`,
    );
  } else if (parent !== undefined) {
    const have = new Set(parseCpuList(parent) ?? []);
    const outside = (parseCpuList(cpus) ?? []).filter((c) => !have.has(c));
    if (outside.length > 0) {
      refuse(
        "cpuset_cpus",
        "cpuset-outside-parent",
        `cpuset ${cpus} has cpus ${formatCpuList(outside)} that the pod's parent cgroup does not (it has ${parent || "none"})`,
      );
    }
  }
}

function describeQos(counts: ReadonlyMap<QosClass, number>): string {
  return [...counts]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([q, n]) => `${q}: ${n}`)
    .join(", ");
}

/** Change is one knob of one pod to be written: from what was read to what is wanted. */
export interface Change {
  taskId: string;
  type: AllocationType;
  /** from is the value read back, rendered; "" when unknown. */
  from: string;
  to: string;
}

/**
 * changeset keeps the knobs whose wanted value differs from the cgroup's, comparing in the
 * cgroup's own units (quota in µs of the current period; shares as cpu.weight on v2) so a value
 * the kernel rounds is not rewritten every iteration.
 */
export function changeset(
  allocations: ReadonlyMap<string, Allocation>,
  current: ReadonlyMap<string, TaskAllocationState>,
  version: "v1" | "v2",
): Change[] {
  const out: Change[] = [];
  for (const [taskId, a] of allocations) {
    const now = current.get(taskId) ?? {};
    for (const type of allocationTypes(a)) {
      const to = wantedValue(type, a, now, version);
      const from = currentValue(type, now, version);
      if (to !== from) out.push({ taskId, type, from, to });
    }
  }
  return out;
}

/** allocationTypes lists the knobs an allocation sets. */
export function allocationTypes(a: Allocation): AllocationType[] {
  const out: AllocationType[] = [];
  if (a.cpuQuota !== undefined) out.push("cpu_quota");
  if (a.cpuShares !== undefined) out.push("cpu_shares");
  if (a.cpusetCpus !== undefined) out.push("cpuset_cpus");
  return out;
}

/**
 * wantedValue renders a knob of an allocation as it is written to the cgroup: quota in µs of
 * the cgroup's period ("max" for none), shares (v1) or weight (v2), cpu list.
 */
export function wantedValue(
  type: AllocationType,
  a: Allocation,
  now: TaskAllocationState,
  version: "v1" | "v2",
): string {
  if (type === "cpu_quota")
    return renderQuota(quotaUsec(a.cpuQuota ?? Infinity, now.cpuPeriodUsec ?? 100000));
  if (type === "cpu_shares") {
    const shares = a.cpuShares ?? 1024;
    return String(version === "v2" ? sharesToWeight(shares) : shares);
  }
  return a.cpusetCpus ?? "";
}

/** currentValue renders a knob as the cgroup holds it, in wantedValue's units; "" when unknown. */
export function currentValue(type: AllocationType, now: TaskAllocationState, version: "v1" | "v2"): string {
  if (type === "cpu_quota") {
    return now.cpuQuota === undefined
      ? ""
      : renderQuota(quotaUsec(now.cpuQuota, now.cpuPeriodUsec ?? 100000));
  }
  if (type === "cpu_shares") {
    const v = version === "v2" ? now.cpuWeight : now.cpuShares;
    return v === undefined ? "" : String(v);
  }
  return now.cpusetCpus ?? "";
}

/** quotaUsec is cores as µs per period; Infinity stays Infinity. */
export function quotaUsec(cores: number, periodUsec: number): number {
  return cores === Infinity ? Infinity : Math.round(cores * periodUsec);
}

function renderQuota(usec: number): string {
  return usec === Infinity ? "max" : String(usec);
}
