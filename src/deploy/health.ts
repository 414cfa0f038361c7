import {
  isPodReady,
  podProblem,
  toKubeError,
  type CoreV1Event,
  type KubeClient,
  type PodProblemReason,
  type V1Pod,
} from "../kube/index.js";

/**
 * How a service's pods are doing, in words: for each pod its phase, readiness, restarts, and
 * when something is wrong, why (image pull, crash, unschedulable, failing probe, ...), from the
 * pod's status and, for what the status does not say (a failing probe), its Warning events.
 */

/** PodHealthReason is why a pod is not healthy: a podProblem reason, a failing probe, or not ready yet. */
export type PodHealthReason = PodProblemReason | "probe" | "pending";

/** PodReport is one pod as `deploy status` and a failed rollout show it. */
export interface PodReport {
  name: string;
  phase: string;
  ready: boolean;
  restarts: number;
  image?: string;
  /** problem is set when the pod is not healthy. */
  problem?: { reason: PodHealthReason; message: string };
}

/** PodQuery picks the pods to report on. */
export interface PodQuery {
  labelSelector: string;
  /** podTemplateHash keeps only the pods of one Deployment revision. */
  podTemplateHash?: string;
}

/** podReports reports on the pods a selector picks, problems first, then by name. */
export async function podReports(
  client: KubeClient,
  namespace: string,
  query: PodQuery,
): Promise<PodReport[]> {
  let pods: V1Pod[];
  let events: CoreV1Event[];
  try {
    [pods, events] = await Promise.all([
      client.core.listNamespacedPod({ namespace, labelSelector: query.labelSelector }).then((l) => l.items),
      client.core
        .listNamespacedEvent({ namespace, fieldSelector: "involvedObject.kind=Pod,type=Warning" })
        .then((l) => l.items),
    ]);
  } catch (err) {
    throw toKubeError(err, `list pods in ${namespace}`);
  }
  const latest = latestEventByPod(events);
  return pods
    .filter(
      (p) =>
        !p.metadata?.deletionTimestamp &&
        (query.podTemplateHash === undefined ||
          p.metadata?.labels?.["pod-template-hash"] === query.podTemplateHash),
    )
    .map((p) => podReport(p, latest.get(p.metadata?.name ?? "")))
    .sort((a, b) => Number(!a.problem) - Number(!b.problem) || a.name.localeCompare(b.name));
}

function eventTime(e: CoreV1Event): number {
  const t = e.lastTimestamp ?? e.eventTime ?? e.firstTimestamp ?? e.metadata?.creationTimestamp;
  return t ? new Date(t).getTime() : 0;
}

function latestEventByPod(events: CoreV1Event[]): Map<string, CoreV1Event> {
  const latest = new Map<string, CoreV1Event>();
  for (const e of events) {
    const name = e.involvedObject.name ?? "";
    const seen = latest.get(name);
    if (!seen || eventTime(e) >= eventTime(seen)) latest.set(name, e);
  }
  return latest;
}

/** podReport describes one pod; `warning` is its latest Warning event, if any. */
export function podReport(pod: V1Pod, warning?: CoreV1Event): PodReport {
  const statuses = pod.status?.containerStatuses ?? [];
  const image = pod.spec?.containers[0]?.image;
  const base: PodReport = {
    name: pod.metadata?.name ?? "?",
    phase: pod.status?.phase ?? "Pending",
    ready: isPodReady(pod),
    restarts: statuses.reduce((n, c) => n + (c.restartCount ?? 0), 0),
    ...(image ? { image } : {}),
  };
  const problem = podProblem(pod) ?? (base.ready ? undefined : notReady(pod, base, warning));
  return problem ? { ...base, problem } : base;
}

/** notReady says why a pod without a podProblem is not ready: a failing probe, pending, or unknown. */
function notReady(pod: V1Pod, base: PodReport, warning?: CoreV1Event): PodReport["problem"] {
  const prefix = `pod ${pod.metadata?.namespace ?? ""}/${base.name}`;
  if (warning?.reason === "Unhealthy") {
    // A failing probe shows only as an event ("Readiness probe failed: HTTP probe failed with statuscode: 503").
    return { reason: "probe", message: `${prefix}: ${warning.message ?? "probe failed"}` };
  }
  const why = warning ? ` (${warning.reason ?? "Warning"}: ${warning.message ?? ""})` : "";
  return base.phase === "Pending"
    ? { reason: "pending", message: `${prefix}: pending${why}` }
    : { reason: "unready", message: `${prefix}: ${base.phase} but not ready${why}` };
}
