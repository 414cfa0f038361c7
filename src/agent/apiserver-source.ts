import { ResourceWatcher, type KubeClient, type KubeError, type V1Pod } from "../kube/index.js";
import type { Logger } from "../log.js";
import { silentLogger } from "../log.js";
import type { ApiServerPodSourceFactory } from "./agent.js";
import type { AgentConfig } from "./config.js";
import { AgentError } from "./errors.js";
import type { PodSource } from "./podsource.js";

/**
 * The API-server pod source: the pods bound to this node, as the kubelet itself learns them
 * (field selector spec.nodeName), kept in memory by one watch per monitored namespace. An
 * iteration reads the cache, so a node's agent costs the API server one watch per namespace
 * instead of a LIST every few seconds (WCA listed every namespace on every iteration and
 * filtered on status.hostIP, which also missed pods not yet given one).
 */

/** ApiServerSourceOptions say whose pods to watch and how long the first list may take. */
export interface ApiServerSourceOptions {
  client: KubeClient;
  /** nodeName is this node's name, as in the pods' spec.nodeName. */
  nodeName: string;
  /** namespaces to watch one by one, or "all" for one cluster-wide watch. */
  namespaces: readonly string[] | "all";
  /** syncTimeoutMs bounds how long listPods waits for a namespace's first list. */
  syncTimeoutMs: number;
  log?: Logger;
  /** backoff of the watchers after a failure; @default 500 ms doubling to 30 s */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
}

/** NamespaceWatch is one namespace's watcher and what listPods needs to know about it. */
interface NamespaceWatch {
  /** namespace is undefined for the cluster-wide watch. */
  namespace: string | undefined;
  watcher: ResourceWatcher<V1Pod>;
  synced: boolean;
  /** lastError is the watcher's latest failure; it matters only until the first list is in. */
  lastError: KubeError | undefined;
  /** wakers resolve the pending first-list waits when a failure comes in. */
  wakers: Set<() => void>;
}

/**
 * ApiServerPodSource lists this node's pods from watch caches. The watchers start on the first
 * listPods and stop with stop(). Until a namespace's first list is in, listPods fails with the
 * reason (Forbidden names the RBAC the agent lacks); after that it answers from the cache, also
 * while the watcher is relisting after an error, because the pods of a node outlive an API-server
 * blip and their cgroups are local: a node agent that went blind on every hiccup would lose
 * metrics of pods that are running fine.
 */
export class ApiServerPodSource implements PodSource {
  readonly name = "apiserver";
  private readonly options: ApiServerSourceOptions;
  private readonly log: Logger;
  private watches: NamespaceWatch[] = [];

  constructor(options: ApiServerSourceOptions) {
    if (options.namespaces !== "all" && options.namespaces.length === 0) {
      throw new AgentError("config", "the apiserver pod source needs at least one namespace to watch");
    }
    this.options = options;
    this.log = (options.log ?? silentLogger).child({ podSource: "apiserver", node: options.nodeName });
  }

  /** fieldSelector selects the pods bound to this node that may still have a cgroup. */
  get fieldSelector(): string {
    // Finished pods have no cgroup any more; leaving them out keeps completed Job pods, which
    // stay until their Job is deleted, out of the cache (the watch sends DELETED when a pod
    // stops matching, so a pod that finishes leaves it at once).
    return `spec.nodeName=${this.options.nodeName},status.phase!=Succeeded,status.phase!=Failed`;
  }

  async listPods(): Promise<V1Pod[]> {
    if (this.watches.length === 0) this.startWatches();
    await Promise.all(this.watches.filter((w) => !w.synced).map((w) => this.awaitFirstList(w)));
    return this.watches.flatMap((w) => w.watcher.list());
  }

  /** stop ends every watch; a later listPods starts them again. */
  async stop(): Promise<void> {
    const watches = this.watches;
    this.watches = [];
    await Promise.all(watches.map((w) => w.watcher.stop()));
  }

