import type { V1Deployment, V1Pod } from "@kubernetes/client-node";

/**
 * PodProblemReason is why a pod is not going to become healthy by waiting: it restarted, it
 * failed, the scheduler cannot place it, or its image cannot be pulled.
 */
export type PodProblemReason =
  "restarted" | "failed" | "unschedulable" | "image-pull" | "crash-loop" | "config" | "unready";

/** PodProblem is a reason plus a message naming the pod and what its status says. */
export interface PodProblem {
  reason: PodProblemReason;
  message: string;
}

const imagePullReasons = new Set([
  "ErrImagePull",
  "ImagePullBackOff",
  "InvalidImageName",
  "ErrImageNeverPull",
]);
const configReasons = new Set(["CreateContainerConfigError", "CreateContainerError", "RunContainerError"]);

/** podProblem inspects a pod's status the way a person reading `kubectl describe` would. */
export function podProblem(pod: V1Pod): PodProblem | undefined {
  const name = `pod ${pod.metadata?.namespace ?? ""}/${pod.metadata?.name ?? "?"}`;
  const status = pod.status;
  if (!status) return undefined;
  const containers = [...(status.initContainerStatuses ?? []), ...(status.containerStatuses ?? [])];
  for (const c of containers) {
    const waiting = c.state?.waiting?.reason;
    if (waiting && imagePullReasons.has(waiting)) {
      return {
        reason: "image-pull",
        message: `${name}: container ${c.name} cannot pull its image (${waiting}: ${c.state?.waiting?.message ?? c.image})`,
      };
    }
    if (waiting && configReasons.has(waiting)) {
      return {
        reason: "config",
        message: `${name}: container ${c.name} cannot start (${waiting}: ${c.state?.waiting?.message ?? ""})`,
      };
    }
    if (waiting === "CrashLoopBackOff") {
      return {
        reason: "crash-loop",
        message: `${name}: container ${c.name} is crash-looping (restarts: ${c.restartCount})`,
      };
    }
  }
  for (const c of containers) {
    if (c.restartCount > 0) {
      const last = c.lastState?.terminated;
      const why = last ? ` (last exit ${last.exitCode}${last.reason ? `, ${last.reason}` : ""})` : "";
      return {
        reason: "restarted",
        message: `${name}: container ${c.name} restarted ${c.restartCount} time(s)${why}`,
      };
    }
  }
  if (status.phase === "Failed" || status.phase === "Unknown") {
    return {
      reason: "failed",
      message: `${name}: phase ${status.phase}${status.reason ? ` (${status.reason}: ${status.message ?? ""})` : ""}`,
    };
  }
  const scheduled = status.conditions?.find((c) => c.type === "PodScheduled");
  if (scheduled?.status === "False" && scheduled.reason === "Unschedulable") {
    return {
      reason: "unschedulable",
      message: `${name}: cannot be scheduled (${scheduled.message ?? "no node fits"})`,
    };
  }
  return undefined;
}

/** isPodReady: Running, every container ready, and the Ready and ContainersReady conditions True. */
export function isPodReady(pod: V1Pod): boolean {
  const status = pod.status;
  if (status?.phase !== "Running") return false;
  const want = pod.spec?.containers.length ?? 0;
  const statuses = status.containerStatuses ?? [];
  if (statuses.length < want || !statuses.every((c) => c.ready)) return false;
  const conditionTrue = (type: string): boolean =>
    status.conditions?.some((c) => c.type === type && c.status === "True") ?? false;
  return conditionTrue("Ready") && conditionTrue("ContainersReady");
}

/** RolloutState is how far a Deployment's rollout has got. */
export type RolloutState =
  | { done: true }
  | { done: false; failed: false; message: string }
  | { done: false; failed: true; message: string };

/**
 * rolloutState mirrors `kubectl rollout status`: done when the controller has seen the latest
 * generation and every replica is updated and available with no old ones left; failed when the
 * Progressing condition reports ProgressDeadlineExceeded or a ReplicaFailure is set.
 */
export function rolloutState(d: V1Deployment): RolloutState {
  const name = `deployment ${d.metadata?.namespace ?? ""}/${d.metadata?.name ?? "?"}`;
  const s = d.status ?? {};
  const want = d.spec?.replicas ?? 1;
  const progressing = s.conditions?.find((c) => c.type === "Progressing");
  if (progressing?.status === "False" && progressing.reason === "ProgressDeadlineExceeded") {
    return {
      done: false,
      failed: true,
      message: `${name}: rollout exceeded its progress deadline (${progressing.message ?? ""})`,
    };
  }
  const replicaFailure = s.conditions?.find((c) => c.type === "ReplicaFailure" && c.status === "True");
  if (replicaFailure) {
    return {
      done: false,
      failed: true,
      message: `${name}: ${replicaFailure.reason ?? "ReplicaFailure"}: ${replicaFailure.message ?? ""}`,
    };
  }
  if ((s.observedGeneration ?? 0) < (d.metadata?.generation ?? 0)) {
    return { done: false, failed: false, message: `${name}: waiting for the controller to see the new spec` };
  }
  const updated = s.updatedReplicas ?? 0;
  const total = s.replicas ?? 0;
  const available = s.availableReplicas ?? 0;
  if (updated < want)
    return { done: false, failed: false, message: `${name}: ${updated} of ${want} replicas updated` };
  if (total > updated)
    return {
      done: false,
      failed: false,
      message: `${name}: ${total - updated} old replica(s) pending termination`,
    };
  if (available < want)
    return {
      done: false,
      failed: false,
      message: `${name}: ${available} of ${want} updated replicas available`,
    };
  return { done: true };
}
