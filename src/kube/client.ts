import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { Agent as HttpsAgent, type AgentOptions } from "node:https";
import { homedir } from "node:os";
import { join } from "node:path";
import {
  AdmissionregistrationV1Api,
  ApiextensionsV1Api,
  AppsV1Api,
  AutoscalingV2Api,
  BatchV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  KubernetesObjectApi,
  NetworkingV1Api,
  PolicyV1Api,
  RbacAuthorizationV1Api,
  type Cluster,
  type Context,
  type User,
} from "@kubernetes/client-node";
import { KubeError } from "./errors.js";

/** ConnectOptions say which cluster to talk to. */
export interface ConnectOptions {
  /** kubeconfig file; @default $KUBECONFIG, then ~/.kube/config, then the in-cluster service account */
  kubeconfig?: string;
  /** context in the kubeconfig; @default its current context */
  context?: string;
}

type ApiClass<T> = new (...args: never[]) => T;

/**
 * KubeClient is the one door to an API server. It holds the KubeConfig and hands out the typed
 * API groups, made once each. Every module reaches Kubernetes through it (and the helpers in
 * src/kube), never through @kubernetes/client-node directly.
 */
export class KubeClient {
  readonly config: KubeConfig;
  /** source says where the configuration came from, for messages. */
  readonly source: string;
  private readonly apis = new Map<unknown, unknown>();

  constructor(config: KubeConfig, source: string) {
    this.config = config;
    this.source = source;
  }

