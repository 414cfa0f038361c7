import type { KubernetesObject, V1Deployment, V1Pod } from "@kubernetes/client-node";
import type { KubeClient } from "./client.js";
import { KubeError } from "./errors.js";
import { isPodReady, podProblem, rolloutState } from "./pods.js";
import { ResourceWatcher, type WatchTarget } from "./watch.js";

/**
 * Verdict is what a wait condition says about the current state of the object: keep waiting
 * (optionally with a progress message), done, or failed (the wait ends with that error).
 */
export type Verdict<R> =
  | { state: "waiting"; message?: string }
  | { state: "done"; value: R }
  | { state: "failed"; error: KubeError };

export interface WaitOptions {
  /** timeoutMs after which the wait fails with reason Timeout. */
  timeoutMs: number;
  signal?: AbortSignal;
  /** onProgress gets each new waiting message (for a progress line). */
  onProgress?: (message: string) => void;
}

/**
 * waitForObject watches one object (by name) and evaluates `check` on every change — including
 * its absence, passed as undefined — until it says done or failed, or the timeout passes. It is
 * driven by watch events, never by polling.
 */
export async function waitForObject<T extends KubernetesObject, R>(
  client: KubeClient,
  target: Omit<WatchTarget, "fieldSelector" | "labelSelector"> & { name: string },
  check: (obj: T | undefined) => Verdict<R>,
  options: WaitOptions,
): Promise<R> {
  const { name, ...rest } = target;
  const watcher = new ResourceWatcher<T>(client, { ...rest, fieldSelector: `metadata.name=${name}` });
  const what = `${target.kind} ${target.namespace ? `${target.namespace}/` : ""}${name}`;
  let lastMessage = "";
  let cleanup = (): void => {};
  try {
    return await new Promise<R>((resolve, reject) => {
      const evaluate = (): void => {
        const verdict = check(watcher.get(name, target.namespace));
        if (verdict.state === "done") resolve(verdict.value);
        else if (verdict.state === "failed") reject(verdict.error);
        else if (verdict.message && verdict.message !== lastMessage) {
          lastMessage = verdict.message;
          options.onProgress?.(verdict.message);
        }
      };
      const timer = setTimeout(() => {
        const tail = lastMessage ? `; last seen: ${lastMessage}` : "";
        reject(
          new KubeError(
            "Timeout",
            `timed out after ${Math.round(options.timeoutMs / 1000)} s waiting for ${what}${tail}`,
          ),
        );
      }, options.timeoutMs);
      const onAbort = (): void =>
        reject(options.signal?.reason ?? new KubeError("Timeout", `wait for ${what} cancelled`));
      options.signal?.addEventListener("abort", onAbort, { once: true });
      if (options.signal?.aborted) onAbort();
      watcher.on(evaluate);
      watcher.start();
      watcher.synced().then(evaluate, reject);
      cleanup = () => {
        clearTimeout(timer);
        options.signal?.removeEventListener("abort", onAbort);
      };
    });
  } finally {
    cleanup();
    await watcher.stop();
  }
}

/**
 * waitForPodReady waits until a pod is Ready, failing fast on a restart, a Failed phase, an
 * unschedulable pod or an image that cannot be pulled (see podProblem).
 */
export function waitForPodReady(
  client: KubeClient,
  namespace: string,
  name: string,
  options: WaitOptions,
): Promise<V1Pod> {
  return waitForObject<V1Pod, V1Pod>(
    client,
    { apiVersion: "v1", kind: "Pod", namespace, name },
    (pod) => {
      if (!pod) return { state: "waiting", message: `pod ${namespace}/${name} does not exist yet` };
      const problem = podProblem(pod);
      if (problem)
        return {
          state: "failed",
          error: new KubeError("Invalid", problem.message, { podProblem: problem.reason }),
        };
      if (isPodReady(pod)) return { state: "done", value: pod };
      return { state: "waiting", message: `pod ${namespace}/${name} is ${pod.status?.phase ?? "Pending"}` };
    },
    options,
  );
}

/** waitForRollout waits until a Deployment's rollout is complete (see rolloutState). */
export function waitForRollout(
  client: KubeClient,
  namespace: string,
  name: string,
  options: WaitOptions,
): Promise<V1Deployment> {
  return waitForObject<V1Deployment, V1Deployment>(
    client,
    { apiVersion: "apps/v1", kind: "Deployment", namespace, name },
    (d) => {
      if (!d)
        return {
          state: "failed",
          error: new KubeError("NotFound", `deployment ${namespace}/${name} not found`),
        };
      const s = rolloutState(d);
      if (s.done) return { state: "done", value: d };
      if (s.failed) return { state: "failed", error: new KubeError("Invalid", s.message) };
      return { state: "waiting", message: s.message };
    },
    options,
  );
}

/** waitForDeleted waits until the named object no longer exists. */
export function waitForDeleted(
  client: KubeClient,
  target: Omit<WatchTarget, "fieldSelector" | "labelSelector"> & { name: string },
  options: WaitOptions,
): Promise<void> {
  return waitForObject<KubernetesObject, undefined>(
    client,
    target,
    (obj) =>
      obj
        ? { state: "waiting", message: `${target.kind} ${target.name} is being deleted` }
        : { state: "done", value: undefined },
    options,
  );
}

/**
 * waitForPodStable watches a pod for durationMs (a settlement period) and fails as soon as it
 * shows a problem — a container restart, a Failed phase, losing readiness, an unpullable image —
 * or disappears. It resolves with the pod as last seen when the period passes quietly.
 */
export async function waitForPodStable(
  client: KubeClient,
  namespace: string,
  name: string,
  options: { durationMs: number; signal?: AbortSignal },
): Promise<V1Pod> {
  let last: V1Pod | undefined;
  const settled = new KubeError("Timeout", "settled");
  try {
    await waitForObject<V1Pod, never>(
      client,
      { apiVersion: "v1", kind: "Pod", namespace, name },
      (pod) => {
        if (!pod)
          return {
            state: "failed",
            error: new KubeError("NotFound", `pod ${namespace}/${name} disappeared`),
          };
        last = pod;
        const problem = podProblem(pod);
        if (problem)
          return {
            state: "failed",
            error: new KubeError("Invalid", problem.message, { podProblem: problem.reason }),
          };
        if (!isPodReady(pod)) {
          return {
            state: "failed",
            error: new KubeError("Invalid", `pod ${namespace}/${name} is no longer ready`, {
              podProblem: "unready",
            }),
          };
        }
        return { state: "waiting" };
      },
      { timeoutMs: options.durationMs, signal: options.signal },
    );
  } catch (err) {
    if (err instanceof KubeError && err.reason === "Timeout" && last && !options.signal?.aborted) return last;
    throw err;
  }
  throw settled;
}
