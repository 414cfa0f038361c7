import { test } from "node:test";
import assert from "node:assert/strict";
import type { WorkerPod } from "./members.js";
import { mergePending, planRollout, samePending, stalePods, type PendingRestart } from "./rollout.js";
import type { WorkerConfig } from "./workloads.js";

function pod(name: string, extra: Partial<WorkerPod> = {}): WorkerPod {
  return {
    name,
    uid: `${name}-uid`,
    ready: true,
    started: true,
    terminating: false,
    finished: false,
    ...extra,
  };
}

function config(entries: Record<string, [string[], number]>): WorkerConfig {
  return new Map(Object.entries(entries).map(([w, [jobs, version]]) => [w, { jobs, version }]));
}

const workers = ["w-0", "w-1", "w-2"];

test("Verifies that stalePods lists exactly the started pods whose entry existed and changed version", () => {
  const previous = config({ "w-0": [["a", "b"], 0], "w-1": [["c", "d"], 4], "w-2": [["e"], 1] });
  const next = config({
    "w-0": [["a"], 1],
    "w-1": [["c", "d"], 4],
    "w-2": [["e", "b"], 2],
    "w-3": [["f"], 0],
  });
  const pods = [pod("w-0"), pod("w-1"), pod("w-2"), pod("w-3")];
  assert.deepEqual(stalePods(previous, next, pods), [
    { name: "w-0", uid: "w-0-uid", version: 1 },
    { name: "w-2", uid: "w-2-uid", version: 2 },
  ]);
  // Not started yet (it will read the new file), terminating (going anyway), or absent: no restart.
  const others = [pod("w-0", { started: false }), pod("w-2", { terminating: true })];
  assert.deepEqual(stalePods(previous, next, others), []);
  assert.deepEqual(stalePods(undefined, next, pods), [], "a first assignment restarts nobody");
});

test("Verifies that mergePending keeps one entry per worker: the same pod keeps its highest version, another pod replaces it", () => {
  const recorded: PendingRestart[] = [
    { name: "w-1", uid: "old-1", version: 2 },
    { name: "w-0", uid: "old-0", version: 5 },
  ];
  const merged = mergePending(recorded, [
    { name: "w-0", uid: "old-0", version: 6 },
    { name: "w-1", uid: "new-1", version: 3 },
    { name: "w-2", uid: "old-2", version: 1 },
  ]);
  assert.deepEqual(merged, [
    { name: "w-0", uid: "old-0", version: 6 },
    { name: "w-1", uid: "new-1", version: 3 },
    { name: "w-2", uid: "old-2", version: 1 },
  ]);
  assert.ok(samePending(merged, [...merged].reverse()), "order does not matter");
  assert.ok(!samePending(merged, recorded));
  assert.deepEqual(mergePending(recorded, []), [recorded[1], recorded[0]], "sorted by ordinal");
});

test("Verifies that planRollout restarts the first stale pod when the rest of the pool is Ready, and the same state plans the same step", () => {
  const pending: PendingRestart[] = [
    { name: "w-1", uid: "w-1-uid", version: 3 },
    { name: "w-0", uid: "w-0-uid", version: 2 },
  ];
  const pods = workers.map((w) => pod(w));
  const plan = planRollout(pending, workers, pods);
  assert.equal(plan.step.kind, "restart");
  assert.deepEqual(plan.step.kind === "restart" && plan.step.target, {
    name: "w-0",
    uid: "w-0-uid",
    version: 2,
  });
  assert.equal(plan.pending.length, 2);
  assert.deepEqual(
    planRollout(plan.pending, workers, pods),
    plan,
    "level-based: planning again changes nothing",
  );
});

test("Verifies that planRollout walks a restart through terminating, replaced and Ready, one pod at a time", () => {
  const pending: PendingRestart[] = [
    { name: "w-0", uid: "w-0-uid", version: 2 },
    { name: "w-1", uid: "w-1-uid", version: 3 },
  ];
  const others = [pod("w-1"), pod("w-2")];
  const stages: [WorkerPod | undefined, string][] = [
    [pod("w-0", { terminating: true, ready: false }), "waiting for pod w-0 to terminate"],
    [undefined, "waiting for the new pod w-0 to be Ready"],
    [pod("w-0", { uid: "new", ready: false }), "waiting for the new pod w-0 to be Ready"],
  ];
  for (const [w0, message] of stages) {
    const plan = planRollout(pending, workers, w0 ? [w0, ...others] : others);
    assert.equal(plan.step.kind, "wait", message);
    assert.match(plan.step.kind === "wait" ? plan.step.message : "", new RegExp(message));
    assert.equal(plan.pending.length, 2, "w-1 is not touched meanwhile");
  }
  const done = planRollout(pending, workers, [pod("w-0", { uid: "new" }), ...others]);
  assert.deepEqual(done.pending, [pending[1]], "w-0 runs a new Ready pod: done");
  assert.equal(done.step.kind, "restart");
  assert.equal(done.step.kind === "restart" && done.step.target.name, "w-1");
});

test("Verifies that planRollout waits while another worker is not Ready, a pod terminates, or the pool is shrinking", () => {
  const pending: PendingRestart[] = [{ name: "w-1", uid: "w-1-uid", version: 1 }];
  const cases: [WorkerPod[], string[], RegExp][] = [
    [[pod("w-0"), pod("w-1")], workers, /waits for worker w-2 to be Ready/],
    [[pod("w-0", { ready: false }), pod("w-1"), pod("w-2")], workers, /waits for worker w-0 to be Ready/],
    [
      [pod("w-0"), pod("w-1"), pod("w-2"), pod("x", { terminating: true })],
      workers,
      /waits for pod x to terminate/,
    ],
  ];
  for (const [pods, members, message] of cases) {
    const plan = planRollout(pending, members, pods);
    assert.equal(plan.step.kind, "wait");
    assert.match(plan.step.kind === "wait" ? plan.step.message : "", message);
  }
  // Scale-down in progress: w-2 is leaving; nothing restarts until it is gone, and it is never the target.
  const shrinking = planRollout(
    [...pending, { name: "w-2", uid: "w-2-uid", version: 1 }],
    workers,
    workers.map((w) => pod(w)),
    ["w-2"],
  );
  assert.equal(shrinking.step.kind, "wait");
  assert.match(
    shrinking.step.kind === "wait" ? shrinking.step.message : "",
    /waits for w-2 to leave the pool/,
  );
  const onlyLeaving = planRollout(
    [{ name: "w-2", uid: "w-2-uid", version: 1 }],
    workers,
    workers.map((w) => pod(w)),
    ["w-2"],
  );
  assert.equal(onlyLeaving.step.kind, "idle");
});

test("Verifies that planRollout drops entries of workers that left the pool", () => {
  const plan = planRollout([{ name: "web-abc", uid: "u", version: 1 }], ["web-def"], [pod("web-def")]);
  assert.deepEqual(plan, { pending: [], step: { kind: "idle" } });
  // A stale pod that is not Ready (crash-looping, say) is still restarted: it serves nothing anyway.
  const unready = planRollout(
    [{ name: "w-0", uid: "w-0-uid", version: 1 }],
    ["w-0"],
    [pod("w-0", { ready: false })],
  );
  assert.equal(unready.step.kind, "restart");
});