  /** connect loads a kubeconfig (see ConnectOptions for the order) and picks the context. */
  static connect(options: ConnectOptions = {}): KubeClient {
    const kc = new KubeConfig();
    const files = options.kubeconfig !== undefined ? [options.kubeconfig] : kubeconfigsFromEnv();
    const file = files[0] ?? defaultKubeconfig();
    let source: string;
    try {
      if (files.length > 1) {
        loadMerged(kc, files);
        source = files.join(":");
      } else if (file) {
        kc.loadFromFile(file);
        source = file;
      } else if (process.env.KUBERNETES_SERVICE_HOST) {
        kc.loadFromCluster();
        source = "in-cluster service account";
      } else {
        throw new KubeError(
          "Unavailable",
          "no Kubernetes cluster configured: pass --kubeconfig, set KUBECONFIG, or start the local cluster with `kubewise cluster up`",
        );
      }
    } catch (err) {
      if (err instanceof KubeError) throw err;
      throw new KubeError("Invalid", `cannot load kubeconfig ${file}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    if (options.context) {
      if (!kc.getContextObject(options.context)) {
        const known = kc.getContexts().map((c) => c.name);
        throw new KubeError(
          "NotFound",
          `context "${options.context}" is not in ${source} (contexts: ${known.join(", ") || "none"})`,
        );
      }
      kc.setCurrentContext(options.context);
    }
    if (!kc.getCurrentCluster()) {
      throw new KubeError("Invalid", `kubeconfig ${source} has no current cluster`);
    }
    reuseConnections(kc);
    return new KubeClient(kc, source);
  }

  /** server is the API server URL. */
  get server(): string {
    return this.config.getCurrentCluster()?.server ?? "";
  }

  /** defaultNamespace is the current context's namespace, or "default". */
  get defaultNamespace(): string {
    return this.config.getContextObject(this.config.getCurrentContext())?.namespace ?? "default";
  }

  private api<T>(cls: ApiClass<T>): T {
    const cached = this.apis.get(cls) as T | undefined;
    if (cached) return cached;
    const api: T =
      (cls as unknown) === KubernetesObjectApi
        ? (KubernetesObjectApi.makeApiClient(this.config) as T)
        : (this.config.makeApiClient(cls as never) as T);
    this.apis.set(cls, api);
    return api;
  }

  get core(): CoreV1Api {
    return this.api(CoreV1Api);
  }
  get apps(): AppsV1Api {
    return this.api(AppsV1Api);
  }
  get batch(): BatchV1Api {
    return this.api(BatchV1Api);
  }
  get coordination(): CoordinationV1Api {
    return this.api(CoordinationV1Api);
  }
  get custom(): CustomObjectsApi {
    return this.api(CustomObjectsApi);
  }
  get apiextensions(): ApiextensionsV1Api {
    return this.api(ApiextensionsV1Api);
  }
  get admission(): AdmissionregistrationV1Api {
    return this.api(AdmissionregistrationV1Api);
  }
  get autoscaling(): AutoscalingV2Api {
    return this.api(AutoscalingV2Api);
  }
  get networking(): NetworkingV1Api {
    return this.api(NetworkingV1Api);
  }
  get policy(): PolicyV1Api {
    return this.api(PolicyV1Api);
  }
  get rbac(): RbacAuthorizationV1Api {
    return this.api(RbacAuthorizationV1Api);
  }
  /** objects works on any kind given as a manifest (apply, read, delete, list). */
  get objects(): KubernetesObjectApi {
    return this.api(KubernetesObjectApi);
  }
}

/**
 * kubeconfigsFromEnv lists the files KUBECONFIG names, as kubectl reads it: colon-separated,
 * empty entries and files that do not exist skipped (a single named file must exist: loading it
 * then fails with a clear message).
 */
function kubeconfigsFromEnv(): string[] {
  const entries = (process.env.KUBECONFIG ?? "").split(":").filter((p) => p.length > 0);
  if (entries.length <= 1) return entries;
  return entries.filter((p) => existsSync(p));
}

/**
 * loadMerged merges several kubeconfig files the way kubectl does: the first file to define a
 * cluster, user or context name wins, and the current context is the first file's that sets one.
 */
function loadMerged(kc: KubeConfig, files: readonly string[]): void {
  let current = "";
  const seen = { clusters: new Set<string>(), users: new Set<string>(), contexts: new Set<string>() };
  const merged = { clusters: [] as Cluster[], users: [] as User[], contexts: [] as Context[] };
  for (const f of files) {
    const one = new KubeConfig();
    try {
      one.loadFromFile(f);
    } catch (err) {
      throw new Error(`${f}: ${(err as Error).message}`, { cause: err });
    }
    if (current === "" && one.getCurrentContext()) current = one.getCurrentContext();
    for (const key of ["clusters", "users", "contexts"] as const) {
      for (const item of one[key] as { name: string }[]) {
        if (seen[key].has(item.name)) continue;
        seen[key].add(item.name);
        (merged[key] as { name: string }[]).push(item);
      }
    }
  }
  kc.loadFromOptions({ ...merged, currentContext: current });
}

function defaultKubeconfig(): string | undefined {
  const file = join(homedir(), ".kube", "config");
  return existsSync(file) ? file : undefined;
}

/**
 * reuseConnections makes every request of one KubeConfig share keep-alive HTTPS agents. The
 * client creates a new agent — so a new TCP connection and TLS handshake — for every API call,
 * which costs about 20 ms each; one agent per server and credentials removes that. Proxied
 * clusters keep the library's own agents.
 */
function reuseConnections(kc: KubeConfig): void {
  const target = kc as unknown as {
    createAgent: (cluster: { server?: string; proxyUrl?: string } | null, options: AgentOptions) => unknown;
  };
  const original = target.createAgent.bind(kc);
  const agents = new Map<string, HttpsAgent>();
  target.createAgent = (cluster, options) => {
    if (!cluster?.server?.startsWith("https:") || cluster.proxyUrl) return original(cluster, options);
    const key = createHash("sha256")
      .update(
        JSON.stringify([
          cluster.server,
          options.ca,
          options.cert,
          options.key,
          options.pfx,
          options.rejectUnauthorized,
          options.servername,
        ]),
      )
      .digest("hex");
    let agent = agents.get(key);
    if (!agent) {
      agent = new HttpsAgent({ ...options, keepAlive: true });
      agents.set(key, agent);
    }
    return agent;
  };
}
