import type { V1Container, V1Pod, V1ResourceRequirements } from "@kubernetes/client-node";
import { resourceValue } from "./quantity.js";

/**
 * Tasks: a pod as the agent sees it. Pure: pod JSON in, Task out, never a throw, whatever the
 * pod holds (unknown resources, garbage quantities, missing status); problems are listed on the
 * task instead.
 */

/** QosClass is the pod's QoS class in lower case, as WCA and the kubelet's cgroup names write it. */
export type QosClass = "guaranteed" | "burstable" | "besteffort";

/** ContainerRuntime is the runtime named by a container ID's scheme. */
export type ContainerRuntime = "containerd" | "cri-o" | "docker";

/** TaskContainer is one container of a pod that has (or had) a runtime ID. */
export interface TaskContainer {
  name: string;
  runtime: ContainerRuntime;
  /** id is the runtime's container ID without the scheme. */
  id: string;
}

/** Task is one pod: identity, metric labels, resources and what the cgroup layer needs. */
export interface Task {
  /** name is `namespace/name` (WCA's task_name). */
  name: string;
  /** id is the pod UID (WCA's task_id). */
  id: string;
  namespace: string;
  podName: string;
  qos: QosClass;
  /** cgroupUid is the UID the kubelet names the pod cgroup after: a static pod's config hash. */
  cgroupUid: string;
  /** labels are the metric labels: sanitised pod labels, the QoS label, task_name and task_id. */
  labels: Record<string, string>;
  /** podLabels are the pod's labels as written, for selectors. */
  podLabels: Record<string, string>;
  annotations: Record<string, string>;
  /**
   * resources: requests_cpus, limits_cpus, requests_mem, limits_mem, cpus, mem, disk and
   * requests_/limits_ of every other resource (e.g. requests_nvidia.com/gpu). cpu in cores,
   * memory and storage in bytes. A limits_ key is absent when some container sets no limit for
   * it, because then the pod has none (the kubelet sets no pod-level limit either).
   */
  resources: Record<string, number>;
  containers: TaskContainer[];
  /** problems are the values that could not be understood, e.g. an unparsable quantity. */
  problems: string[];
}

/** QOS_LABEL is the label WCA adds with the QoS class. */
export const QOS_LABEL = "app_kubernetes_io__qos_class";

const runtimes: Record<string, ContainerRuntime> = {
  containerd: "containerd",
  "cri-o": "cri-o",
  docker: "docker",
};

/**
 * sanitizeLabelName turns a pod label key into a Prometheus label name the way WCA does
 * (`.` and `-` to `_`, `/` to `__`: app.kubernetes.io/name -> app_kubernetes_io__name). Then,
 * beyond WCA, whatever else Prometheus forbids becomes `_` and a leading digit gets a `_` in
 * front, so no pod label can make the exposition invalid.
 */
export function sanitizeLabelName(key: string): string {
  const wca = key.replace(/\./g, "_").replace(/-/g, "_").replace(/\//g, "__");
  const safe = wca.replace(/[^a-zA-Z0-9_]/g, "_");
  return /^[0-9]/.test(safe) ? `_${safe}` : safe;
}

/** taskFromPod builds the Task of a pod; see Task for what each field holds. */
export function taskFromPod(pod: V1Pod): Task {
  const meta = pod.metadata ?? {};
  const namespace = meta.namespace ?? "default";
  const podName = meta.name ?? "";
  const id = meta.uid ?? "";
  const annotations = { ...(meta.annotations ?? {}) };
  const podLabels = { ...(meta.labels ?? {}) };
  const problems: string[] = [];
  const qos = qosOf(pod, problems);
  const name = `${namespace}/${podName}`;
  return {
    name,
    id,
    namespace,
    podName,
    qos,
    cgroupUid: annotations["kubernetes.io/config.mirror"] ?? id,
    labels: taskLabels(podLabels, qos, name, id),
    podLabels,
    annotations,
    resources: podResources(pod, problems),
    containers: containersOf(pod, problems),
    problems,
  };
}

function taskLabels(
  podLabels: Record<string, string>,
  qos: QosClass,
  name: string,
  id: string,
): Record<string, string> {
  const labels: Record<string, string> = {};
  // Sorted so that when two keys sanitise alike (a.b and a-b) the same one wins every time.
  for (const key of Object.keys(podLabels).sort()) {
    const sanitized = sanitizeLabelName(key);
    if (!(sanitized in labels)) labels[sanitized] = podLabels[key] ?? "";
  }
  // Ours win over pod labels of the same name: task_name and task_id identify the series.
  labels[QOS_LABEL] = qos;
  labels.task_name = name;
  labels.task_id = id;
  return labels;
}

function containersOf(pod: V1Pod, problems: string[]): TaskContainer[] {
  const statuses = [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])];
  const out: TaskContainer[] = [];
  for (const s of statuses) {
    if (!s.containerID) continue;
    const sep = s.containerID.indexOf("://");
    const runtime = sep > 0 ? runtimes[s.containerID.slice(0, sep)] : undefined;
    if (!runtime) {
      problems.push(`container ${s.name}: unknown runtime in container ID "${s.containerID}"`);
      continue;
    }
    out.push({ name: s.name, runtime, id: s.containerID.slice(sep + 3) });
  }
  return out;
}

