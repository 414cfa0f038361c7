import { test } from "node:test";
import assert from "node:assert/strict";
import type { KubeClient, V1Pod, V1StatefulSet } from "../kube/index.js";
import { applyService } from "./apply.js";
import { DeployError } from "./errors.js";
import { renderService } from "./render.js";
import { statefulSetVerdict } from "./rollout.js";
import { parseServiceSpec } from "./spec.js";

/** statefulSet is "db" at generation 2 wanting 2 replicas, rolling from revision db-1 to db-2. */
function statefulSet(status: Partial<NonNullable<V1StatefulSet["status"]>>): V1StatefulSet {
  return {
    metadata: { name: "db", namespace: "shop", generation: 2 },
    spec: {
      replicas: 2,
      serviceName: "db-headless",
      selector: { matchLabels: { "app.kubernetes.io/name": "db" } },
      template: {},
    },
    status: {
      observedGeneration: 2,
      replicas: 2,
      currentRevision: "db-1",
      updateRevision: "db-2",
      updatedReplicas: 1,
      readyReplicas: 1,
      ...status,
    },
  };
}

function pod(name: string, revision: string, status: V1Pod["status"]): V1Pod {
  return {
    metadata: {
      name,
      namespace: "shop",
      labels: { "app.kubernetes.io/name": "db", "controller-revision-hash": revision },
    },
    spec: { containers: [{ name: "db", image: "ghcr.io/acme/db:2" }] },
    status,
  };
}

const crashLooping = (name: string, revision: string): V1Pod =>
  pod(name, revision, {
    phase: "Running",
    containerStatuses: [
      {
        name: "db",
        ready: false,
        restartCount: 3,
        image: "ghcr.io/acme/db:2",
        imageID: "",
        state: { waiting: { reason: "CrashLoopBackOff" } },
      },
    ],
  });

const running = (name: string, revision: string): V1Pod =>
  pod(name, revision, {
    phase: "Running",
    conditions: [
      { type: "Ready", status: "True" },
      { type: "ContainersReady", status: "True" },
    ],
    containerStatuses: [
      { name: "db", ready: true, restartCount: 0, image: "ghcr.io/acme/db:2", imageID: "" },
    ],
  });

test("Verifies that a StatefulSet rollout fails at once when a pod of the update revision crash-loops", () => {
  const verdict = statefulSetVerdict("shop", "db", statefulSet({}), [
    running("db-0", "db-1"),
    crashLooping("db-1", "db-2"),
  ]);
  assert.equal(verdict.state, "failed");
  if (verdict.state !== "failed") return;
  assert.equal(verdict.error.podProblem, "crash-loop");
  assert.match(verdict.error.message, /pod shop\/db-1: container db is crash-looping \(restarts: 3\)/);
});

test("Verifies that a StatefulSet rollout keeps waiting for healthy pods, and pods of the old revision do not fail it", () => {
  const waiting = statefulSetVerdict("shop", "db", statefulSet({}), [
    crashLooping("db-0", "db-1"),
    running("db-1", "db-2"),
  ]);
  assert.deepEqual(waiting, { state: "waiting", message: "statefulset shop/db: 1 of 2 replicas updated" });
  const unseen = statefulSetVerdict("shop", "db", statefulSet({ observedGeneration: 1 }), [
    crashLooping("db-1", "db-2"),
  ]);
  assert.equal(unseen.state, "waiting", "the update revision is known only once the spec is observed");
});

test("Verifies that a complete StatefulSet rollout is done even if one of its pods restarted before", () => {
  const complete = statefulSet({ currentRevision: "db-2", updatedReplicas: 2, readyReplicas: 2 });
  const restartedOnce = running("db-1", "db-2");
  restartedOnce.status!.containerStatuses![0]!.restartCount = 1;
  assert.deepEqual(statefulSetVerdict("shop", "db", complete, [running("db-0", "db-2"), restartedOnce]), {
    state: "done",
    value: "statefulset shop/db rolled out: 2/2 ready",
  });
});

test("Verifies that a StatefulSet pod held back only until its volume claim binds is waited for, while other scheduling failures fail", () => {
  const unschedulable = (message: string) =>
    pod("db-1", "db-2", {
      phase: "Pending",
      conditions: [{ type: "PodScheduled", status: "False", reason: "Unschedulable", message }],
    });
  const claim = statefulSetVerdict("shop", "db", statefulSet({}), [
    unschedulable("0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims. not found"),
  ]);
  assert.equal(claim.state, "waiting");
  assert.match(
    claim.state === "waiting" ? (claim.message ?? "") : "",
    /^statefulset shop\/db: pod shop\/db-1: waits for its volume claims to bind \(0\/3 nodes are available: pod has unbound immediate PersistentVolumeClaims/,
  );
  const cpu = statefulSetVerdict("shop", "db", statefulSet({}), [
    unschedulable("0/3 nodes are available: 3 Insufficient cpu."),
  ]);
  assert.equal(cpu.state === "failed" && cpu.error.podProblem, "unschedulable");
});

test("Verifies that --rollback-on-failure is refused for a persistent_storage service before anything is applied", async () => {
  const spec = parseServiceSpec({
    name: "db",
    image: "ghcr.io/acme/db:2",
    persistent_storage: [{ size: 1, path: "/data" }],
  });
  const target = { service: "db", namespace: "shop", manifests: renderService(spec).manifests };
  // The client has no methods: any use of it fails, with an error other than the DeployError expected.
  const client = {} as KubeClient;
  await assert.rejects(applyService(client, target, { rollbackOnFailure: true }), (err: unknown) => {
    assert.ok(err instanceof DeployError, String(err));
    assert.match(err.message, /--rollback-on-failure/);
    assert.match(err.message, /persistent_storage/);
    assert.match(err.message, /nothing was applied/);
    return true;
  });
  // Without the flag the apply goes ahead, and so reaches the client.
  await assert.rejects(applyService(client, target, {}), (err: unknown) => !(err instanceof DeployError));
});
