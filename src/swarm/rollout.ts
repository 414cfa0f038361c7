/**
 * Restarts for the `restart` refresh strategy, as pure decisions over recorded state.
 *
 * When the controller changes a worker's entry it cannot tell when the worker will see it (a
 * ConfigMap volume is updated eventually), so it restarts that worker's pod: a new pod reads the
 * current file at start. Which pods need that is recorded *before* the ConfigMap is written, in
 * the pool's status.pendingRestarts as {worker, pod uid, version}: "the pod with this uid started
 * before this version of its entry existed". A restart is then the deletion of exactly that uid,
 * and an entry is done when the worker runs a different pod that is Ready. Because the record
 * names pod uids, planning is level-based and safe to repeat: a controller restarted
 * mid-rollout, or a reconcile run twice, finds the same entries and the same next step, and a
 * replacement pod is never mistaken for the stale one.
 *
 * Restarts go one at a time, in ordinal order: the next stale pod is deleted only when every
 * other worker has a Ready pod, no pod of the workload is terminating and no worker is leaving
 * (a scale-down in progress), like a rolling update with maxUnavailable 1. A leaving worker is
 * never restarted: its pod is about to go anyway.
 */
import { compareWorkerNames } from "./order.js";
import type { WorkerPod } from "./members.js";
import type { WorkerConfig } from "./workloads.js";

/** PendingRestart records a pod that runs an older entry than its worker's current version. */
export interface PendingRestart {
  /** name is the worker (pod) name. */
  name: string;
  /** uid is the stale pod's uid; a pod with another uid is its replacement. */
  uid: string;
  /** version is the entry version the pod has not seen. */
  version: number;
}

/**
 * stalePods lists the pods that must be restarted when `next` replaces `previous`: the worker's
 * entry existed before and its version changed, and its pod exists and has started (so it read
 * the old entry). A worker new to the config is not restarted: its pod starts, or started moments
 * ago, with no entry, and a restart would chase every new Deployment pod forever. A pod that has
 * not started yet will read the new file when it does.
 */
export function stalePods(
  previous: WorkerConfig | undefined,
  next: WorkerConfig,
  pods: readonly WorkerPod[],
): PendingRestart[] {
  if (previous === undefined) return [];
  const byName = new Map(pods.map((p) => [p.name, p]));
  const stale: PendingRestart[] = [];
  for (const [name, entry] of next) {
    const before = previous.get(name);
    if (before === undefined || before.version === entry.version) continue;
    const pod = byName.get(name);
    if (pod === undefined || !pod.started || pod.terminating) continue;
    stale.push({ name, uid: pod.uid, version: entry.version });
  }
  return sortPending(stale);
}

/**
 * mergePending adds new entries to recorded ones: one entry per worker; a new entry for the same
 * pod raises the version, and one for another pod replaces the entry (that pod is the stale one
 * now).
 */
export function mergePending(
  recorded: readonly PendingRestart[],
  added: readonly PendingRestart[],
): PendingRestart[] {
  const byName = new Map(recorded.map((p) => [p.name, p]));
  for (const entry of added) {
    const old = byName.get(entry.name);
    const version = old?.uid === entry.uid ? Math.max(old.version, entry.version) : entry.version;
    byName.set(entry.name, { ...entry, version });
  }
  return sortPending([...byName.values()]);
}

/** samePending tells whether two pending lists record the same restarts. */
export function samePending(a: readonly PendingRestart[], b: readonly PendingRestart[]): boolean {
  const sa = sortPending(a);
  const sb = sortPending(b);
  return (
    sa.length === sb.length &&
    sa.every((p, i) => p.name === sb[i]?.name && p.uid === sb[i]?.uid && p.version === sb[i]?.version)
  );
}

/** RolloutStep is what to do next about pending restarts. */
export type RolloutStep =
  | { kind: "idle" }
  | { kind: "restart"; target: PendingRestart; message: string }
  | { kind: "wait"; target: PendingRestart; message: string };

/** RolloutPlan is the pending list with finished entries dropped, and the next step. */
export interface RolloutPlan {
  pending: PendingRestart[];
  step: RolloutStep;
}

/**
 * planRollout drops the entries that are done (the worker left the pool, or runs a Ready pod
 * with another uid) and picks the next step for the first remaining one that is not leaving:
 * delete its stale pod when the rest of the pool is Ready, or wait (for its replacement, another
 * worker, or the end of a scale-down). `workers` are the pool's workers, `pods` all pods of the
 * workload, `leaving` the workers on their way out (leavingWorkers).
 */
export function planRollout(
  recorded: readonly PendingRestart[],
  workers: readonly string[],
  pods: readonly WorkerPod[],
  leaving: readonly string[] = [],
): RolloutPlan {
  const members = new Set(workers);
  const byName = new Map(pods.map((p) => [p.name, p]));
  const pending = sortPending(recorded).filter((entry) => {
    if (!members.has(entry.name)) return false;
    const pod = byName.get(entry.name);
    return pod === undefined || pod.uid === entry.uid || !pod.ready;
  });
  const target = pending.find((entry) => !leaving.includes(entry.name));
  if (target === undefined) return { pending, step: { kind: "idle" } };
  const of = `(${pending.length} pending)`;
  const pod = byName.get(target.name);
  if (pod === undefined || pod.uid !== target.uid) {
    return {
      pending,
      step: { kind: "wait", target, message: `waiting for the new pod ${target.name} to be Ready ${of}` },
    };
  }
  if (pod.terminating) {
    return {
      pending,
      step: { kind: "wait", target, message: `waiting for pod ${target.name} to terminate ${of}` },
    };
  }
  if (leaving.length > 0) {
    const message = `restart of ${target.name} waits for ${leaving.join(", ")} to leave the pool ${of}`;
    return { pending, step: { kind: "wait", target, message } };
  }
  const terminating = pods.find((p) => p.terminating && p.name !== target.name);
  if (terminating) {
    const message = `restart of ${target.name} waits for pod ${terminating.name} to terminate ${of}`;
    return { pending, step: { kind: "wait", target, message } };
  }
  const unready = workers.find((w) => w !== target.name && byName.get(w)?.ready !== true);
  if (unready !== undefined) {
    const message = `restart of ${target.name} waits for worker ${unready} to be Ready ${of}`;
    return { pending, step: { kind: "wait", target, message } };
  }
  return {
    pending,
    step: {
      kind: "restart",
      target,
      message: `restarting ${target.name} for version ${target.version} ${of}`,
    },
  };
}

function sortPending(list: readonly PendingRestart[]): PendingRestart[] {
  return [...list].sort(
    (a, b) => compareWorkerNames(a.name, b.name) || (a.uid < b.uid ? -1 : a.uid > b.uid ? 1 : 0),
  );
}
