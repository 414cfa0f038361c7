/**
 * Pool membership: which names are the workers of a SwarmPool's workload, and what the controller
 * needs to know about each worker's pod. Pure: the controller passes the workload and pods it has
 * cached.
 *
 * A StatefulSet's workers are its ordinals `<name>-<i>` for i in [start, start + replicas) — the
 * desired pods, whether or not they exist yet — plus any pod the StatefulSet still runs beyond
 * that range (a scale-down in progress). So on scale-up the new worker's jobs are waiting for it
 * when it starts, and on scale-down a worker keeps its jobs until its pod is gone: a job is never
 * assigned to two running pods at once, and a pod deleted for a restart does not change the pool.
 *
 * A Deployment's pods have no stable names, so its workers are the pods it runs now that are not
 * terminating or finished, in name order — except while the controller restarts one (poolMembers):
 * then the restarted pod keeps its slot until its replacement exists and the old pod is gone, and
 * the replacement inherits the slot's entry, so a restart never moves jobs to the other workers.
 */
import type { V1Deployment, V1Pod, V1StatefulSet } from "../kube/index.js";
import { isPodReady } from "../kube/index.js";
import { compareWorkerNames } from "./order.js";
import type { WorkerConfig } from "./workloads.js";

/** WorkloadKind is the kind of a pool's workload. */
export type WorkloadKind = "StatefulSet" | "Deployment";

/** Workload is a pool's workload as read from the cluster. */
export type Workload =
  { kind: "StatefulSet"; object: V1StatefulSet } | { kind: "Deployment"; object: V1Deployment };

/** WorkerPod is what the controller needs to know about one pod of the workload. */
export interface WorkerPod {
  name: string;
  uid: string;
  /** ready: Running, containers ready, Ready condition True, and not terminating. */
  ready: boolean;
  /** started: its containers have run, so it has read the worker config already. */
  started: boolean;
  /** terminating: it has a deletionTimestamp. */
  terminating: boolean;
  /** finished: phase Succeeded or Failed (an evicted pod, say); it runs nothing. */
  finished: boolean;
}

/** describeWorkerPod reduces a pod to what pool membership and restarts look at. */
export function describeWorkerPod(pod: V1Pod): WorkerPod {
  const terminating = pod.metadata?.deletionTimestamp != null;
  const phase = pod.status?.phase ?? "Pending";
  const finished = phase === "Succeeded" || phase === "Failed";
  return {
    name: pod.metadata?.name ?? "",
    uid: pod.metadata?.uid ?? "",
    ready: !terminating && isPodReady(pod),
    started: phase !== "Pending" || containersStarted(pod),
    terminating,
    finished,
  };
}

function containersStarted(pod: V1Pod): boolean {
  const statuses = [...(pod.status?.containerStatuses ?? []), ...(pod.status?.initContainerStatuses ?? [])];
  return statuses.some((c) => c.state?.running !== undefined || c.state?.terminated !== undefined);
}

/**
 * ownsPod tells whether a pod belongs to the workload: a StatefulSet must be its controller (by
 * uid); for a Deployment its controller is the ReplicaSet `<deployment>-<pod-template-hash>`,
 * which is exactly how the Deployment controller names its ReplicaSets.
 */
export function ownsPod(workload: Workload, pod: V1Pod): boolean {
  const owner = pod.metadata?.ownerReferences?.find((r) => r.controller === true);
  if (!owner) return false;
  if (workload.kind === "StatefulSet") {
    return owner.kind === "StatefulSet" && owner.uid === workload.object.metadata?.uid;
  }
  const hash = pod.metadata?.labels?.["pod-template-hash"];
  return (
    owner.kind === "ReplicaSet" &&
    hash !== undefined &&
    owner.name === `${workload.object.metadata?.name}-${hash}`
  );
}

/**
 * workloadOfPod names the workload a pod's controller implies: {StatefulSet, name}, or for a
 * ReplicaSet-owned pod the Deployment {Deployment, name} its ReplicaSet name implies. The
 * controller uses it to find the pools a pod event concerns.
 */
export function workloadOfPod(pod: V1Pod): { kind: WorkloadKind; name: string } | undefined {
  const owner = pod.metadata?.ownerReferences?.find((r) => r.controller === true);
  if (owner?.kind === "StatefulSet") return { kind: "StatefulSet", name: owner.name };
  const hash = pod.metadata?.labels?.["pod-template-hash"];
  if (owner?.kind === "ReplicaSet" && hash !== undefined && owner.name.endsWith(`-${hash}`)) {
    return { kind: "Deployment", name: owner.name.slice(0, -hash.length - 1) };
  }
  return undefined;
}

/**
 * workerNames lists the pool's workers in ordinal order (see the file comment). `pods` are the
 * workload's pods (ownsPod), including terminating ones.
 */
