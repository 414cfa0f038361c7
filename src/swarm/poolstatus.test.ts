import { test } from "node:test";
import assert from "node:assert/strict";
import {
  canonicalJson,
  healthyConditions,
  kubeTime,
  problemConditions,
  problemReasonOf,
  setConditions,
  workerStatus,
  type PoolCondition,
} from "./poolstatus.js";

const T0 = kubeTime(1_234_567_890_000);
const T1 = kubeTime(1_234_567_950_000);

test("Verifies that kubeTime writes RFC 3339 in whole seconds, as Kubernetes does", () => {
  assert.equal(kubeTime(1_234_567_890_123), "2009-02-13T23:31:30Z");
});

test("Verifies that a settled pool is Ready, not Progressing and not Degraded", () => {
  const conditions = healthyConditions({
    jobCount: 1,
    workers: ["w-0"],
    unready: [],
    step: { kind: "idle" },
  });
  assert.deepEqual(
    conditions.map((c) => [c.type, c.status, c.reason, c.message]),
    [
      ["Ready", "True", "Assigned", "1 job on 1 worker"],
      ["Progressing", "False", "Settled", "1 job on 1 worker"],
      ["Degraded", "False", "AsExpected", "every job is assigned"],
    ],
  );
});

test("Verifies that pending restarts and unready workers make the pool Progressing and not Ready", () => {
  const target = { name: "w-1", uid: "u", version: 2 };
  const restarting = healthyConditions({
    jobCount: 9,
    workers: ["w-0", "w-1"],
    unready: [],
    step: { kind: "wait", target, message: "waiting for the new pod w-1 to be Ready (1 pending)" },
  });
  assert.deepEqual(restarting[0], {
    type: "Ready",
    status: "False",
    reason: "RestartingWorkers",
    message: "9 jobs on 2 workers; waiting for the new pod w-1 to be Ready (1 pending)",
  });
  assert.equal(restarting[1]?.status, "True");
  const many = Array.from({ length: 7 }, (_, i) => `w-${i}`);
  const scaling = healthyConditions({
    jobCount: 9,
    workers: many,
    unready: many.slice(1),
    step: { kind: "idle" },
  });
  assert.equal(scaling[0]?.reason, "WorkersNotReady");
  assert.match(scaling[0]?.message ?? "", /waiting for w-1, w-2, w-3, w-4, w-5 and 1 more to be Ready/);
  assert.equal(scaling[2]?.status, "False");
});

test("Verifies that a problem sets Degraded with the assignment's reason in CamelCase", () => {
  assert.equal(problemReasonOf("insufficient-workers"), "InsufficientWorkers");
  assert.equal(problemReasonOf("unknown-dedicated-job"), "UnknownDedicatedJob");
  const conditions = problemConditions("InsufficientWorkers", "need 3 workers");
  assert.deepEqual(
    conditions.map((c) => [c.type, c.status, c.reason]),
    [
      ["Ready", "False", "InsufficientWorkers"],
      ["Progressing", "False", "InsufficientWorkers"],
      ["Degraded", "True", "InsufficientWorkers"],
    ],
  );
});

test("Verifies that setConditions keeps lastTransitionTime while a status holds, and keeps conditions it does not manage", () => {
  const foreign: PoolCondition = {
    type: "Audited",
    status: "True",
    reason: "x",
    message: "",
    lastTransitionTime: T0,
  };
  const first = setConditions([foreign], problemConditions("NoWorkers", "no workers"), 3, T0);
  assert.ok(first.every((c) => c.lastTransitionTime === T0));
  assert.equal(first.find((c) => c.type === "Ready")?.observedGeneration, 3);
  assert.deepEqual(first.at(-1), foreign);
  const second = setConditions(
    first,
    healthyConditions({ jobCount: 1, workers: ["w-0"], unready: [], step: { kind: "idle" } }),
    4,
    T1,
  );
  const at = (type: string): string | undefined => second.find((c) => c.type === type)?.lastTransitionTime;
  assert.equal(at("Ready"), T1, "False -> True is a transition");
  assert.equal(at("Progressing"), T0, "False -> False is not, even with a new reason");
  assert.equal(at("Degraded"), T1);
  assert.equal(second.find((c) => c.type === "Progressing")?.reason, "Settled");
});

test("Verifies that workerStatus lists workers in ordinal order and marks dedicated ones", () => {
  const config = new Map([
    ["w-10", { jobs: ["a", "b"], version: 1 }],
    ["w-2", { jobs: ["rt"], version: 0 }],
    ["w-3", { jobs: ["c"], version: 4 }],
  ]);
  assert.deepEqual(workerStatus(config, new Set(["rt"])), [
    { name: "w-2", jobs: 1, version: 0, dedicated: true },
    { name: "w-3", jobs: 1, version: 4, dedicated: false },
    { name: "w-10", jobs: 2, version: 1, dedicated: false },
  ]);
});

test("Verifies that canonicalJson ignores key order and undefined fields, not array order", () => {
  assert.equal(
    canonicalJson({ b: 1, a: { d: [2, 1], c: undefined } }),
    canonicalJson({ a: { d: [2, 1] }, b: 1 }),
  );
  assert.notEqual(canonicalJson({ a: [1, 2] }), canonicalJson({ a: [2, 1] }));
});
