import type { V1ContainerStatus, V1Deployment, V1Pod, V1ReplicaSet } from "@kubernetes/client-node";
import type { KubeClient } from "./client.js";
import { KubeError, toKubeError } from "./errors.js";
import { patchObject } from "./apply.js";
import { isPodReady, podProblem, rolloutState } from "./pods.js";
import { ResourceWatcher } from "./watch.js";
import type { WaitOptions } from "./wait.js";

const REVISION = "deployment.kubernetes.io/revision";

function selectorOf(d: V1Deployment): string {
  const labels = d.spec?.selector.matchLabels ?? {};
  const exprs = d.spec?.selector.matchExpressions ?? [];
  const parts = Object.entries(labels).map(([k, v]) => `${k}=${v}`);
  for (const e of exprs) {
    const values = (e.values ?? []).join(",");
    if (e.operator === "In") parts.push(`${e.key} in (${values})`);
    else if (e.operator === "NotIn") parts.push(`${e.key} notin (${values})`);
    else if (e.operator === "Exists") parts.push(e.key);
    else if (e.operator === "DoesNotExist") parts.push(`!${e.key}`);
  }
  return parts.join(",");
}

/** replicaSetsOf lists the ReplicaSets a Deployment controls, newest revision first. */
export async function replicaSetsOf(client: KubeClient, d: V1Deployment): Promise<V1ReplicaSet[]> {
  const namespace = d.metadata?.namespace ?? "default";
  try {
    const list = await client.apps.listNamespacedReplicaSet({ namespace, labelSelector: selectorOf(d) });
    return list.items
      .filter((rs) => rs.metadata?.ownerReferences?.some((o) => o.uid === d.metadata?.uid && o.controller))
      .sort((a, b) => revisionOf(b) - revisionOf(a));
  } catch (err) {
    throw toKubeError(err, `list replica sets of deployment ${namespace}/${d.metadata?.name}`);
  }
}

function revisionOf(obj: { metadata?: { annotations?: Record<string, string> } }): number {
  return Number(obj.metadata?.annotations?.[REVISION] ?? 0);
}

/**
 * rollbackDeployment does what `kubectl rollout undo` does: it puts the pod template of the
 * previous revision back. It returns that revision number, or throws when there is none.
 */
export async function rollbackDeployment(
  client: KubeClient,
  namespace: string,
  name: string,
): Promise<number> {
  let d: V1Deployment;
  try {
    d = await client.apps.readNamespacedDeployment({ namespace, name });
  } catch (err) {
    throw toKubeError(err, `read deployment ${namespace}/${name}`);
  }
  const current = revisionOf(d);
  const previous = (await replicaSetsOf(client, d)).find(
    (rs) => revisionOf(rs) < current && revisionOf(rs) > 0,
  );
  if (!previous?.spec?.template) {
    throw new KubeError(
      "NotFound",
      `deployment ${namespace}/${name} has no previous revision to roll back to`,
    );
  }
  const template = structuredClone(previous.spec.template);
  delete template.metadata?.labels?.["pod-template-hash"];
  // A merge patch replaces the whole template (lists included), exactly the old revision's.
  await patchObject(
    client,
    { apiVersion: "apps/v1", kind: "Deployment", namespace, name },
    { spec: { template } },
    "merge",
  );
  return revisionOf(previous);
}

/**
 * waitForRolloutHealthy waits for a Deployment's rollout like waitForRollout, and also watches the
 * pods of its newest revision: a restart, crash loop, unpullable image, failed or unschedulable
 * pod ends the wait at once with that problem (KubeError.podProblem), as servo-k8s did.
 */
