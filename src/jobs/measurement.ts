/**
 * What a finished job pod is worth to the optimizer: its run time and the resources it ran with,
 * as a servo-protocol MEASUREMENT param. Pure: the pod object comes in, plain data goes out.
 *
 * The measured container is the app container: the one the app-id path points into
 * (`spec/containers/N/...`, see appContainerIndex), else container 0 as in the original. Its run
 * time is `finishedAt - startedAt` of its terminated state. Kubernetes timestamps have a
 * resolution of one second, so a job shorter than that measures 0 s; perf (1/duration) is then
 * left out rather than made up, and an annotation says why.
 */
import type { V1Container, V1ContainerStatus, V1Pod, V1ResourceRequirements } from "@kubernetes/client-node";
import { parseCpu, parseMemoryGiB } from "../kube/index.js";
import { eventRequest, type ScalarMetric } from "../servo/index.js";
import { podSettingsIdentity } from "./mutation.js";

/** JobOutcome says whether the app container ran to the end: `ran`, or never ran (or never finished). */
export type JobOutcome = "ran" | "never-ran";

/**
 * NEVER_RAN_REASONS is the vocabulary of failed measurements: `deleted-before-run` (the pod was
 * deleted before its container started; the original's "job deleted before it ran"),
 * `deleted-while-running` (deleted after the start, before a finish was recorded),
 * `failed-before-run` (the pod failed, e.g. evicted or past its deadline, before the container
 * ever started) and `failed-while-running` (the pod failed after the container started, but no
 * finish was recorded: evicted, past its deadline or its node lost while it ran). "Started" is
 * any startedAt the container status shows: of its running or terminated state, or of its
 * lastState (an earlier attempt). `outcome-unknown` is a pod deleted while the watch was
 * interrupted, whose last state seen had not finished: it may have finished meanwhile, or not,
 * so it is reported as failed without claiming that the run failed.
 */
export const NEVER_RAN_REASONS = [
  "deleted-before-run",
  "deleted-while-running",
  "failed-before-run",
  "failed-while-running",
  "outcome-unknown",
] as const;
/** NeverRanReason is one of NEVER_RAN_REASONS. */
export type NeverRanReason = (typeof NEVER_RAN_REASONS)[number];

/** JobRun is what one finished job pod tells about its run, in plain numbers. */
export interface JobRun {
  uid: string;
  name: string;
  namespace: string;
  node: string | undefined;
  appId: string;
  /** container is the app container's name. */
  container: string | undefined;
  phase: string | undefined;
  outcome: JobOutcome;
  /** neverRanReason is set when outcome is `never-ran`. */
  neverRanReason: NeverRanReason | undefined;
  /** detail is the pod's or container's own word for how it ended (Completed, Error, Evicted ...). */
  detail: string | undefined;
  startedAtMs: number | undefined;
  finishedAtMs: number | undefined;
  durationSeconds: number | undefined;
  exitCode: number | undefined;
  /** cpuCores is the app container's cpu limit, else its request (the seed's settings are limits). */
  cpuCores: number | undefined;
  /** memGiB is the app container's memory limit, else its request. */
  memGiB: number | undefined;
  resources: V1ResourceRequirements | undefined;
  /**
   * settings names the tuned settings the admission webhook applied to the pod (their version,
   * see settingsIdentity); undefined when it applied none.
   */
  settings: string | undefined;
}

/** JobRunOptions tell describeJobRun what it cannot see in the pod alone. */
export interface JobRunOptions {
  /** appId is the pod's resolved app id. */
  appId: string;
  /** containerIndex is the app container's index in spec.containers. @default 0 */
  containerIndex?: number;
  /** deleted is true when the pod is gone from the API (a watch DELETED event). */
  deleted?: boolean;
  /**
   * deletionInferred is true when the deletion was inferred from a relist, not seen: the pod is
   * then its last state seen, and if that had not finished the outcome is unknown.
   */
  deletionInferred?: boolean;
}

/** isPodFinished is true for the phases after which a pod's containers never run again. */
export function isPodFinished(pod: V1Pod): boolean {
  const phase = pod.status?.phase;
  return phase === "Succeeded" || phase === "Failed";
}

/**
 * describeJobRun reads a finished (or deleted) job pod's run. It does not decide whether the pod
 * is finished; callers ask isPodFinished or know it was deleted.
 */