  private startWatches(): void {
    const { client, namespaces } = this.options;
    const targets = namespaces === "all" ? [undefined] : [...new Set(namespaces)];
    this.watches = targets.map((namespace) => {
      const watcher = new ResourceWatcher<V1Pod>(
        client,
        { apiVersion: "v1", kind: "Pod", namespace, fieldSelector: this.fieldSelector },
        {
          log: this.log,
          initialBackoffMs: this.options.initialBackoffMs,
          maxBackoffMs: this.options.maxBackoffMs,
        },
      );
      const watch: NamespaceWatch = {
        namespace,
        watcher,
        synced: false,
        lastError: undefined,
        wakers: new Set(),
      };
      watcher.onError((err) => {
        watch.lastError = err;
        for (const wake of watch.wakers) wake();
      });
      void watcher.synced().then(() => {
        watch.synced = true;
        watch.lastError = undefined;
      });
      watcher.start();
      return watch;
    });
    this.log.debug(
      { namespaces: targets.map((n) => n ?? "*"), selector: this.fieldSelector },
      "watching pods",
    );
  }

  /**
   * awaitFirstList waits for a namespace's first list, its next failure or the timeout. A
   * namespace that has already failed fails at once: its watcher retries on its own backoff,
   * and holding every iteration for the whole timeout during an outage would only delay it.
   */
  private async awaitFirstList(w: NamespaceWatch): Promise<void> {
    if (w.lastError) throw this.failure(w, w.lastError);
    let timer: NodeJS.Timeout | undefined;
    let wake: (() => void) | undefined;
    const outcome = await Promise.race([
      w.watcher.synced().then(() => "synced" as const),
      new Promise<"failed">((resolve) => {
        wake = () => resolve("failed");
        w.wakers.add(wake);
      }),
      new Promise<"timeout">(
        (resolve) => (timer = setTimeout(() => resolve("timeout"), this.options.syncTimeoutMs)),
      ),
    ]).finally(() => {
      clearTimeout(timer);
      if (wake) w.wakers.delete(wake);
    });
    if (outcome === "synced") {
      w.synced = true;
      return;
    }
    if (outcome === "failed" && w.lastError) throw this.failure(w, w.lastError);
    throw new AgentError(
      "pod-source",
      `no pod list from the API server ${this.options.client.server} for ${where(w)} within ` +
        `${this.options.syncTimeoutMs / 1000} s (timeout_seconds)`,
    );
  }

  private failure(w: NamespaceWatch, err: KubeError): AgentError {
    const { client, nodeName } = this.options;
    // The Status message ("pods is forbidden: User ... cannot list ...") says it without the URL.
    const detail = err.status?.message ?? err.message;
    let message: string;
    switch (err.reason) {
      case "Forbidden":
        message =
          `the API server refused to list the pods of node ${nodeName} ${where(w)}: ${detail}. ` +
          `The agent's identity needs list and watch on pods ${w.namespace ? `in namespace ${w.namespace}` : "in all namespaces"} ` +
          `(the ClusterRole and ClusterRoleBinding in manifests/agent/rbac.yaml${w.namespace ? ", or a Role and RoleBinding in the namespace" : ""})`;
        break;
      case "Unauthorized":
        message = `the API server did not accept the agent's credentials from ${client.source}: ${detail}`;
        break;
      case "Unavailable":
      case "Timeout":
        message = `cannot reach the API server ${client.server} to list the pods of node ${nodeName}: ${detail}`;
        break;
      default:
        message = `cannot list the pods of node ${nodeName} ${where(w)}: ${detail}`;
    }
    return new AgentError("pod-source", message, { cause: err });
  }
}

function where(w: NamespaceWatch): string {
  return w.namespace ? `in namespace ${w.namespace}` : "in any namespace";
}

/**
 * apiServerPodSources makes the factory NodeAgent calls for `pod_source: apiserver`: one watch
 * per monitored namespace, the first list bounded by timeout_seconds. `connect` is called only
 * then, so the kubelet source never needs a kubeconfig.
 */
export function apiServerPodSources(connect: () => KubeClient, log?: Logger): ApiServerPodSourceFactory {
  return (nodeName: string, config: AgentConfig) =>
    new ApiServerPodSource({
      client: connect(),
      nodeName,
      namespaces: config.monitored_namespaces,
      syncTimeoutMs: config.timeout_seconds * 1000,
      log,
    });
}
