import {
  KubeError,
  deploymentSelector,
  replicaSetsOf,
  rollbackDeployment,
  toKubeError,
  waitForObject,
  waitForRolloutHealthy,
  type KubeClient,
  type V1Deployment,
  type V1StatefulSet,
  type Verdict,
} from "../kube/index.js";
import { podReports, type PodReport } from "./health.js";

/**
 * Waiting for a service's workload after an apply: a Deployment until its rollout is complete
 * (failing at once when a pod of the new revision restarts, crash-loops, cannot pull its image or
 * cannot be scheduled), a StatefulSet until every replica is updated and ready. A failure is an
 * outcome to report, with the failing pods and their reasons, not an exception: the objects were
 * applied, and the caller may roll the Deployment back.
 */

/** Workload names the object whose pods run the service. */
export interface Workload {
  kind: "Deployment" | "StatefulSet";
  name: string;
}

/** RollbackOutcome says what rolling back did. */
export interface RollbackOutcome {
  /** revision rolled back to, when there was one. */
  revision?: number;
  ready: boolean;
  message: string;
}

/** RolloutOutcome is how waiting for the workload ended. */
export type RolloutOutcome =
  | { state: "ready"; workload: Workload; message: string }
  | {
      state: "failed";
      workload: Workload;
      /** reason: a pod problem (restarted, crash-loop, image-pull, unschedulable, failed, config), timeout, or progress-deadline. */
      reason: string;
      message: string;
      /** pods of the new revision, problems first. */
      pods: PodReport[];
      rollback?: RollbackOutcome;
    };

/** RolloutOptions control the wait. */
export interface RolloutOptions {
  timeoutMs: number;
  signal?: AbortSignal;
  onProgress?: (message: string) => void;
  /** rollbackOnFailure puts a Deployment's previous revision back when its rollout fails. */
  rollbackOnFailure?: boolean;
}

/** awaitRollout waits for the workload and reports how it went; see RolloutOutcome. */
export async function awaitRollout(
  client: KubeClient,
  namespace: string,
  workload: Workload,
  options: RolloutOptions,
): Promise<RolloutOutcome> {
  return workload.kind === "Deployment"
    ? awaitDeployment(client, namespace, workload, options)
    : awaitStatefulSet(client, namespace, workload, options);
}

function failureReason(err: KubeError): string {
  if (err.podProblem) return err.podProblem;
  if (err.reason === "Timeout") return "timeout";
  return /progress deadline/.test(err.message) ? "progress-deadline" : "failed";
}

/** waitFailure turns an error that ended a wait into a KubeError, rethrowing what is not a rollout failure. */
function waitFailure(err: unknown, signal: AbortSignal | undefined): KubeError {
  if (signal?.aborted) throw err;
  const ke = toKubeError(err, "wait for rollout");
  if (ke.reason !== "Invalid" && ke.reason !== "Timeout") throw ke;
  return ke;
}

async function awaitDeployment(
  client: KubeClient,
  namespace: string,
  workload: Workload,
  options: RolloutOptions,
): Promise<RolloutOutcome> {
  const { name } = workload;
  const waitOptions = {
    timeoutMs: options.timeoutMs,
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  };
  try {
    const d = await waitForRolloutHealthy(client, namespace, name, waitOptions);
    return { state: "ready", workload, message: readyMessage(d) };
  } catch (err) {
    const failure = waitFailure(err, options.signal);
    const pods = await newRevisionPods(client, namespace, name);
    const outcome: RolloutOutcome = {
      state: "failed",
      workload,
      reason: failureReason(failure),
      message: failure.message,
      pods,
    };
    if (!options.rollbackOnFailure) return outcome;
    return { ...outcome, rollback: await rollBack(client, namespace, name, waitOptions) };
  }
}

function readyMessage(d: V1Deployment): string {
  const ready = d.status?.readyReplicas ?? 0;
  const revision = d.metadata?.annotations?.["deployment.kubernetes.io/revision"];
  return `deployment ${d.metadata?.namespace}/${d.metadata?.name} rolled out: ${ready}/${d.spec?.replicas ?? 1} ready${revision ? `, revision ${revision}` : ""}`;
}

