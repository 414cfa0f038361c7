import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import type { V1Pod } from "@kubernetes/client-node";
import { parseEvent } from "../servo/index.js";
import { describeJobRun, isPodFinished, measurementEvent, measurementParam } from "./measurement.js";
import { SETTINGS_ANNOTATION } from "./mutation.js";

function fixture(): V1Pod {
  return JSON.parse(readFileSync(new URL("./testdata/pod-succeeded.json", import.meta.url), "utf8")) as V1Pod;
}

function appStatus(pod: V1Pod) {
  const status = pod.status?.containerStatuses?.find((s) => s.name === "render");
  assert.ok(status);
  return status;
}

const opts = { appId: "render-video" };

test("Verifies that a succeeded pod yields duration, perf, cpu and mem of the app container", () => {
  const param = measurementParam(describeJobRun(fixture(), opts));
  assert.equal(param.status, "ok");
  assert.equal(param.reason, "success");
  assert.deepEqual(param.metrics, {
    duration: { value: 160, unit: "s" },
    perf: { value: 1 / 160, unit: "1/s" },
    cpu: { value: 0.5, unit: "cores" },
    mem: { value: 0.5, unit: "GiB" },
  });
  assert.equal(param.idempotency_key, "5f0c8a5e-3d7a-4c1e-9a51-0c1d2e3f4a5b");
});

test("Verifies that the annotations name the pod, uid, namespace, node, exit code and resources", () => {
  const { annotations } = measurementParam(describeJobRun(fixture(), opts)) as {
    annotations: Record<string, string>;
  };
  assert.equal(annotations.pod, "render-7x2kq");
  assert.equal(annotations.pod_uid, "5f0c8a5e-3d7a-4c1e-9a51-0c1d2e3f4a5b");
  assert.equal(annotations.namespace, "batch");
  assert.equal(annotations.node, "kwok-node-0");
  assert.equal(annotations.exitcode, "0");
  assert.equal(annotations.container, "render");
  assert.equal(annotations.app_id, "render-video");
  assert.equal(annotations.started_at, "2024-05-01T10:00:02.000Z");
  assert.deepEqual(JSON.parse(annotations.resources ?? ""), {
    limits: { cpu: "500m", memory: "512Mi" },
    requests: { cpu: "250m", memory: "256Mi" },
  });
  for (const value of Object.values(annotations))
    assert.equal(typeof value, "string", "servox annotations are str:str");
});

test("Verifies that a pod the webhook tuned carries the identity of its settings into the run and the report", () => {
  assert.equal(describeJobRun(fixture(), opts).settings, undefined, "an untuned pod has none");
  const pod = fixture();
  pod.metadata = {
    ...pod.metadata,
    annotations: {
      [SETTINGS_ANNOTATION]: JSON.stringify({ cpu: 0.5, resources: "both", version: "adjust-5" }),
    },
  };
  const run = describeJobRun(pod, opts);
  assert.equal(run.settings, "adjust-5");
  const { annotations } = measurementParam(run) as { annotations: Record<string, string> };
  assert.equal(annotations.tuned_settings, "adjust-5");
});

test("Verifies that the MEASUREMENT event parses with the servo protocol's own parser", () => {
  const event = measurementEvent(measurementParam(describeJobRun(fixture(), opts)));
  const parsed = parseEvent(JSON.parse(JSON.stringify(event)));
  assert.equal(parsed.event, "MEASUREMENT");
  assert.ok(!("progress" in parsed));
  assert.equal((parsed.param.metrics?.duration as { value: number }).value, 160);
});

test("Verifies that client-node's Date timestamps work as well as strings", () => {
  const pod = fixture();
  const terminated = appStatus(pod).state?.terminated;
  assert.ok(terminated);
  terminated.startedAt = new Date("2024-05-01T10:00:00Z");
  terminated.finishedAt = new Date("2024-05-01T10:00:30Z");
  assert.equal(describeJobRun(pod, opts).durationSeconds, 30);
});

test("Verifies that a 0 s run reports duration 0 and leaves perf out instead of dividing by zero", () => {
  const pod = fixture();
  const terminated = appStatus(pod).state?.terminated;
  assert.ok(terminated);
  terminated.finishedAt = terminated.startedAt;
  const param = measurementParam(describeJobRun(pod, opts)) as {
    metrics: Record<string, { value: number }>;
    annotations: Record<string, string>;
  };
  assert.equal(param.metrics.duration?.value, 0);
  assert.equal(param.metrics.perf, undefined);
  assert.match(param.annotations.perf ?? "", /resolution/);
  for (const m of Object.values(param.metrics)) assert.ok(Number.isFinite(m.value));
});