/** qosOf trusts status.qosClass, and computes the class as the API server does when it is absent. */
function qosOf(pod: V1Pod, problems: string[]): QosClass {
  const reported = pod.status?.qosClass?.toLowerCase();
  if (reported === "guaranteed" || reported === "burstable" || reported === "besteffort") return reported;
  if (reported)
    problems.push(`status.qosClass "${pod.status?.qosClass}" is not a QoS class; computed from the spec`);
  return computeQos(pod);
}

const qosResources = ["cpu", "memory"] as const;

/**
 * computeQos is Kubernetes' GetPodQOS: BestEffort with no cpu/memory requests or limits
 * anywhere; Guaranteed when every container limits both and requests equal limits; else
 * Burstable. Pod-level resources, when set, decide alone.
 */
export function computeQos(pod: V1Pod): QosClass {
  const podLevel = pod.spec?.resources;
  const sources =
    podLevel && (podLevel.requests || podLevel.limits)
      ? [podLevel]
      : [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])].map((c) => c.resources ?? {});
  const { requests, limits, allLimited } = qosSums(sources);
  if (Object.keys(requests).length === 0 && Object.keys(limits).length === 0) return "besteffort";
  if (allLimited && qosResources.every((res) => requests[res] === limits[res])) return "guaranteed";
  return "burstable";
}

/** qosSums adds up positive cpu/memory requests and limits and tells whether every source limits both. */
function qosSums(sources: readonly V1ResourceRequirements[]): {
  requests: Record<string, number>;
  limits: Record<string, number>;
  allLimited: boolean;
} {
  const requests: Record<string, number> = {};
  const limits: Record<string, number> = {};
  let allLimited = true;
  for (const r of sources) {
    for (const res of qosResources) {
      const req = positive(res, effectiveRequest(r, res));
      const lim = positive(res, r.limits?.[res]);
      if (req !== undefined) requests[res] = (requests[res] ?? 0) + req;
      if (lim !== undefined) limits[res] = (limits[res] ?? 0) + lim;
      else allLimited = false;
    }
  }
  return { requests, limits, allLimited };
}

function positive(resource: string, value: string | undefined): number | undefined {
  const n = resourceValue(resource, value);
  return n !== undefined && n > 0 ? n : undefined;
}

/** effectiveRequest applies the API server's defaulting: a request left out equals the limit. */
function effectiveRequest(r: V1ResourceRequirements, resource: string): string | undefined {
  return r.requests?.[resource] ?? r.limits?.[resource];
}

type ResourceList = Record<string, number>;

function add(into: ResourceList, from: ResourceList): void {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
}

function max(into: ResourceList, from: ResourceList): void {
  for (const [k, v] of Object.entries(from)) into[k] = Math.max(into[k] ?? 0, v);
}

