import {
  KubeError,
  ResourceWatcher,
  deploymentSelector,
  podProblem,
  replicaSetsOf,
  rollbackDeployment,
  toKubeError,
  waitForRolloutHealthy,
  type KubeClient,
  type V1Deployment,
  type V1Pod,
  type V1StatefulSet,
  type V1StatefulSetStatus,
  type Verdict,
  type WaitOptions,
} from "../kube/index.js";
import { podReports, type PodReport } from "./health.js";

/**
 * Waiting for a service's workload after an apply: a Deployment until its rollout is complete, a
 * StatefulSet until every replica is updated and ready, both failing at once when a pod of the
 * new revision restarts, crash-loops, cannot pull its image or cannot be scheduled. A failure is an
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
  /**
   * rollbackOnFailure puts a Deployment's previous revision back when its rollout fails. Not for
   * a StatefulSet: applyService refuses it (see refuseStatefulSetRollback).
   */
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

/**
 * statefulSetVerdict judges a StatefulSet's rollout from the object and its pods: done once every
 * replica is updated and ready; failed at once when a pod of the update revision shows a problem
 * (podProblem, as the Deployment wait uses), so a crash-looping pod does not wait out the timeout.
 * A pod the scheduler holds back only until its volume claims bind is waiting, not failed: with a
 * provisioner that binds claims on creation that is how every new replica starts.
 */
export function statefulSetVerdict(
  namespace: string,
  name: string,
  s: V1StatefulSet | undefined,
  pods: readonly V1Pod[],
): Verdict<string> {
  const what = `statefulset ${namespace}/${name}`;
  if (!s) return { state: "failed", error: new KubeError("NotFound", `${what} not found`) };
  const status = s.status;
  if (!status || (status.observedGeneration ?? 0) < (s.metadata?.generation ?? 0)) {
    return { state: "waiting", message: `${what}: waiting for the controller to see the new spec` };
  }
  // Complete means healthy now: re-applying an unchanged StatefulSet must not fail on a restart
  // one of its pods had last week.
  const progress = replicaProgress(what, s.spec?.replicas ?? 1, status);
  if (progress.state === "done") return progress;
  return podsVerdict(what, status.updateRevision, pods) ?? progress;
}

/** replicaProgress is done once every replica is updated and ready, else how far it got. */
function replicaProgress(what: string, want: number, status: V1StatefulSetStatus): Verdict<string> {
  const updated = status.updatedReplicas ?? 0;
  const ready = status.readyReplicas ?? 0;
  if (updated < want) return { state: "waiting", message: `${what}: ${updated} of ${want} replicas updated` };
  if (ready < want) return { state: "waiting", message: `${what}: ${ready} of ${want} replicas ready` };
  if (status.updateRevision && status.currentRevision !== status.updateRevision) {
    return { state: "waiting", message: `${what}: finishing the update` };
  }
  return { state: "done", value: `${what} rolled out: ${ready}/${want} ready` };
}

/**
 * podsVerdict looks at the pods of the update revision: the first with a problem fails the wait,
 * except a pod waiting only for its volume claims to bind, which makes it wait with that message.
 */
function podsVerdict(
  what: string,
  revision: string | undefined,
  pods: readonly V1Pod[],
): Verdict<string> | undefined {
  if (revision === undefined) return undefined;
  const current = pods
    .filter((p) => !p.metadata?.deletionTimestamp && p.metadata?.labels?.[REVISION_LABEL] === revision)
    .sort((a, b) => (a.metadata?.name ?? "").localeCompare(b.metadata?.name ?? ""));
  let volumes: Verdict<string> | undefined;
  for (const pod of current) {
    const problem = podProblem(pod);
    if (!problem) continue;
    if (problem.reason === "unschedulable" && /persistentvolumeclaim/i.test(problem.message)) {
      const message = problem.message.replace(/cannot be scheduled/, "waits for its volume claims to bind");
      volumes ??= { state: "waiting", message: `${what}: ${message}` };
      continue;
    }
    return {
      state: "failed",
      error: new KubeError("Invalid", problem.message, { podProblem: problem.reason }),
    };
  }
  return volumes;
}

/** REVISION_LABEL is the label the StatefulSet controller puts on each pod: its revision. */
const REVISION_LABEL = "controller-revision-hash";

