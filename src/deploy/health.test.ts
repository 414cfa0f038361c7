import { test } from "node:test";
import assert from "node:assert/strict";
import type { CoreV1Event, KubeClient, V1Pod } from "../kube/index.js";
import { podReport, podReports } from "./health.js";

/** runningPod is a Running pod whose one container has started but is not ready. */
function runningPod(name: string, ready = false): V1Pod {
  return {
    metadata: { name, namespace: "shop", labels: { "app.kubernetes.io/name": "web" } },
    spec: { containers: [{ name: "web", image: "ghcr.io/acme/web:1.0" }] },
    status: {
      phase: "Running",
      conditions: [
        { type: "Ready", status: ready ? "True" : "False" },
        { type: "ContainersReady", status: ready ? "True" : "False" },
      ],
      containerStatuses: [
        { name: "web", ready, restartCount: 0, image: "ghcr.io/acme/web:1.0", imageID: "", started: true },
      ],
    },
  };
}

function warning(pod: string, reason: string, message: string, at: string): CoreV1Event {
  return {
    metadata: { name: `${pod}.${reason}`, namespace: "shop" },
    involvedObject: { kind: "Pod", name: pod, namespace: "shop" },
    type: "Warning",
    reason,
    message,
    lastTimestamp: new Date(at),
  };
}

const probeFailed = "Readiness probe failed: HTTP probe failed with statuscode: 503";

test("Verifies that a running, unready pod with an Unhealthy event is reported as a failing probe, with the kubelet's words", () => {
  const report = podReport(
    runningPod("web-0"),
    warning("web-0", "Unhealthy", probeFailed, "2026-01-01T00:00:00Z"),
  );
  assert.deepEqual(report, {
    name: "web-0",
    phase: "Running",
    ready: false,
    restarts: 0,
    image: "ghcr.io/acme/web:1.0",
    problem: { reason: "probe", message: `pod shop/web-0: ${probeFailed}` },
  });
  // Another warning is only shown, not read as a probe failure; with none the pod is just unready.
  assert.deepEqual(
    podReport(runningPod("web-0"), warning("web-0", "BackOff", "x", "2026-01-01T00:00:00Z")).problem,
    { reason: "unready", message: "pod shop/web-0: Running but not ready (BackOff: x)" },
  );
  assert.equal(podReport(runningPod("web-0")).problem?.reason, "unready");
  // A ready pod has no problem, whatever its past events say.
  assert.equal(
    podReport(runningPod("web-0", true), warning("web-0", "Unhealthy", probeFailed, "2026-01-01T00:00:00Z"))
      .problem,
    undefined,
  );
});

test("Verifies that podReports matches each pod with its latest Warning event and lists problems first", async () => {
  const pods = [runningPod("web-b", true), runningPod("web-a")];
  const events = [
    warning("web-a", "Unhealthy", probeFailed, "2026-01-01T00:00:05Z"),
    warning("web-a", "FailedMount", "older", "2026-01-01T00:00:01Z"),
    warning("other", "Unhealthy", "not ours", "2026-01-01T00:00:09Z"),
  ];
  const asked: Record<string, unknown>[] = [];
  const client = {
    core: {
      listNamespacedPod: (q: Record<string, unknown>) => (asked.push(q), Promise.resolve({ items: pods })),
      listNamespacedEvent: (q: Record<string, unknown>) => (
        asked.push(q),
        Promise.resolve({ items: events })
      ),
    },
  } as unknown as KubeClient;
  const reports = await podReports(client, "shop", { labelSelector: "app.kubernetes.io/name=web" });
  assert.deepEqual(
    reports.map((r) => [r.name, r.problem?.reason]),
    [
      ["web-a", "probe"],
      ["web-b", undefined],
    ],
  );
  assert.equal(reports[0]?.problem?.message, `pod shop/web-a: ${probeFailed}`);
  assert.deepEqual(asked, [
    { namespace: "shop", labelSelector: "app.kubernetes.io/name=web" },
    { namespace: "shop", fieldSelector: "involvedObject.kind=Pod,type=Warning" },
  ]);
});
