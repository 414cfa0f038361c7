/**
 * The watcher's reconcile step for one pod, level-based: whatever event brought the pod (the
 * initial list, an update, a delete, a relist after 410), look at its state and decide. A job
 * pod that has finished, or was deleted, and does not carry REPORTED_ANNOTATION is put in the
 * outbox; the outbox's uid key makes a second look at the same pod a no-op. So on start, every
 * finished pod not yet reported is reported, and no pod is reported twice.
 */
import type { V1Pod } from "@kubernetes/client-node";
import type { Logger } from "../log.js";
import { silentLogger } from "../log.js";
import { appContainerIndex, jobAppId, type AppIdPath } from "./appid.js";
import { describeJobRun, isPodFinished, measurementParam, type JobRun } from "./measurement.js";
import { REPORT_FINALIZER } from "./mutation.js";
import type { NewReport, Outbox, OutboxState } from "./outbox.js";

/**
 * REPORTED_ANNOTATION marks a pod whose report the endpoint accepted (value: when, RFC 3339).
 * The markReported hook writes it after a 2xx; a pod carrying it is never reported again, even
 * after the outbox entry is pruned or the outbox file lost.
 */
export const REPORTED_ANNOTATION = "jobs.kubewise.io/reported";

/** SkipReason says why a pod needs no report (now). */
export type SkipReason = "no-uid" | "not-a-job" | "already-reported" | "not-finished";

/** PodDecision is the pure decision for one pod. */
export type PodDecision =
  { action: "skip"; reason: SkipReason } | { action: "report"; report: NewReport; run: JobRun };

/**
 * decideReport decides whether a pod needs a report and builds it. `deleted` is true when the
 * pod is gone from the API (its last known state is passed); `inferred` when that deletion was
 * inferred from a relist rather than seen, so the state passed is the last one seen before the
 * watch broke off. Such a pod that had not finished then may have finished since, or not: its
 * report is a failure with reason `outcome-unknown`, never a claim that the run failed.
 */
export function decideReport(
  pod: V1Pod,
  options: { path: AppIdPath; deleted: boolean; inferred?: boolean },
): PodDecision {
  const uid = pod.metadata?.uid;
  if (uid === undefined || uid === "") return { action: "skip", reason: "no-uid" };
  const appId = jobAppId(options.path, pod);
  if (appId === undefined) return { action: "skip", reason: "not-a-job" };
  if (pod.metadata?.annotations?.[REPORTED_ANNOTATION] !== undefined)
    return { action: "skip", reason: "already-reported" };
  // A pod being deleted that holds the report finalizer is the last state the watcher will see
  // of it (the API drops it once released), so it counts as deleted already.
  const deleted = options.deleted || (isBeingDeleted(pod) && !isPodFinished(pod));
  if (!deleted && !isPodFinished(pod)) return { action: "skip", reason: "not-finished" };
  const run = describeJobRun(pod, {
    appId,
    containerIndex: appContainerIndex(options.path),
    deleted,
    deletionInferred: options.deleted && options.inferred === true,
  });
  const report: NewReport = {
    uid,
    appId,
    namespace: run.namespace,
    pod: run.name,
    param: measurementParam(run),
  };
  return { action: "report", report, run };
}

/** holdsReport is true when the pod carries REPORT_FINALIZER. */
export function holdsReport(pod: V1Pod): boolean {
  return pod.metadata?.finalizers?.includes(REPORT_FINALIZER) === true;
}

function isBeingDeleted(pod: V1Pod): boolean {
  return pod.metadata?.deletionTimestamp !== undefined && pod.metadata.deletionTimestamp !== null;
}

/**
 * releasable is true when a pod holding REPORT_FINALIZER may let go of it, given what reconcile
 * decided: its report is in the durable outbox (just queued, or known), or it was reported
 * before; or it is being deleted and will never need a report (not a job pod by the configured
 * path, no uid). A job pod still running keeps it.
 */
export function releasable(pod: V1Pod, result: ReconcileResult): boolean {
  if (!holdsReport(pod)) return false;
  if (result === "enqueued" || result.startsWith("known:") || result === "skipped:already-reported")
    return true;
  return result !== "skipped:not-finished" && isBeingDeleted(pod);
}

/**
 * reportedAnnotationPatch is the merge patch the markReported hook applies: it sets
 * REPORTED_ANNOTATION, and carries the pod uid so that the API server refuses it (a conflict)
 * if a new pod has taken the name meanwhile, instead of marking the wrong pod.
 */
export function reportedAnnotationPatch(uid: string, nowMs: number): { metadata: Record<string, unknown> } {
  return { metadata: { uid, annotations: { [REPORTED_ANNOTATION]: new Date(nowMs).toISOString() } } };
}

/** ReconcileResult says what reconcile did: skipped (why), enqueued, or already in the outbox (state). */
export type ReconcileResult = `skipped:${SkipReason}` | "enqueued" | `known:${OutboxState}`;

/** ReportQueue is the part of the Reporter the reconciler needs: a wake-up after an enqueue. */
export interface ReportQueue {
  notify(): void;
}

/** JobPodReconcilerOptions configure a JobPodReconciler. */
export interface JobPodReconcilerOptions {
  path: AppIdPath;
  outbox: Outbox;
  reporter: ReportQueue;
  /**
   * release lets go of REPORT_FINALIZER on a pod whose report no longer needs the pod (see
   * releasable); called after the outbox write, never before. Without it the finalizer is left.
   */
  release?: (pod: V1Pod) => void;
  log?: Logger;
}

/**
 * JobPodReconciler puts finished job pods' reports in the outbox and wakes the reporter. The
 * pod watcher (wired to src/kube) calls reconcile for every pod it sees, with `deleted` set on
 * delete events. Safe to call any number of times for the same pod.
 */
export class JobPodReconciler {
  private readonly options: JobPodReconcilerOptions;
  private readonly log: Logger;

  constructor(options: JobPodReconcilerOptions) {
    this.options = options;
    this.log = options.log ?? silentLogger;
  }

  /** reconcile looks at one pod; `deleted` and `inferred` are as in decideReport. */
  reconcile(pod: V1Pod, deleted = false, inferred = false): ReconcileResult {
    const result = this.decide(pod, deleted, inferred);
    if (this.options.release !== undefined && !deleted && releasable(pod, result)) this.options.release(pod);
    return result;
  }

  private decide(pod: V1Pod, deleted: boolean, inferred: boolean): ReconcileResult {
    const decision = decideReport(pod, { path: this.options.path, deleted, inferred });
    if (decision.action === "skip") return `skipped:${decision.reason}`;
    const { report, run } = decision;
    const result = this.options.outbox.enqueue(report);
    if (!result.added) {
      // Delivered but not yet marked: the reporter retries the mark on its own; wake it.
      if (result.existing.state === "delivered" && result.existing.markedAt === undefined)
        this.options.reporter.notify();
      return `known:${result.existing.state}`;
    }
    this.log.info(
      {
        pod: report.pod,
        namespace: report.namespace,
        uid: report.uid,
        app_id: report.appId,
        outcome: run.outcome,
        duration_s: run.durationSeconds,
      },
      "job pod finished; report queued",
    );
    this.options.reporter.notify();
    return "enqueued";
  }
}