test("Verifies that the app container follows the app-id path's container index", () => {
  const run = describeJobRun(fixture(), { appId: "x", containerIndex: 1 });
  assert.equal(run.container, "log-shipper");
  assert.equal(run.durationSeconds, 600);
  assert.equal(run.cpuCores, 0.05, "the request when there is no limit");
  assert.equal(run.memGiB, undefined);
});

test("Verifies that a failed run still reports its time, with its exit code", () => {
  const pod = fixture();
  pod.status = { ...pod.status, phase: "Failed" };
  const terminated = appStatus(pod).state?.terminated;
  assert.ok(terminated);
  terminated.exitCode = 137;
  terminated.reason = "OOMKilled";
  const param = measurementParam(describeJobRun(pod, opts)) as {
    status: string;
    annotations: Record<string, string>;
  };
  assert.equal(param.status, "ok");
  assert.equal(param.annotations.exitcode, "137");
  assert.equal(param.annotations.termination_reason, "OOMKilled");
  assert.equal(param.annotations.phase, "Failed");
});

test("Verifies that a pod deleted before it ran is a failed measurement with that reason", () => {
  const pod = fixture();
  pod.status = { phase: "Pending", containerStatuses: [] };
  const run = describeJobRun(pod, { ...opts, deleted: true });
  assert.equal(run.outcome, "never-ran");
  const param = measurementParam(run);
  assert.equal(param.status, "failed");
  assert.equal(param.reason, "deleted-before-run");
  assert.match(String(param.message), /job deleted before it ran/);
  assert.equal(param.metrics, undefined);
  assert.equal(param.idempotency_key, pod.metadata?.uid);
  assert.equal(param.annotations.pod_uid, pod.metadata?.uid);
});

test("Verifies that a pod deleted while running, or failed before running, says so", () => {
  const running = fixture();
  appStatus(running).state = { running: { startedAt: new Date("2024-05-01T10:00:02Z") } };
  running.status = { ...running.status, phase: "Running" };
  assert.equal(
    measurementParam(describeJobRun(running, { ...opts, deleted: true })).reason,
    "deleted-while-running",
  );

  const evicted = fixture();
  evicted.status = { phase: "Failed", reason: "Evicted", containerStatuses: [] };
  const param = measurementParam(describeJobRun(evicted, opts));
  assert.equal(param.reason, "failed-before-run");
  assert.match(String(param.message), /\(Evicted\)/);
});

test("Verifies that a failed pod whose container started is not called failed-before-run", () => {
  const startedAt = new Date("2024-05-01T10:00:02Z");
  const running = fixture();
  appStatus(running).state = { running: { startedAt } };
  running.status = { ...running.status, phase: "Failed", reason: "DeadlineExceeded" };
  const param = measurementParam(describeJobRun(running, opts));
  assert.equal(param.status, "failed");
  assert.equal(param.reason, "failed-while-running");
  assert.match(String(param.message), /after its container started.*\(DeadlineExceeded\)/);
  assert.equal(param.annotations.started_at, "2024-05-01T10:00:02.000Z");

  const restarted = fixture();
  appStatus(restarted).state = { waiting: { reason: "ContainerCreating" } };
  appStatus(restarted).lastState = {
    terminated: { exitCode: 1, startedAt, finishedAt: new Date("2024-05-01T10:00:09Z") },
  };
  restarted.status = { ...restarted.status, phase: "Failed" };
  assert.equal(describeJobRun(restarted, opts).neverRanReason, "failed-while-running");
  assert.equal(describeJobRun(restarted, { ...opts, deleted: true }).neverRanReason, "deleted-while-running");

  const waiting = fixture();
  appStatus(waiting).state = { waiting: { reason: "ImagePullBackOff" } };
  appStatus(waiting).lastState = {};
  waiting.status = { ...waiting.status, phase: "Failed" };
  assert.equal(describeJobRun(waiting, opts).neverRanReason, "failed-before-run");
  assert.equal(describeJobRun(waiting, { ...opts, deleted: true }).neverRanReason, "deleted-before-run");
});

test("Verifies that missing resources and unreadable quantities leave cpu and mem out", () => {
  const pod = fixture();
  const [container] = pod.spec?.containers ?? [];
  assert.ok(container);
  container.resources = { limits: { cpu: "lots" } };
  const param = measurementParam(describeJobRun(pod, opts)) as { metrics: Record<string, unknown> };
  assert.deepEqual(Object.keys(param.metrics).sort(), ["duration", "perf"]);
  delete container.resources;
  assert.equal(describeJobRun(pod, opts).cpuCores, undefined);
});

test("Verifies that only Succeeded and Failed pods count as finished", () => {
  const pod = fixture();
  assert.equal(isPodFinished(pod), true);
  for (const phase of ["Pending", "Running", "Unknown"]) {
    pod.status = { phase };
    assert.equal(isPodFinished(pod), false, phase);
  }
  pod.status = { phase: "Failed" };
  assert.equal(isPodFinished(pod), true);
});
