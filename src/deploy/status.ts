import {
  deploymentSelector,
  rolloutState,
  type KubeClient,
  type KubernetesObject,
  type V1CronJob,
  type V1Deployment,
  type V1HorizontalPodAutoscaler,
  type V2HorizontalPodAutoscaler,
  type V1Ingress,
  type V1PodDisruptionBudget,
  type V1Service,
  type V1StatefulSet,
} from "../kube/index.js";
import { podReports, type PodReport } from "./health.js";
import { appliedByKubewise, listServiceObjects, refKey, refOf, type ObjectRef } from "./inventory.js";
import type { Manifest } from "./render.js";

/**
 * serviceStatus reads what a service is doing: its objects (and, given the spec's manifests,
 * which ones are missing), the workload's rollout, the pods with their problems, and the
 * autoscaler's replicas and metrics against their targets.
 */

/** ObjectStatus is one object of the service. */
export interface ObjectStatus {
  ref: ObjectRef;
  /** present is false for an object the spec asks for that is not in the cluster. */
  present: boolean;
  /** detail is a short summary: ports, hosts, schedule, allowed disruptions. */
  detail: string;
  /** foreign: it has the service's labels but kubewise never applied it. */
  foreign: boolean;
}

/** WorkloadStatus is the Deployment's or StatefulSet's replicas and rollout. */
export interface WorkloadStatus {
  kind: string;
  name: string;
  desired: number;
  ready: number;
  updated: number;
  available: number;
  revision?: string;
  done: boolean;
  /** rollout is "complete" or what it is waiting for. */
  rollout: string;
}

/** MetricStatus is one autoscaling metric: current and target utilization in percent. */
export interface MetricStatus {
  name: string;
  current?: number;
  target?: number;
}

/** AutoscalerStatus is the HPA's view. */
export interface AutoscalerStatus {
  name: string;
  min: number;
  max: number;
  current: number;
  desired: number;
  metrics: MetricStatus[];
  /** conditions that are not True, e.g. ScalingActive False because no metrics are available. */
  problems: string[];
}

/** ServiceStatus is everything `deploy status` shows. */
export interface ServiceStatus {
  service: string;
  namespace: string;
  objects: ObjectStatus[];
  workload?: WorkloadStatus;
  autoscaler?: AutoscalerStatus;
  pods: PodReport[];
}

/** serviceStatus reads the status; manifests (from the spec) add the objects not applied yet. */
export async function serviceStatus(
  client: KubeClient,
  namespace: string,
  service: string,
  manifests: readonly Manifest[] = [],
): Promise<ServiceStatus> {
  const live = await listServiceObjects(client, namespace, service);
  const objects: ObjectStatus[] = live.map((o) => ({
    ref: refOf(o, namespace),
    present: true,
    detail: detailOf(o),
    foreign: !appliedByKubewise(o),
  }));
  const present = new Set(objects.map((o) => refKey(o.ref)));
  for (const m of manifests) {
    const ref = refOf(m, namespace);
    if (!present.has(refKey(ref)))
      objects.push({ ref, present: false, detail: "not applied", foreign: false });
  }
  const status: ServiceStatus = { service, namespace, objects, pods: [] };
  const deployment = live.find((o) => o.kind === "Deployment") as V1Deployment | undefined;
  const statefulSet = live.find((o) => o.kind === "StatefulSet") as V1StatefulSet | undefined;
  const hpa = live.find((o) => o.kind === "HorizontalPodAutoscaler") as V2HorizontalPodAutoscaler | undefined;
  if (deployment) status.workload = deploymentStatus(deployment);
  else if (statefulSet) status.workload = statefulSetStatus(statefulSet);
  if (hpa) status.autoscaler = autoscalerStatus(hpa);
  const selector = deployment
    ? deploymentSelector(deployment)
    : statefulSet
      ? `app.kubernetes.io/name=${service}`
      : undefined;
  if (selector) status.pods = await podReports(client, namespace, { labelSelector: selector });
  return status;
}