export function workerNames(workload: Workload, pods: readonly WorkerPod[]): string[] {
  if (workload.kind === "Deployment") {
    return pods
      .filter((p) => !p.terminating && !p.finished)
      .map((p) => p.name)
      .sort(compareWorkerNames);
  }
  const names = desiredWorkers(workload.object);
  for (const pod of pods) names.add(pod.name);
  return [...names].sort(compareWorkerNames);
}

/**
 * leavingWorkers lists the workers on their way out: pods a StatefulSet still runs beyond its
 * replicas (a scale-down in progress). A Deployment's leaving pods are terminating, and those are
 * no workers at all.
 */
export function leavingWorkers(workload: Workload, pods: readonly WorkerPod[]): string[] {
  if (workload.kind === "Deployment") return [];
  const desired = desiredWorkers(workload.object);
  return pods
    .map((p) => p.name)
    .filter((n) => !desired.has(n))
    .sort(compareWorkerNames);
}

function desiredWorkers(set: V1StatefulSet): Set<string> {
  const name = set.metadata?.name ?? "";
  const start = set.spec?.ordinals?.start ?? 0;
  const replicas = set.spec?.replicas ?? 1;
  const names = new Set<string>();
  for (let i = start; i < start + replicas; i++) names.add(`${name}-${i}`);
  return names;
}

/** RestartInFlight is a restart the controller recorded: the pod of that name and uid is stale. */
export interface RestartInFlight {
  name: string;
  uid: string;
}

/** PoolMembers are the workers of a pool, and the entries replacement pods take over. */
export interface PoolMembers {
  /** workers in ordinal order. */
  workers: string[];
  /** inherited maps a restarted Deployment pod's name to its replacement's name. */
  inherited: Map<string, string>;
}

/**
 * poolMembers is workerNames for a pool whose controller restarts pods (`restarting`: the pending
 * restarts it recorded; `assigned`: the workers of the current worker config).
 *
 * Without this, deleting a stale Deployment pod would take it out of the pool at once: its jobs
 * would go to the survivors, whose entries would change, so they would be restarted in turn — a
 * chain — and a job could run on the terminating pod and a survivor at once. A StatefulSet avoids
 * that by name (the replacement has the same name); for a Deployment the restarted pod's slot is
 * kept instead, as long as the restart is in flight:
 * - while the old pod is terminating, it stays a worker under its own name, keeping its jobs, and
 *   a new pod that replaces it (a live pod with no entry yet, paired in ordinal order) waits
 *   outside the pool, so the jobs do not run twice and the new pod takes no share of the others;
 * - once the old pod is gone, its replacement inherits the entry (`inherited`, old -> new): same
 *   jobs, same version, so nothing moves and nobody restarts;
 * - while no replacement exists yet, the slot is kept under the old name for as many replicas as
 *   the Deployment is short of (the ReplicaSet owes those pods); a slot the Deployment will not
 *   replace (it was scaled down meanwhile) is dropped, and its jobs rebalance as for a scale-down.
 * A pod deleted by anyone else is not a restart in flight and leaves the pool at once.
 */
export function poolMembers(
  workload: Workload,
  pods: readonly WorkerPod[],
  restarting: readonly RestartInFlight[] = [],
  assigned: ReadonlySet<string> = new Set(),
): PoolMembers {
  const inherited = new Map<string, string>();
  if (workload.kind === "StatefulSet") return { workers: workerNames(workload, pods), inherited };
  const byName = new Map(pods.map((p) => [p.name, p]));
  const live = pods.filter((p) => !p.terminating && !p.finished).map((p) => p.name);
  const slots = [
    ...new Set(
      restarting
        .filter((r) => {
          if (!assigned.has(r.name)) return false;
          const pod = byName.get(r.name);
          return pod === undefined || (pod.uid === r.uid && (pod.terminating || pod.finished));
        })
        .map((r) => r.name),
    ),
  ].sort(compareWorkerNames);
  const newcomers = live.filter((n) => !assigned.has(n)).sort(compareWorkerNames);
  const owed = Math.max(0, (workload.object.spec?.replicas ?? 1) - live.length);
  const workers = new Set(live);
  let held = 0;
  slots.forEach((slot, i) => {
    const replacement = newcomers[i];
    if (replacement === undefined) {
      if (held++ < owed) workers.add(slot);
    } else if (byName.has(slot)) {
      workers.delete(replacement);
      workers.add(slot);
    } else {
      inherited.set(slot, replacement);
    }
  });
  return { workers: [...workers].sort(compareWorkerNames), inherited };
}

/** inheritEntries gives each replacement pod the entry of the pod it replaces (poolMembers). */
export function inheritEntries(
  config: WorkerConfig | undefined,
  inherited: ReadonlyMap<string, string>,
): WorkerConfig | undefined {
  if (config === undefined || inherited.size === 0) return config;
  const result = new Map(config);
  for (const [from, to] of inherited) {
    const entry = config.get(from);
    if (entry === undefined) continue;
    result.delete(from);
    result.set(to, entry);
  }
  return result;
}