function listOf(
  raw: Record<string, string> | undefined,
  fallback: Record<string, string> | undefined,
  problems: string[],
  where: string,
): ResourceList {
  const out: ResourceList = {};
  for (const [name, value] of Object.entries(raw ?? {})) {
    const n = resourceValue(name, value);
    if (n === undefined) problems.push(`${where} ${name}: "${value}" is not a quantity; ignored`);
    else out[name] = n;
  }
  // The fallback (limits standing in for missing requests) reports its own garbage elsewhere.
  for (const [name, value] of Object.entries(fallback ?? {})) {
    const n = name in out || raw?.[name] !== undefined ? undefined : resourceValue(name, value);
    if (n !== undefined) out[name] = n;
  }
  return out;
}

/**
 * aggregate is Kubernetes' AggregateContainerRequests (and ...Limits): the sum over containers
 * and sidecars (init containers with restartPolicy Always), then the max with what each
 * classic init container needs while it runs next to the sidecars started before it.
 */
function aggregate(pod: V1Pod, pick: (c: V1Container) => ResourceList): ResourceList {
  const total: ResourceList = {};
  for (const c of pod.spec?.containers ?? []) add(total, pick(c));
  const sidecars: ResourceList = {};
  const init: ResourceList = {};
  for (const c of pod.spec?.initContainers ?? []) {
    const own = pick(c);
    if (c.restartPolicy === "Always") {
      add(total, own);
      add(sidecars, own);
      max(init, sidecars);
    } else {
      const whileRunning = { ...own };
      add(whileRunning, sidecars);
      max(init, whileRunning);
    }
  }
  max(total, init);
  return total;
}

/** podLevelResources are the resources a pod-level spec.resources may set (Kubernetes 1.32+). */
function isPodLevelResource(name: string): boolean {
  return name === "cpu" || name === "memory" || name.startsWith("hugepages-");
}

function podResources(pod: V1Pod, problems: string[]): Record<string, number> {
  const requests = aggregate(pod, (c) =>
    listOf(c.resources?.requests, c.resources?.limits, problems, `container ${c.name} requests`),
  );
  const limits = aggregate(pod, (c) =>
    listOf(c.resources?.limits, undefined, problems, `container ${c.name} limits`),
  );
  const podLevel = pod.spec?.resources;
  if (podLevel) {
    const req = listOf(podLevel.requests, podLevel.limits, problems, "pod requests");
    const lim = listOf(podLevel.limits, undefined, problems, "pod limits");
    for (const [k, v] of Object.entries(req)) if (isPodLevelResource(k)) requests[k] = v;
    for (const [k, v] of Object.entries(lim)) if (isPodLevelResource(k)) limits[k] = v;
  }
  const overhead = listOf(pod.spec?.overhead, undefined, problems, "pod overhead");
  add(requests, overhead);
  dropUnlimited(pod, limits);
  // Overhead raises a limit only where there is one: the kubelet adds it to the pod cgroup's limit.
  for (const [k, v] of Object.entries(overhead)) if (k in limits) limits[k] = (limits[k] ?? 0) + v;
  return resourceMap(requests, limits);
}

/**
 * dropUnlimited removes the cpu or memory limit when some container does not set one: like the
 * kubelet (which then writes no pod-level quota or memory limit), the pod as a whole is not
 * limited. Other resources (devices, hugepages) cannot be overcommitted, so their sums stand.
 */
function dropUnlimited(pod: V1Pod, limits: ResourceList): void {
  const podLevel = pod.spec?.resources?.limits ?? {};
  const all = [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])];
  for (const name of ["cpu", "memory"]) {
    if (!(name in limits) || podLevel[name] !== undefined) continue;
    if (all.some((c) => c.resources?.limits?.[name] === undefined)) delete limits[name];
  }
}

const aliases: Record<string, string> = { cpu: "cpus", memory: "mem", "ephemeral-storage": "disk" };

function resourceMap(requests: ResourceList, limits: ResourceList): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, v] of Object.entries(requests)) out[`requests_${aliases[name] ?? name}`] = v;
  for (const [name, v] of Object.entries(limits)) out[`limits_${aliases[name] ?? name}`] = v;
  // WCA's short names: cpus, mem and disk are the requests (what the scheduler placed the pod by).
  out.cpus = requests.cpu ?? 0;
  out.mem = requests.memory ?? 0;
  out.disk = requests["ephemeral-storage"] ?? 0;
  return out;
}