export function describeJobRun(pod: V1Pod, options: JobRunOptions): JobRun {
  const { spec, status } = appContainer(pod, options.containerIndex ?? 0);
  const times = runTimes(status);
  const unknown = outcomeUnknown(pod, options);
  const ran = !unknown && times.durationSeconds !== undefined;
  // Resources the container actually has (in-place resize reports them in status) win over the spec.
  const resources = status?.resources ?? spec?.resources;
  const terminated = status?.state?.terminated;
  return {
    ...podIdentity(pod),
    appId: options.appId,
    container: spec?.name,
    outcome: ran ? "ran" : "never-ran",
    neverRanReason: ran ? undefined : neverRanReason(status, options.deleted === true, unknown),
    detail: terminated?.reason ?? pod.status?.reason,
    ...times,
    exitCode: terminated?.exitCode,
    cpuCores: quantity(resources, "cpu", parseCpu),
    memGiB: quantity(resources, "memory", parseMemoryGiB),
    resources,
  };
}

// outcomeUnknown is true for a deletion inferred from a stale state that had not finished: that
// state proves nothing about the run, not even a container finish it shows.
function outcomeUnknown(pod: V1Pod, options: JobRunOptions): boolean {
  return options.deletionInferred === true && !isPodFinished(pod);
}

function podIdentity(pod: V1Pod): Pick<JobRun, "uid" | "name" | "namespace" | "node" | "phase" | "settings"> {
  const meta = pod.metadata;
  return {
    uid: meta?.uid ?? "",
    name: meta?.name ?? "",
    namespace: meta?.namespace ?? "",
    node: pod.spec?.nodeName,
    phase: pod.status?.phase,
    settings: podSettingsIdentity(meta?.annotations) || undefined,
  };
}

// runTimes reads the start and finish of the container's last run; a run that has not finished
// (still running, or deleted while running) has a start but no duration.
function runTimes(
  status: V1ContainerStatus | undefined,
): Pick<JobRun, "startedAtMs" | "finishedAtMs" | "durationSeconds"> {
  const terminated = status?.state?.terminated;
  const startedAtMs = toMs(terminated?.startedAt ?? status?.state?.running?.startedAt);
  const finishedAtMs = toMs(terminated?.finishedAt);
  if (startedAtMs === undefined || finishedAtMs === undefined) {
    return { startedAtMs, finishedAtMs, durationSeconds: undefined };
  }
  return { startedAtMs, finishedAtMs, durationSeconds: Math.max(0, (finishedAtMs - startedAtMs) / 1000) };
}

/**
 * MeasurementPayload is a MEASUREMENT param as kubewise sends it for one job pod: the servox
 * shape that src/servo/protocol.ts's measurementReply / failureReply build (status, reason,
 * metrics, annotations as strings), plus the idempotency key.
 */
export interface MeasurementPayload {
  status: "ok" | "failed";
  reason: string;
  message?: string;
  metrics?: Record<string, ScalarMetric>;
  annotations: Record<string, string>;
  /** idempotency_key is the pod uid, so a receiver can drop a report it already has. */
  idempotency_key: string;
}

/** MeasurementEvent is the body POSTed for one job pod: `{event: "MEASUREMENT", param}`. */
export interface MeasurementEvent {
  event: "MEASUREMENT";
  param: MeasurementPayload;
}

/**
 * measurementParam builds the MEASUREMENT param of a run: metrics `duration` (s), `perf` (1/s,
 * left out for a 0 s run), `cpu` (cores) and `mem` (GiB) when the container had them; annotations
 * pod, pod_uid, namespace, node, container, app_id, phase, exitcode, resources (the container's
 * resources as JSON, as the original sent them). A run that never ran is a failed measurement
 * whose reason is a NeverRanReason. The pod uid is the idempotency key.
 */
export function measurementParam(run: JobRun): MeasurementPayload {
  const annotations = runAnnotations(run);
  if (run.outcome === "never-ran" || run.durationSeconds === undefined) {
    const reason = run.neverRanReason ?? "deleted-before-run";
    const message = neverRanMessage(reason, run.detail, run.phase);
    return { status: "failed", reason, message, annotations, idempotency_key: run.uid };
  }
  const metrics: Record<string, ScalarMetric> = { duration: { value: run.durationSeconds, unit: "s" } };
  if (run.durationSeconds > 0) metrics.perf = { value: 1 / run.durationSeconds, unit: "1/s" };
  else annotations.perf = "left out: the run took less than the 1 s resolution of Kubernetes timestamps";
  if (run.cpuCores !== undefined) metrics.cpu = { value: run.cpuCores, unit: "cores" };
  if (run.memGiB !== undefined) metrics.mem = { value: run.memGiB, unit: "GiB" };
  return { status: "ok", reason: "success", metrics, annotations, idempotency_key: run.uid };
}