async function newRevisionPods(client: KubeClient, namespace: string, name: string): Promise<PodReport[]> {
  let d: V1Deployment;
  try {
    d = await client.apps.readNamespacedDeployment({ namespace, name });
  } catch (err) {
    throw toKubeError(err, `read deployment ${namespace}/${name}`);
  }
  const newest = (await replicaSetsOf(client, d))[0];
  const hash = newest?.metadata?.labels?.["pod-template-hash"];
  return podReports(client, namespace, {
    labelSelector: deploymentSelector(d),
    ...(hash ? { podTemplateHash: hash } : {}),
  });
}

async function rollBack(
  client: KubeClient,
  namespace: string,
  name: string,
  waitOptions: { timeoutMs: number; signal?: AbortSignal; onProgress?: (m: string) => void },
): Promise<RollbackOutcome> {
  let revision: number;
  try {
    revision = await rollbackDeployment(client, namespace, name);
  } catch (err) {
    const ke = toKubeError(err, `roll back deployment ${namespace}/${name}`);
    if (ke.reason !== "NotFound") throw ke;
    // The first revision has nothing before it; the Deployment stays as applied.
    return { ready: false, message: ke.message };
  }
  try {
    const d = await waitForRolloutHealthy(client, namespace, name, waitOptions);
    return { revision, ready: true, message: `rolled back to revision ${revision}: ${readyMessage(d)}` };
  } catch (err) {
    const failure = waitFailure(err, waitOptions.signal);
    return {
      revision,
      ready: false,
      message: `rolled back to revision ${revision}, which is not healthy either: ${failure.message}`,
    };
  }
}

function statefulSetVerdict(namespace: string, name: string, s: V1StatefulSet | undefined): Verdict<string> {
  const what = `statefulset ${namespace}/${name}`;
  if (!s) return { state: "failed", error: new KubeError("NotFound", `${what} not found`) };
  const status = s.status;
  const want = s.spec?.replicas ?? 1;
  if (!status || (status.observedGeneration ?? 0) < (s.metadata?.generation ?? 0)) {
    return { state: "waiting", message: `${what}: waiting for the controller to see the new spec` };
  }
  const updated = status.updatedReplicas ?? 0;
  const ready = status.readyReplicas ?? 0;
  if (updated < want) return { state: "waiting", message: `${what}: ${updated} of ${want} replicas updated` };
  if (ready < want) return { state: "waiting", message: `${what}: ${ready} of ${want} replicas ready` };
  if (status.updateRevision && status.currentRevision !== status.updateRevision) {
    return { state: "waiting", message: `${what}: finishing the update` };
  }
  return { state: "done", value: `${what} rolled out: ${ready}/${want} ready` };
}

async function awaitStatefulSet(
  client: KubeClient,
  namespace: string,
  workload: Workload,
  options: RolloutOptions,
): Promise<RolloutOutcome> {
  const { name } = workload;
  try {
    const message = await waitForObject<V1StatefulSet, string>(
      client,
      { apiVersion: "apps/v1", kind: "StatefulSet", namespace, name },
      (s) => statefulSetVerdict(namespace, name, s),
      {
        timeoutMs: options.timeoutMs,
        ...(options.signal ? { signal: options.signal } : {}),
        ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      },
    );
    return { state: "ready", workload, message };
  } catch (err) {
    const failure = waitFailure(err, options.signal);
    const pods = await podReports(client, namespace, { labelSelector: `app.kubernetes.io/name=${name}` });
    return {
      state: "failed",
      workload,
      reason: failureReason(failure),
      message: failure.message,
      pods,
      // kubectl can undo a StatefulSet through its ControllerRevisions; kubewise does not yet.
      ...(options.rollbackOnFailure
        ? { rollback: { ready: false, message: "rollback is supported for Deployments only" } }
        : {}),
    };
  }
}
