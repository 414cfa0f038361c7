import { test } from "node:test";
import assert from "node:assert/strict";
import type { V1Deployment, V1Pod, V1StatefulSet } from "../kube/index.js";
import {
  describeWorkerPod,
  leavingWorkers,
  ownsPod,
  workerNames,
  workloadOfPod,
  type WorkerPod,
  type Workload,
} from "./members.js";

const set = (replicas: number, start?: number): Workload => ({
  kind: "StatefulSet",
  object: {
    metadata: { name: "w", uid: "set-uid" },
    spec: { replicas, ...(start === undefined ? {} : { ordinals: { start } }) },
  } as V1StatefulSet,
});
const deploy: Workload = {
  kind: "Deployment",
  object: { metadata: { name: "web", uid: "d-uid" } } as V1Deployment,
};

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

function v1Pod(
  owner: { kind: string; name: string; uid: string },
  labels: Record<string, string> = {},
): V1Pod {
  return {
    metadata: {
      name: "p",
      uid: "u",
      labels,
      ownerReferences: [{ apiVersion: "apps/v1", ...owner, controller: true }],
    },
  };
}

test("Verifies that a StatefulSet's workers are its desired ordinals, existing or not, in ordinal order", () => {
  assert.deepEqual(workerNames(set(3), []), ["w-0", "w-1", "w-2"]);
  assert.deepEqual(
    workerNames(set(2, 5), [pod("w-5")]),
    ["w-5", "w-6"],
    "spec.ordinals.start shifts the names",
  );
  assert.deepEqual(workerNames(set(0), []), []);
  const eleven = workerNames(set(11), []);
  assert.equal(eleven[2], "w-2");
  assert.equal(eleven[10], "w-10", "numeric, not code-unit, order");
});

test("Verifies that a StatefulSet scaling down keeps the leaving pods as workers until they are gone", () => {
  const pods = [pod("w-0"), pod("w-1"), pod("w-2", { terminating: true })];
  assert.deepEqual(workerNames(set(1), pods), ["w-0", "w-1", "w-2"]);
  assert.deepEqual(leavingWorkers(set(1), pods), ["w-1", "w-2"]);
  assert.deepEqual(leavingWorkers(set(3), pods), []);
  // A pod being restarted (terminating, but wanted) is no leaver.
  assert.deepEqual(leavingWorkers(set(3), [pod("w-0", { terminating: true })]), []);
});

test("Verifies that a Deployment's workers are its running pods, not terminating or finished ones", () => {
  const pods = [
    pod("web-b"),
    pod("web-a"),
    pod("web-c", { terminating: true }),
    pod("web-d", { finished: true }),
  ];
  assert.deepEqual(workerNames(deploy, pods), ["web-a", "web-b"]);
  assert.deepEqual(leavingWorkers(deploy, pods), []);
});

test("Verifies that ownsPod and workloadOfPod recognise StatefulSet pods by uid and Deployment pods by ReplicaSet name", () => {
  const setPod = v1Pod({ kind: "StatefulSet", name: "w", uid: "set-uid" });
  assert.equal(ownsPod(set(1), setPod), true);
  assert.equal(
    ownsPod(set(1), v1Pod({ kind: "StatefulSet", name: "w", uid: "older-set" })),
    false,
    "a recreated set",
  );
  assert.deepEqual(workloadOfPod(setPod), { kind: "StatefulSet", name: "w" });

  const rsPod = v1Pod(
    { kind: "ReplicaSet", name: "web-5d8f9c", uid: "rs" },
    { "pod-template-hash": "5d8f9c" },
  );
  assert.equal(ownsPod(deploy, rsPod), true);
  assert.deepEqual(workloadOfPod(rsPod), { kind: "Deployment", name: "web" });
  // Deployment web-api's ReplicaSet also starts with "web-"; the hash label tells them apart.
  const other = v1Pod(
    { kind: "ReplicaSet", name: "web-api-5d8f9c", uid: "rs" },
    { "pod-template-hash": "5d8f9c" },
  );
  assert.equal(ownsPod(deploy, other), false);
  assert.deepEqual(workloadOfPod(other), { kind: "Deployment", name: "web-api" });
  const bare = v1Pod({ kind: "ReplicaSet", name: "standalone", uid: "rs" });
  assert.equal(workloadOfPod(bare), undefined, "a ReplicaSet without a Deployment");
  assert.equal(workloadOfPod({ metadata: { name: "p" } }), undefined);
});

test("Verifies that describeWorkerPod tells started, ready, terminating and finished pods apart", () => {
  const running: V1Pod = {
    metadata: { name: "w-0", uid: "u" },
    spec: { containers: [{ name: "c" }] },
    status: {
      phase: "Running",
      conditions: [
        { type: "Ready", status: "True" },
        { type: "ContainersReady", status: "True" },
      ],
      containerStatuses: [
        { name: "c", ready: true, restartCount: 0, image: "i", imageID: "", state: { running: {} } },
      ],
    },
  };
  assert.deepEqual(describeWorkerPod(running), {
    name: "w-0",
    uid: "u",
    ready: true,
    started: true,
    terminating: false,
    finished: false,
  });
  const pending: V1Pod = { metadata: { name: "w-1", uid: "v" }, status: { phase: "Pending" } };
  assert.equal(describeWorkerPod(pending).started, false);
  const deleting = { ...running, metadata: { ...running.metadata, deletionTimestamp: new Date() } };
  assert.equal(describeWorkerPod(deleting).terminating, true);
  assert.equal(describeWorkerPod(deleting).ready, false, "a terminating pod does not count as Ready");
  assert.equal(describeWorkerPod({ ...pending, status: { phase: "Failed" } }).finished, true);
});