function podSelector(s: V1StatefulSet, name: string): string {
  const labels = s.spec?.selector.matchLabels ?? { "app.kubernetes.io/name": name };
  return Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(",");
}

/**
 * waitForStatefulSet watches the StatefulSet and its pods, judging both on every change of
 * either (statefulSetVerdict): a pod can start crash-looping without the StatefulSet's status
 * changing at all.
 */
async function waitForStatefulSet(
  client: KubeClient,
  namespace: string,
  name: string,
  options: WaitOptions,
): Promise<string> {
  const sets = new ResourceWatcher<V1StatefulSet>(client, {
    apiVersion: "apps/v1",
    kind: "StatefulSet",
    namespace,
    fieldSelector: `metadata.name=${name}`,
  });
  sets.start();
  let pods: ResourceWatcher<V1Pod> | undefined;
  let cleanup = (): void => {};
  try {
    await sets.synced();
    const initial = sets.get(name, namespace);
    if (!initial) throw new KubeError("NotFound", `statefulset ${namespace}/${name} not found`);
    pods = new ResourceWatcher<V1Pod>(client, {
      apiVersion: "v1",
      kind: "Pod",
      namespace,
      labelSelector: podSelector(initial, name),
    });
    pods.start();
    await pods.synced();
    const podWatcher = pods;
    return await new Promise<string>((resolve, reject) => {
      let last = "";
      const evaluate = (): void => {
        const verdict = statefulSetVerdict(namespace, name, sets.get(name, namespace), podWatcher.list());
        if (verdict.state === "done") resolve(verdict.value);
        else if (verdict.state === "failed") reject(verdict.error);
        else if (verdict.message && verdict.message !== last) options.onProgress?.((last = verdict.message));
      };
      const timer = setTimeout(
        () =>
          reject(
            new KubeError(
              "Timeout",
              `rollout of statefulset ${namespace}/${name} did not finish in ${Math.round(options.timeoutMs / 1000)} s${last ? `; last seen: ${last}` : ""}`,
            ),
          ),
        options.timeoutMs,
      );
      const onAbort = (): void => reject(options.signal?.reason ?? new KubeError("Timeout", "cancelled"));
      options.signal?.addEventListener("abort", onAbort, { once: true });
      if (options.signal?.aborted) onAbort();
      cleanup = () => {
        clearTimeout(timer);
        options.signal?.removeEventListener("abort", onAbort);
      };
      sets.on(evaluate);
      podWatcher.on(evaluate);
      evaluate();
    });
  } finally {
    cleanup();
    await sets.stop();
    await pods?.stop();
  }
}

/** updateRevisionPods reports on the pods of the StatefulSet's update revision (all of them when unknown). */
async function updateRevisionPods(client: KubeClient, namespace: string, name: string): Promise<PodReport[]> {
  let s: V1StatefulSet;
  try {
    s = await client.apps.readNamespacedStatefulSet({ namespace, name });
  } catch (err) {
    throw toKubeError(err, `read statefulset ${namespace}/${name}`);
  }
  const revision = s.status?.updateRevision;
  const selector = podSelector(s, name);
  return podReports(client, namespace, {
    labelSelector: revision ? `${selector},${REVISION_LABEL}=${revision}` : selector,
  });
}

async function awaitStatefulSet(
  client: KubeClient,
  namespace: string,
  workload: Workload,
  options: RolloutOptions,
): Promise<RolloutOutcome> {
  const { name } = workload;
  try {
    const message = await waitForStatefulSet(client, namespace, name, {
      timeoutMs: options.timeoutMs,
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    });
    return { state: "ready", workload, message };
  } catch (err) {
    const failure = waitFailure(err, options.signal);
    const pods = await updateRevisionPods(client, namespace, name);
    return {
      state: "failed",
      workload,
      reason: failureReason(failure),
      message: failure.message,
      pods,
      // applyService refuses --rollback-on-failure for a StatefulSet before applying anything;
      // this says so to a caller that asks awaitRollout directly.
      ...(options.rollbackOnFailure
        ? { rollback: { ready: false, message: "rollback is supported for Deployments only" } }
        : {}),
    };
  }
}
