import { test } from "node:test";
import assert from "node:assert/strict";
import type { TaskAllocationState } from "./cgroups.js";
import { parseAgentConfig } from "./config.js";
import {
  ANNOTATIONS,
  changeset,
  checkAllocations,
  RuleAllocator,
  selectorMatches,
  type Allocation,
  type NodeFacts,
} from "./allocator.js";
import { taskFromPod, type QosClass, type Task } from "./tasks.js";
import { makePod, uidFor } from "./testdata/fixtures.js";

function task(
  i: number,
  qos: QosClass,
  labels: Record<string, string> = {},
  annotations: Record<string, string> = {},
  namespace = "default",
): Task {
  return taskFromPod(makePod({ name: `p${i}`, uid: uidFor(i), qos, labels, annotations, namespace }));
}

const rules = parseAgentConfig({
  allocation: {
    enabled: true,
    rules: [
      { name: "batch", namespaces: ["batch"], cpu_quota: "500m" },
      { name: "low", selector: { matchLabels: { tier: "low" } }, cpu_shares: 256, cpu_quota: "max" },
      { name: "pinned", qos_classes: ["guaranteed"], cpuset_cpus: "2-3" },
    ],
  },
}).allocation.rules;

test("Verifies that rules apply per knob in order and annotations override them only when allowed", () => {
  const batchLow = task(1, "burstable", { tier: "low" }, {}, "batch");
  const low = task(2, "burstable", { tier: "low" });
  const gua = task(3, "guaranteed", {}, { [ANNOTATIONS.cpu_quota]: "2", [ANNOTATIONS.cpuset_cpus]: "4,5,6" });
  const other = task(4, "besteffort");
  const tasks = [batchLow, low, gua, other];
  const plain = new RuleAllocator({ rules }).allocate({ tasks, current: new Map() });
  assert.deepEqual(plain.allocations.get(batchLow.id), { cpuQuota: 0.5, cpuShares: 256 });
  assert.deepEqual(plain.allocations.get(low.id), { cpuQuota: Infinity, cpuShares: 256 });
  assert.deepEqual(plain.allocations.get(gua.id), { cpusetCpus: "2-3" });
  assert.equal(plain.allocations.has(other.id), false);
  const annotated = new RuleAllocator({ rules, fromAnnotations: true }).allocate({
    tasks,
    current: new Map(),
  });
  assert.deepEqual(annotated.allocations.get(gua.id), { cpuQuota: 2, cpusetCpus: "4-6" });
});

test("Verifies that a garbage annotation is refused with the annotation named, not thrown", () => {
  const t = task(1, "burstable", {}, { [ANNOTATIONS.cpu_shares]: "lots", [ANNOTATIONS.cpu_quota]: "250m" });
  const r = new RuleAllocator({ rules: [], fromAnnotations: true }).allocate({
    tasks: [t],
    current: new Map(),
  });
  assert.deepEqual(r.allocations.get(t.id), { cpuQuota: 0.25 });
  assert.equal(r.refusals.length, 1);
  assert.equal(r.refusals[0]?.reason, "invalid-value");
  assert.match(r.refusals[0]?.message ?? "", /annotation kubewise\.dev\/cpu-shares: "lots"/);
});

test("Verifies Kubernetes label selector semantics", () => {
  const labels = { app: "web", tier: "low" };
  assert.ok(selectorMatches({}, labels));
  assert.ok(selectorMatches({ matchLabels: { app: "web" } }, labels));
  assert.ok(!selectorMatches({ matchLabels: { app: "db" } }, labels));
  assert.ok(
    selectorMatches({ matchExpressions: [{ key: "tier", operator: "In", values: ["low", "mid"] }] }, labels),
  );
  assert.ok(
    !selectorMatches({ matchExpressions: [{ key: "tier", operator: "NotIn", values: ["low"] }] }, labels),
  );
  assert.ok(
    selectorMatches({ matchExpressions: [{ key: "zone", operator: "NotIn", values: ["a"] }] }, labels),
  );
  assert.ok(selectorMatches({ matchExpressions: [{ key: "app", operator: "Exists" }] }, labels));
  assert.ok(!selectorMatches({ matchExpressions: [{ key: "app", operator: "DoesNotExist" }] }, labels));
});

const full: TaskAllocationState = {
  cpuQuota: Infinity,
  cpuPeriodUsec: 100000,
  cpuShares: 1024,
  cpusetCpus: "0-7",
};

