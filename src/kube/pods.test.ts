import { test } from "node:test";
import assert from "node:assert/strict";
import type { V1Deployment, V1Pod } from "@kubernetes/client-node";
import { isPodReady, podProblem, rolloutState } from "./pods.js";

function pod(status: V1Pod["status"], containers = 1): V1Pod {
  return {
    metadata: { name: "p", namespace: "ns" },
    spec: { containers: Array.from({ length: containers }, (_, i) => ({ name: `c${i}`, image: "x" })) },
    status,
  };
}

const readyConditions = [
  { type: "Ready", status: "True" },
  { type: "ContainersReady", status: "True" },
];

test("Verifies that a running pod with ready containers and conditions is ready, and not otherwise", () => {
  const ok = pod({
    phase: "Running",
    conditions: readyConditions,
    containerStatuses: [{ name: "c0", ready: true, restartCount: 0, image: "x", imageID: "" }],
  });
  assert.equal(isPodReady(ok), true);
  assert.equal(isPodReady(pod({ ...ok.status, phase: "Pending" })), false);
  assert.equal(isPodReady(pod({ ...ok.status }, 2)), false, "a container without a status is not ready");
  assert.equal(isPodReady(pod({ ...ok.status, conditions: [readyConditions[0] as never] })), false);
});

test("Verifies that podProblem names restarts, failures, scheduling and image pulls, in that priority", () => {
  const restarted = pod({
    phase: "Running",
    containerStatuses: [
      {
        name: "c0",
        ready: true,
        restartCount: 2,
        image: "x",
        imageID: "",
        lastState: { terminated: { exitCode: 137, reason: "OOMKilled" } },
      },
    ],
  });
  assert.deepEqual(podProblem(restarted), {
    reason: "restarted",
    message: "pod ns/p: container c0 restarted 2 time(s) (last exit 137, OOMKilled)",
  });
  const pull = pod({
    phase: "Pending",
    containerStatuses: [
      {
        name: "c0",
        ready: false,
        restartCount: 0,
        image: "nope",
        imageID: "",
        state: { waiting: { reason: "ImagePullBackOff" } },
      },
    ],
  });
  assert.equal(podProblem(pull)?.reason, "image-pull");
  const loop = pod({
    phase: "Running",
    containerStatuses: [
      {
        name: "c0",
        ready: false,
        restartCount: 5,
        image: "x",
        imageID: "",
        state: { waiting: { reason: "CrashLoopBackOff" } },
      },
    ],
  });
  assert.equal(podProblem(loop)?.reason, "crash-loop", "a crash loop is more specific than a restart");
  assert.equal(
    podProblem(pod({ phase: "Failed", reason: "Evicted", message: "low memory" }))?.message,
    "pod ns/p: phase Failed (Evicted: low memory)",
  );
  const unschedulable = pod({
    phase: "Pending",
    conditions: [
      { type: "PodScheduled", status: "False", reason: "Unschedulable", message: "0/3 nodes are available" },
    ],
  });
  assert.equal(podProblem(unschedulable)?.reason, "unschedulable");
  assert.equal(
    podProblem(pod({ phase: "Pending" })),
    undefined,
    "a pod that is merely pending has no problem yet",
  );
});

function deployment(spec: number, status: V1Deployment["status"], generation = 2): V1Deployment {
  return {
    metadata: { name: "d", namespace: "ns", generation },
    spec: { replicas: spec, selector: {}, template: {} },
    status,
  };
}

test("Verifies that rolloutState follows kubectl rollout status", () => {
  assert.match(
    (rolloutState(deployment(2, { observedGeneration: 1 })) as { message: string }).message,
    /waiting for the controller/,
  );
  assert.match(
    (
      rolloutState(deployment(2, { observedGeneration: 2, updatedReplicas: 1, replicas: 2 })) as {
        message: string;
      }
    ).message,
    /1 of 2 replicas updated/,
  );
  assert.match(
    (
      rolloutState(deployment(2, { observedGeneration: 2, updatedReplicas: 2, replicas: 3 })) as {
        message: string;
      }
    ).message,
    /1 old replica/,
  );
  assert.match(
    (
      rolloutState(
        deployment(2, { observedGeneration: 2, updatedReplicas: 2, replicas: 2, availableReplicas: 1 }),
      ) as { message: string }
    ).message,
    /1 of 2 updated replicas available/,
  );
  assert.deepEqual(
    rolloutState(
      deployment(2, { observedGeneration: 2, updatedReplicas: 2, replicas: 2, availableReplicas: 2 }),
    ),
    { done: true },
  );
  const stuck = rolloutState(
    deployment(2, {
      observedGeneration: 2,
      conditions: [
        { type: "Progressing", status: "False", reason: "ProgressDeadlineExceeded", message: "too slow" },
      ],
    }),
  );
  assert.equal(stuck.done === false && stuck.failed, true);
});
