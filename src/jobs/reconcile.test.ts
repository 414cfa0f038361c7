import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { V1Pod } from "@kubernetes/client-node";
import { DEFAULT_APP_ID_PATH, parseAppIdPath } from "./appid.js";
import { Outbox } from "./outbox.js";
import { REPORT_FINALIZER } from "./mutation.js";
import {
  decideReport,
  JobPodReconciler,
  releasable,
  REPORTED_ANNOTATION,
  reportedAnnotationPatch,
} from "./reconcile.js";

const path = parseAppIdPath(DEFAULT_APP_ID_PATH);

function finishedPod(): V1Pod {
  return JSON.parse(readFileSync(new URL("./testdata/pod-succeeded.json", import.meta.url), "utf8")) as V1Pod;
}

function runningPod(): V1Pod {
  const pod = finishedPod();
  pod.status = { phase: "Running", containerStatuses: [] };
  return pod;
}

function setup(): { reconciler: JobPodReconciler; outbox: Outbox; wakes: () => number } {
  const outbox = Outbox.open(join(mkdtempSync(join(tmpdir(), "kubewise-reconcile-")), "outbox.sqlite"));
  let wakes = 0;
  const reconciler = new JobPodReconciler({ path, outbox, reporter: { notify: () => wakes++ } });
  return { reconciler, outbox, wakes: () => wakes };
}

test("Verifies that only finished or deleted job pods without the reported annotation are reported", () => {
  assert.equal(decideReport(finishedPod(), { path, deleted: false }).action, "report");
  assert.deepEqual(decideReport(runningPod(), { path, deleted: false }), {
    action: "skip",
    reason: "not-finished",
  });
  assert.equal(decideReport(runningPod(), { path, deleted: true }).action, "report");

  const notJob = finishedPod();
  notJob.spec?.containers[0]?.env?.splice(0);
  assert.deepEqual(decideReport(notJob, { path, deleted: false }), { action: "skip", reason: "not-a-job" });

  const reported = finishedPod();
  reported.metadata = {
    ...reported.metadata,
    annotations: { [REPORTED_ANNOTATION]: "2024-05-01T10:03:00Z" },
  };
  assert.deepEqual(decideReport(reported, { path, deleted: true }), {
    action: "skip",
    reason: "already-reported",
  });

  const noUid = finishedPod();
  delete noUid.metadata?.uid;
  assert.deepEqual(decideReport(noUid, { path, deleted: false }), { action: "skip", reason: "no-uid" });
});

test("Verifies that the report carries the pod's identity and its measurement", () => {
  const decision = decideReport(finishedPod(), { path, deleted: false });
  assert.equal(decision.action, "report");
  assert.ok(decision.action === "report");
  assert.equal(decision.report.uid, "5f0c8a5e-3d7a-4c1e-9a51-0c1d2e3f4a5b");
  assert.equal(decision.report.appId, "render-video");
  assert.equal(decision.report.namespace, "batch");
  assert.equal(decision.report.pod, "render-7x2kq");
  assert.equal(decision.report.param.metrics?.duration?.value, 160);
  assert.equal(decision.report.param.idempotency_key, decision.report.uid);
});

test("Verifies that a pod seen again (update, delete, relist, restart) is queued once", () => {
  const { reconciler, outbox, wakes } = setup();
  try {
    assert.equal(reconciler.reconcile(runningPod()), "skipped:not-finished");
    assert.equal(reconciler.reconcile(finishedPod()), "enqueued");
    assert.equal(wakes(), 1);
    assert.equal(reconciler.reconcile(finishedPod()), "known:pending");
    assert.equal(reconciler.reconcile(finishedPod(), true), "known:pending");
    outbox.markDelivered("5f0c8a5e-3d7a-4c1e-9a51-0c1d2e3f4a5b");
    assert.equal(reconciler.reconcile(finishedPod()), "known:delivered");
    assert.equal(wakes(), 2, "a delivered but unmarked report wakes the reporter to retry the mark");
    outbox.markMarked("5f0c8a5e-3d7a-4c1e-9a51-0c1d2e3f4a5b");
    assert.equal(reconciler.reconcile(finishedPod()), "known:delivered");
    assert.equal(wakes(), 2);
    assert.equal(outbox.counts().pending + outbox.counts().delivered, 1);
  } finally {
    outbox.close();
  }
});

test("Verifies that the reported-annotation patch carries the uid as a precondition", () => {
  assert.deepEqual(reportedAnnotationPatch("u-1", Date.parse("2024-05-01T10:03:00Z")), {
    metadata: { uid: "u-1", annotations: { [REPORTED_ANNOTATION]: "2024-05-01T10:03:00.000Z" } },
  });
});