/** measurementEvent wraps a param as the event body. */
export function measurementEvent(param: MeasurementPayload): MeasurementEvent {
  return eventRequest("MEASUREMENT", param) as MeasurementEvent;
}

function runAnnotations(run: JobRun): Record<string, string> {
  const annotations: Record<string, string> = {
    pod: run.name,
    pod_uid: run.uid,
    namespace: run.namespace,
    app_id: run.appId,
  };
  if (run.node !== undefined) annotations.node = run.node;
  if (run.container !== undefined) annotations.container = run.container;
  if (run.phase !== undefined) annotations.phase = run.phase;
  if (run.exitCode !== undefined) annotations.exitcode = String(run.exitCode);
  if (run.detail !== undefined) annotations.termination_reason = run.detail;
  if (run.startedAtMs !== undefined) annotations.started_at = new Date(run.startedAtMs).toISOString();
  if (run.finishedAtMs !== undefined) annotations.finished_at = new Date(run.finishedAtMs).toISOString();
  annotations.resources = JSON.stringify(plainResources(run.resources));
  if (run.settings !== undefined) annotations.tuned_settings = run.settings;
  return annotations;
}

function neverRanReason(
  status: V1ContainerStatus | undefined,
  deleted: boolean,
  unknown: boolean,
): NeverRanReason {
  if (unknown) return "outcome-unknown";
  const started = everStarted(status);
  if (deleted) return started ? "deleted-while-running" : "deleted-before-run";
  return started ? "failed-while-running" : "failed-before-run";
}

// everStarted is true when the container status shows any start: a container that started and
// then lost its finish (a lost node, an eviction) did run, and "before run" would misreport it.
function everStarted(status: V1ContainerStatus | undefined): boolean {
  const starts = [
    status?.state?.running?.startedAt,
    status?.state?.terminated?.startedAt,
    status?.lastState?.running?.startedAt,
    status?.lastState?.terminated?.startedAt,
  ];
  return starts.some((value) => toMs(value) !== undefined);
}

function neverRanMessage(
  reason: NeverRanReason,
  detail: string | undefined,
  phase: string | undefined,
): string {
  const suffix = detail === undefined ? "" : ` (${detail})`;
  switch (reason) {
    case "outcome-unknown":
      return `job pod was deleted while the watch was interrupted; its outcome is unknown (last known phase ${phase ?? "unknown"})`;
    case "deleted-before-run":
      return `job deleted before it ran${suffix}`;
    case "deleted-while-running":
      return `job deleted while it ran; no finish time was recorded${suffix}`;
    case "failed-before-run":
      return `job failed before its container ran${suffix}`;
    case "failed-while-running":
      return `job failed after its container started; no finish time was recorded${suffix}`;
  }
}

// appContainer finds the container's spec and its status; the status is matched by name, since
// the API does not promise containerStatuses in spec order.
function appContainer(pod: V1Pod, index: number): { spec?: V1Container; status?: V1ContainerStatus } {
  const spec = pod.spec?.containers[index];
  const statuses = pod.status?.containerStatuses ?? [];
  const status = spec === undefined ? statuses[index] : statuses.find((s) => s.name === spec.name);
  return { spec, status };
}

// toMs accepts Date (client-node's typed objects) and RFC 3339 strings (raw JSON, e.g. tests and
// admission requests), since both reach this module.
function toMs(value: Date | string | undefined): number | undefined {
  if (value === undefined || value === null) return undefined;
  const ms = value instanceof Date ? value.getTime() : Date.parse(value);
  return Number.isFinite(ms) ? ms : undefined;
}

function quantity(
  resources: V1ResourceRequirements | undefined,
  name: "cpu" | "memory",
  parse: (value: string) => number,
): number | undefined {
  const text = resources?.limits?.[name] ?? resources?.requests?.[name];
  if (text === undefined) return undefined;
  try {
    return parse(String(text));
  } catch {
    // The API server validated the quantity when the pod was created; an unreadable one here
    // means a newer syntax we do not know, and the run time is still worth reporting.
    return undefined;
  }
}

function plainResources(resources: V1ResourceRequirements | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (resources?.limits !== undefined) out.limits = { ...resources.limits };
  if (resources?.requests !== undefined) out.requests = { ...resources.requests };
  return out;
}
