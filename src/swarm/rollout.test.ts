import { test } from "node:test";
import assert from "node:assert/strict";
import type { V1Deployment } from "../kube/index.js";
import { assignWork } from "./assign.js";
import { inheritEntries, poolMembers, workerNames, type WorkerPod, type Workload } from "./members.js";
import {
  mergePending,
  planRollout,
  samePending,
  stalePods,
  type PendingRestart,
  type RolloutStep,
} from "./rollout.js";
import { assignmentOf, versionWorkloads, type WorkerConfig } from "./workloads.js";

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

// ---- Deployment restarts: the sequence the controller goes through ----------------------------

const web = (replicas: number): Workload => ({
  kind: "Deployment",
  object: { metadata: { name: "web", uid: "d-uid" }, spec: { replicas } } as V1Deployment,
});

/** reconcileOnce is the controller's decision for one reconcile (SwarmController.converge), pure. */
function reconcileOnce(
  workload: Workload,
  jobs: readonly string[],
  pods: readonly WorkerPod[],
  current: WorkerConfig,
  recorded: readonly PendingRestart[],
): { config: WorkerConfig; pending: PendingRestart[]; step: RolloutStep } {
  const { workers, inherited } = poolMembers(workload, pods, recorded, new Set(current.keys()));
  const previous = inheritEntries(current, inherited);
  const config = versionWorkloads(previous, assignWork(jobs, workers, previous && assignmentOf(previous)));
  const merged = mergePending(recorded, stalePods(previous, config, pods));
  const plan = planRollout(merged, workers, pods);
  return { config, pending: plan.pending, step: plan.step };
}

test("Verifies that a Deployment pod deleted for a restart keeps its jobs: the survivor is not given them, bumped or restarted", () => {
  const jobs = ["j1", "j2", "j3", "j4"];
  // a's jobs changed (version 1), so the controller recorded its pod for a restart and deletes it.
  const current = config({ "web-a": [["j1", "j2"], 1], "web-b": [["j3", "j4"], 0] });
  const recorded: PendingRestart[] = [{ name: "web-a", uid: "web-a-uid", version: 1 }];
  const b = pod("web-b");

  // The bug: without the restart in flight, the terminating pod is no worker, b takes its jobs,
  // b's version changes and b is marked for a restart too.
  const terminating = pod("web-a", { terminating: true, ready: false });
  const naive = versionWorkloads(
    current,
    assignWork(jobs, workerNames(web(2), [terminating, b]), assignmentOf(current)),
  );
  assert.deepEqual(naive.get("web-b"), { jobs: ["j1", "j2", "j3", "j4"], version: 1 });
  assert.equal(stalePods(current, naive, [terminating, b])[0]?.name, "web-b");

  const stages: [string, WorkerPod[]][] = [
    ["a terminating, no replacement yet", [terminating, b]],
    ["a gone, the ReplicaSet has not created the replacement yet", [b]],
    [
      "a terminating, its replacement c created",
      [terminating, pod("web-c", { ready: false, started: false }), b],
    ],
    ["a terminating, c running already", [terminating, pod("web-c"), b]],
  ];
  for (const [what, pods] of stages) {
    const r = reconcileOnce(web(2), jobs, pods, current, recorded);
    assert.deepEqual(r.config, current, `${what}: the config does not change`);
    assert.deepEqual(r.pending, recorded, `${what}: b is not marked for a restart`);
    assert.equal(r.step.kind, "wait", what);
  }
  // a is gone and c is there: c inherits a's entry, version and all; b is untouched.
  const c = pod("web-c", { ready: false });
  const inherited = reconcileOnce(web(2), jobs, [c, b], current, recorded);
  assert.deepEqual(inherited.config, config({ "web-b": [["j3", "j4"], 0], "web-c": [["j1", "j2"], 1] }));
  assert.deepEqual(inherited.pending, [], "a's restart is done; nothing else to restart");
  // Once written, the next reconcile (the status no longer records a) changes nothing.
  const after = reconcileOnce(web(2), jobs, [pod("web-c"), b], inherited.config, inherited.pending);
  assert.deepEqual(after.config, inherited.config);
  assert.deepEqual(after.step, { kind: "idle" });
});

test("Verifies that a Deployment restart walks one pod at a time, each stale pod restarted once, and a job change after it restarts only the changed workers", () => {
  // Both a and b changed: a is restarted first; b waits for a's replacement to be Ready.
  const jobs = ["j1", "j2", "j3", "j4"];
  const current = config({ "web-a": [["j1", "j2"], 1], "web-b": [["j3", "j4"], 2] });
  const recorded: PendingRestart[] = [
    { name: "web-a", uid: "web-a-uid", version: 1 },
    { name: "web-b", uid: "web-b-uid", version: 2 },
  ];
  const b = pod("web-b");
  const first = reconcileOnce(web(2), jobs, [pod("web-a"), b], current, recorded);
  assert.equal(first.step.kind === "restart" && first.step.target.name, "web-a");
  const replaced = reconcileOnce(web(2), jobs, [pod("web-c", { ready: false }), b], current, recorded);
  assert.deepEqual(replaced.pending, [recorded[1]], "a is done; b still pending, once");
  assert.match(replaced.step.kind === "wait" ? replaced.step.message : "", /web-c to be Ready/);
  const second = reconcileOnce(web(2), jobs, [pod("web-c"), b], replaced.config, replaced.pending);
  assert.equal(second.step.kind === "restart" && second.step.target.name, "web-b");
  const done = reconcileOnce(web(2), jobs, [pod("web-c"), pod("web-d")], second.config, second.pending);
  assert.deepEqual(done.pending, []);
  assert.deepEqual(
    done.config,
    config({ "web-c": [["j1", "j2"], 1], "web-d": [["j3", "j4"], 2] }),
    "each slot passed on, nothing moved",
  );
  // A new job lands on one worker: only that one is recorded.
  const more = reconcileOnce(web(2), [...jobs, "j5"], [pod("web-c"), pod("web-d")], done.config, []);
  assert.deepEqual(
    more.pending.map((p) => p.name),
    ["web-c"],
  );
});

test("Verifies that a restarted Deployment pod's slot is dropped when the Deployment will not replace it, and pods deleted by others leave at once", () => {
  const current = config({ "web-a": [["j1", "j2"], 1], "web-b": [["j3", "j4"], 0] });
  const recorded: PendingRestart[] = [{ name: "web-a", uid: "web-a-uid", version: 1 }];
  // Scaled down to 1 meanwhile: no replacement is owed, so a's jobs go to b as on a scale-down.
  assert.deepEqual(poolMembers(web(1), [pod("web-b")], recorded, new Set(current.keys())).workers, ["web-b"]);
  // No restart recorded: a terminating pod is no worker (an eviction, a rollout).
  assert.deepEqual(
    poolMembers(web(2), [pod("web-a", { terminating: true }), pod("web-b")], [], new Set(current.keys()))
      .workers,
    ["web-b"],
  );
  // A recorded uid that is not the terminating pod's (a newer pod of that name) is no restart in flight.
  assert.deepEqual(
    poolMembers(
      web(2),
      [pod("web-a", { uid: "other", terminating: true }), pod("web-b")],
      recorded,
      new Set(current.keys()),
    ).workers,
    ["web-b"],
  );
  assert.equal(inheritEntries(current, new Map()), current);
});