function held(pod: V1Pod, deleting = false): V1Pod {
  pod.metadata = {
    ...pod.metadata,
    finalizers: ["example.com/other", REPORT_FINALIZER],
    deletionTimestamp: deleting ? new Date("2024-05-01T10:05:00Z") : undefined,
  };
  return pod;
}

test("Verifies that the report finalizer is released only once the report is in the outbox or was sent before, or the pod needs none", () => {
  const released: string[] = [];
  const outbox = Outbox.open(join(mkdtempSync(join(tmpdir(), "kubewise-reconcile-")), "outbox.sqlite"));
  try {
    const reconciler = new JobPodReconciler({
      path,
      outbox,
      reporter: { notify: () => undefined },
      release: (pod) => released.push(pod.metadata?.name ?? ""),
    });
    assert.equal(reconciler.reconcile(held(runningPod())), "skipped:not-finished");
    assert.deepEqual(released, [], "a running job pod keeps it");
    assert.equal(reconciler.reconcile(held(finishedPod())), "enqueued");
    assert.equal(released.length, 1, "released right after the outbox write");
    assert.equal(reconciler.reconcile(held(finishedPod())), "known:pending");
    assert.equal(released.length, 2, "seen again: released again (the source skips a release in flight)");
    assert.equal(reconciler.reconcile(finishedPod()), "known:pending");
    assert.equal(released.length, 2, "a pod without the finalizer has nothing to release");
  } finally {
    outbox.close();
  }

  // A pod being deleted while it runs is its last state: reported as deleted, then released.
  const deleting = decideReport(held(runningPod(), true), { path, deleted: false });
  assert.equal(deleting.action, "report");
  assert.ok(deleting.action === "report");
  assert.equal(deleting.report.param.status, "failed");

  const notJob = held(finishedPod(), true);
  notJob.spec?.containers[0]?.env?.splice(0);
  assert.equal(releasable(notJob, "skipped:not-a-job"), true, "a pod no longer a job is let go when deleted");
  assert.equal(releasable(held(finishedPod()), "skipped:not-a-job"), false);
  assert.equal(releasable(held(finishedPod()), "skipped:already-reported"), true);
  assert.equal(releasable(held(runningPod(), true), "skipped:not-finished"), false);
  assert.equal(releasable(finishedPod(), "enqueued"), false);
});

test("Verifies that a deletion inferred from a relist reports an unfinished pod's outcome as unknown, not as a failed run", () => {
  const { reconciler, outbox } = setup();
  try {
    const running = runningPod();
    assert.equal(reconciler.reconcile(running, true, true), "enqueued");
    const param = outbox.get(running.metadata?.uid ?? "")?.param;
    assert.equal(param?.status, "failed");
    assert.equal(param?.reason, "outcome-unknown");
    assert.equal(
      param?.message,
      "job pod was deleted while the watch was interrupted; its outcome is unknown (last known phase Running)",
    );
  } finally {
    outbox.close();
  }

  // Even a container finish in the stale state proves nothing while the pod had not finished.
  const stale = finishedPod();
  stale.status = { ...stale.status, phase: "Running" };
  const unknown = decideReport(stale, { path, deleted: true, inferred: true });
  assert.ok(unknown.action === "report");
  assert.equal(unknown.report.param.status, "failed");
  assert.equal(unknown.report.param.reason, "outcome-unknown");
  assert.equal(unknown.report.param.metrics, undefined);

  const pending = runningPod();
  pending.status = { phase: "Pending" };
  const never = decideReport(pending, { path, deleted: true, inferred: true });
  assert.ok(never.action === "report");
  assert.match(String(never.report.param.message), /last known phase Pending\)$/);

  // A pod whose cached state had finished is reported from that state.
  const finished = decideReport(finishedPod(), { path, deleted: true, inferred: true });
  assert.ok(finished.action === "report");
  assert.equal(finished.report.param.status, "ok");
  assert.equal(finished.report.param.metrics?.duration?.value, 160);

  // A deletion the watch saw keeps its reasons.
  const seen = decideReport(runningPod(), { path, deleted: true, inferred: false });
  assert.ok(seen.action === "report");
  assert.equal(seen.report.param.reason, "deleted-before-run");
  const notDeleted = decideReport(runningPod(), { path, deleted: false, inferred: true });
  assert.deepEqual(notDeleted, { action: "skip", reason: "not-finished" });
});