export async function waitForRolloutHealthy(
  client: KubeClient,
  namespace: string,
  name: string,
  options: WaitOptions,
): Promise<V1Deployment> {
  const deployments = new ResourceWatcher<V1Deployment>(client, {
    apiVersion: "apps/v1",
    kind: "Deployment",
    namespace,
    fieldSelector: `metadata.name=${name}`,
  });
  deployments.start();
  let pods: ResourceWatcher<V1Pod> | undefined;
  let cleanup = (): void => {};
  try {
    await deployments.synced();
    const initial = deployments.get(name, namespace);
    if (!initial) throw new KubeError("NotFound", `deployment ${namespace}/${name} not found`);
    pods = new ResourceWatcher<V1Pod>(client, {
      apiVersion: "v1",
      kind: "Pod",
      namespace,
      labelSelector: selectorOf(initial),
    });
    pods.start();
    await pods.synced();
    const podWatcher = pods;
    // Only when there is nothing to roll out (re-applying an unchanged spec) are the pods' earlier
    // restarts set aside; during a rollout every restart of the new revision's pods counts.
    const restartsBefore = rolloutState(initial).done
      ? restartCounts(podWatcher.list())
      : new Map<string, number>();
    return await new Promise<V1Deployment>((resolve, reject) => {
      let last = "";
      let newestHash: string | undefined;
      const evaluate = async (): Promise<void> => {
        const d = deployments.get(name, namespace);
        if (!d) return reject(new KubeError("NotFound", `deployment ${namespace}/${name} was deleted`));
        const state = rolloutState(d);
        // Only pods of the revision being rolled out count, and that revision is known only once the
        // controller has seen the new spec and made (or found) its ReplicaSet.
        const observed = (d.status?.observedGeneration ?? 0) >= (d.metadata?.generation ?? 0);
        if (observed && (!newestHash || !state.done)) {
          const newest = (await replicaSetsOf(client, d))[0];
          if (newest && revisionOf(newest) === revisionOf(d))
            newestHash = newest.metadata?.labels?.["pod-template-hash"];
        }
        for (const pod of podWatcher.list()) {
          if (pod.metadata?.labels?.["pod-template-hash"] !== newestHash || pod.metadata?.deletionTimestamp)
            continue;
          const problem = newProblem(pod, restartsBefore);
          if (problem)
            return reject(new KubeError("Invalid", problem.message, { podProblem: problem.reason }));
        }
        if (state.done) return resolve(d);
        if (state.failed) return reject(new KubeError("Invalid", state.message));
        if (state.message !== last) options.onProgress?.((last = state.message));
      };
      const run = (): void => void evaluate().catch(reject);
      const timer = setTimeout(
        () =>
          reject(
            new KubeError(
              "Timeout",
              `rollout of deployment ${namespace}/${name} did not finish in ${Math.round(options.timeoutMs / 1000)} s${last ? `; last seen: ${last}` : ""}`,
            ),
          ),
        options.timeoutMs,
      );
      const onAbort = (): void => reject(options.signal?.reason ?? new KubeError("Timeout", "cancelled"));
      options.signal?.addEventListener("abort", onAbort, { once: true });
      cleanup = () => {
        clearTimeout(timer);
        options.signal?.removeEventListener("abort", onAbort);
      };
      deployments.on(run);
      podWatcher.on(run);
      run();
    });
  } finally {
    cleanup();
    await deployments.stop();
    await pods?.stop();
  }
}

/**
 * waitForPodsStable watches the pods a label selector picks for durationMs (a settlement period)
 * and fails at once when one of them restarts, fails, loses readiness or cannot pull its image.
 */
export async function waitForPodsStable(
  client: KubeClient,
  namespace: string,
  labelSelector: string,
  options: { durationMs: number; signal?: AbortSignal; ignore?: (pod: V1Pod) => boolean },
): Promise<void> {
  const pods = new ResourceWatcher<V1Pod>(client, {
    apiVersion: "v1",
    kind: "Pod",
    namespace,
    labelSelector,
  });
  pods.start();
  let cleanup = (): void => {};
  try {
    await pods.synced();
    await new Promise<void>((resolve, reject) => {
      const check = (): void => {
        for (const pod of pods.list()) {
          if (pod.metadata?.deletionTimestamp || options.ignore?.(pod)) continue;
          // Any restart counts here, as in servo-k8s's settlement (ready with a restart count of 0).
          const problem = podProblem(pod);
          if (problem)
            return reject(new KubeError("Invalid", problem.message, { podProblem: problem.reason }));
          if (!isPodReady(pod)) {
            return reject(
              new KubeError("Invalid", `pod ${namespace}/${pod.metadata?.name ?? "?"} is not ready`, {
                podProblem: "unready",
              }),
            );
          }
        }
      };
      const timer = setTimeout(resolve, options.durationMs);
      const onAbort = (): void => reject(options.signal?.reason ?? new KubeError("Timeout", "cancelled"));
      options.signal?.addEventListener("abort", onAbort, { once: true });
      cleanup = () => {
        clearTimeout(timer);
        options.signal?.removeEventListener("abort", onAbort);
      };
      pods.on(check);
      check();
    });
  } finally {
    cleanup();
    await pods.stop();
  }
}

/** restartCounts maps each pod's uid to its containers' total restart count. */
function restartCounts(pods: readonly V1Pod[]): Map<string, number> {
  return new Map(pods.map((p) => [p.metadata?.uid ?? "", totalRestarts(p)]));
}

function totalRestarts(pod: V1Pod): number {
  const s = pod.status;
  return [...(s?.initContainerStatuses ?? []), ...(s?.containerStatuses ?? [])].reduce(
    (n, c) => n + c.restartCount,
    0,
  );
}

/**
 * newProblem is podProblem, except that restarts counted in `restartsBefore` (a pod's restarts
 * when the wait began) are not this rollout's doing: re-applying an unchanged Deployment must not
 * fail on a restart from last week. A pod still crash-looping, or restarting again, does count.
 */
function newProblem(pod: V1Pod, restartsBefore: Map<string, number>): ReturnType<typeof podProblem> {
  const problem = podProblem(pod);
  if (problem?.reason !== "restarted") return problem;
  const before = restartsBefore.get(pod.metadata?.uid ?? "");
  if (before === undefined || totalRestarts(pod) > before) return problem;
  // The old restarts set aside, whatever else podProblem would see still counts.
  const calm = (cs: V1ContainerStatus[] | undefined) => cs?.map((c) => ({ ...c, restartCount: 0 }));
  const status = pod.status ?? {};
  return podProblem({
    ...pod,
    status: {
      ...status,
      containerStatuses: calm(status.containerStatuses),
      initContainerStatuses: calm(status.initContainerStatuses),
    },
  });
}

export { selectorOf as deploymentSelector };