function deploymentStatus(d: V1Deployment): WorkloadStatus {
  const state = rolloutState(d);
  const s = d.status ?? {};
  const revision = d.metadata?.annotations?.["deployment.kubernetes.io/revision"];
  return {
    kind: "Deployment",
    name: d.metadata?.name ?? "",
    desired: d.spec?.replicas ?? 1,
    ready: s.readyReplicas ?? 0,
    updated: s.updatedReplicas ?? 0,
    available: s.availableReplicas ?? 0,
    ...(revision ? { revision } : {}),
    done: state.done,
    rollout: state.done ? "complete" : state.message,
  };
}

function statefulSetStatus(s: V1StatefulSet): WorkloadStatus {
  const st: Partial<NonNullable<V1StatefulSet["status"]>> = s.status ?? {};
  const desired = s.spec?.replicas ?? 1;
  const { readyReplicas: ready = 0, updatedReplicas: updated = 0, availableReplicas: available = 0 } = st;
  const observed = (st.observedGeneration ?? 0) >= (s.metadata?.generation ?? 0);
  const done = observed && ready >= desired && updated >= desired && st.currentRevision === st.updateRevision;
  return {
    kind: "StatefulSet",
    name: s.metadata?.name ?? "",
    desired,
    ready,
    updated,
    available,
    ...(st.updateRevision ? { revision: st.updateRevision } : {}),
    done,
    rollout: done ? "complete" : `${updated} of ${desired} updated, ${ready} ready`,
  };
}

function autoscalerStatus(h: V2HorizontalPodAutoscaler): AutoscalerStatus {
  const current = new Map(
    (h.status?.currentMetrics ?? []).flatMap((m) =>
      m.resource ? [[m.resource.name, m.resource.current.averageUtilization] as const] : [],
    ),
  );
  const metrics = (h.spec?.metrics ?? []).flatMap((m): MetricStatus[] => {
    if (!m.resource) return [{ name: m.type }];
    const now = current.get(m.resource.name);
    const target = m.resource.target.averageUtilization;
    return [
      {
        name: m.resource.name,
        ...(now === undefined ? {} : { current: now }),
        ...(target === undefined ? {} : { target }),
      },
    ];
  });
  return {
    name: h.metadata?.name ?? "",
    min: h.spec?.minReplicas ?? 1,
    max: h.spec?.maxReplicas ?? 0,
    current: h.status?.currentReplicas ?? 0,
    desired: h.status?.desiredReplicas ?? 0,
    metrics,
    problems: (h.status?.conditions ?? [])
      .filter((c) => c.status !== "True")
      .map((c) => `${c.type} ${c.status}: ${c.reason ?? ""}${c.message ? ` (${c.message})` : ""}`),
  };
}

/** details summarizes each kind in a few words for the status table. */
const details: Record<string, (o: KubernetesObject) => string> = {
  Service: (o) => {
    const s = o as V1Service;
    const ports = (s.spec?.ports ?? []).map((p) => `${p.port}->${String(p.targetPort ?? p.port)}`);
    const ip = s.spec?.clusterIP === "None" ? "headless" : (s.spec?.clusterIP ?? "");
    return `${ip} ports ${ports.join(", ")}`;
  },
  Ingress: (o) =>
    ((o as V1Ingress).spec?.rules ?? [])
      .flatMap((r) => (r.http?.paths ?? []).map((p) => `${r.host ?? "*"}${p.path ?? "/"}`))
      .join(", "),
  PodDisruptionBudget: (o) =>
    `${(o as V1PodDisruptionBudget).status?.disruptionsAllowed ?? 0} disruption(s) allowed`,
  CronJob: (o) => {
    const c = o as V1CronJob;
    const last = c.status?.lastScheduleTime;
    return `schedule ${c.spec?.schedule ?? "?"}${last ? `, last run ${new Date(last).toISOString()}` : ""}`;
  },
  HorizontalPodAutoscaler: (o) => {
    const h = o as V1HorizontalPodAutoscaler;
    return `${h.spec?.minReplicas ?? 1}..${h.spec?.maxReplicas ?? "?"} replicas`;
  },
};

function detailOf(o: KubernetesObject): string {
  return details[o.kind ?? ""]?.(o) ?? "";
}