function facts(tasks: Task[], over: Partial<NodeFacts> = {}): NodeFacts {
  return {
    cpuManager: "none",
    cpuManagerSource: "test",
    parentCpus: new Map(tasks.map((t) => [t.id, "0-7"])),
    minQuotaCores: new Map(tasks.map((t) => [t.id, 0.01])),
    current: new Map(tasks.map((t) => [t.id, full])),
    ...over,
  };
}

test("Verifies that shares for pods of mixed QoS classes are refused for all of them, other knobs kept", () => {
  const a = task(1, "burstable");
  const b = task(2, "guaranteed");
  const c = task(3, "besteffort");
  const allocations = new Map<string, Allocation>([
    [a.id, { cpuShares: 512, cpuQuota: 1 }],
    [b.id, { cpuShares: 2048 }],
    [c.id, { cpuQuota: 0.5 }],
  ]);
  const r = checkAllocations([a, b, c], allocations, facts([a, b, c]));
  assert.deepEqual(r.allocations.get(a.id), { cpuQuota: 1 });
  assert.equal(r.allocations.has(b.id), false);
  assert.deepEqual(r.allocations.get(c.id), { cpuQuota: 0.5 });
  assert.deepEqual(
    r.refusals.map((x) => [x.taskName, x.reason]),
    [
      ["default/p1", "mixed-qos"],
      ["default/p2", "mixed-qos"],
    ],
  );
  assert.match(r.refusals[0]?.message ?? "", /burstable: 1, guaranteed: 1/);
  const same = checkAllocations([a, c], new Map([[a.id, { cpuShares: 512 }]]), facts([a, c]));
  assert.deepEqual(same.refusals, [], "a pod of another class without shares does not matter");
});

test("Verifies that cpusets are refused under the static CPU manager, when it is unknown, and outside the parent", () => {
  const t = task(1, "guaranteed");
  const want = new Map<string, Allocation>([[t.id, { cpusetCpus: "2-3" }]]);
  const refusedBy = (f: NodeFacts): string | undefined => checkAllocations([t], want, f).refusals[0]?.reason;
  assert.equal(refusedBy(facts([t], { cpuManager: "static" })), "cpu-manager-static");
  assert.equal(refusedBy(facts([t], { cpuManager: "unknown" })), "cpu-manager-unknown");
  assert.equal(refusedBy(facts([t], { parentCpus: new Map([[t.id, "0-2"]]) })), "cpuset-outside-parent");
  assert.equal(refusedBy(facts([t])), undefined);
});

test("Verifies that quotas under 1 ms per period and knobs without a cgroup file are refused", () => {
  const t = task(1, "burstable");
  const tiny = checkAllocations([t], new Map([[t.id, { cpuQuota: 0.001 }]]), facts([t]));
  assert.equal(tiny.refusals[0]?.reason, "invalid-value");
  const noCpuset = checkAllocations(
    [t],
    new Map([[t.id, { cpusetCpus: "1" }]]),
    facts([t], { current: new Map([[t.id, { cpuQuota: 1, cpuPeriodUsec: 100000 }]]) }),
  );
  assert.equal(noCpuset.refusals[0]?.reason, "controller-missing");
});

test("Verifies that the changeset holds only what differs, in the cgroup's own units", () => {
  const current = new Map<string, TaskAllocationState>([
    ["a", { cpuQuota: 0.5, cpuPeriodUsec: 100000, cpuShares: 512, cpusetCpus: "0-3" }],
    ["b", { cpuQuota: Infinity, cpuPeriodUsec: 50000, cpuWeight: 100, cpusetCpus: "" }],
  ]);
  const want = new Map<string, Allocation>([
    ["a", { cpuQuota: 0.5, cpuShares: 512, cpusetCpus: "0-3" }],
    ["b", { cpuQuota: 1.5, cpuShares: 1024, cpusetCpus: "1" }],
  ]);
  assert.deepEqual(changeset(want, current, "v1"), [
    { taskId: "b", type: "cpu_quota", from: "max", to: "75000" },
    { taskId: "b", type: "cpu_shares", from: "", to: "1024" },
    { taskId: "b", type: "cpuset_cpus", from: "", to: "1" },
  ]);
  const v2 = changeset(new Map([["b", { cpuShares: 1024, cpuQuota: Infinity }]]), current, "v2");
  assert.deepEqual(v2, [], "1024 shares is weight 100 and max is max: nothing to write");
});
