/**
 * The Kubernetes side of `kubewise jobs watch`: a JobPodSource that watches pods in each
 * configured namespace through src/kube's ResourceWatcher (which relists after a 410 or an outage
 * and delivers what changed meanwhile, deletions included), and writes the reported annotation
 * after a delivery. The same watch feeds the servo's `jobs` measure connector (JobRunWatch).
 *
 * Start is strict, running is forgiving: a namespace the watcher cannot list at start (forbidden,
 * API server unreachable, no answer in time) fails start() with an error naming it, because a
 * watcher that silently watches nothing loses every report; after the first list, failures are
 * logged and ResourceWatcher keeps retrying. For the same reason start() first reads each
 * namespace: one that does not exist lists as empty, so a typo (POD_NAMESPACES=defualt) would
 * watch nothing without a word; it fails start() with a JobsError naming the namespace and the
 * variable or flag it came from. When reading namespaces is forbidden (the manifests grant `get
 * namespaces`, other setups may not), a warning says existence was not checked and start goes
 * on; any other failure of that read is left to the pod list, which reports it.
 */
import type { KubernetesObject, V1Pod } from "../kube/index.js";
import {
  KubeError,
  ResourceWatcher,
  patchObject,
  toKubeError,
  type KubeClient,
  type WatcherOptions,
} from "../kube/index.js";
import type { Logger } from "../log.js";
import { silentLogger } from "../log.js";
import { appContainerIndex, jobAppId, type AppIdPath } from "./appid.js";
import { JobsError } from "./errors.js";
import type { JobRunFeed } from "./connector.js";
import { describeJobRun, isPodFinished } from "./measurement.js";
import type { OutboxEntry } from "./outbox.js";
import { REPORT_FINALIZER } from "./mutation.js";
import { reportedAnnotationPatch } from "./reconcile.js";
import type { JobPodSource, PodListener } from "./service.js";
import { sampleOf, type JobSample } from "./stats.js";

/** DEFAULT_START_TIMEOUT_MS bounds how long start() waits for the first list of a namespace. */
export const DEFAULT_START_TIMEOUT_MS = 30_000;

/** JobPodWatcherOptions configure a JobPodWatcher. */
export interface JobPodWatcherOptions {
  client: KubeClient;
  /** namespaces to watch; at least one. */
  namespaces: readonly string[];
  log?: Logger;
  /** startTimeoutMs bounds the wait for each namespace's first list. @default DEFAULT_START_TIMEOUT_MS */
  startTimeoutMs?: number;
  /** watch passes options to each ResourceWatcher (tests: fast backoff). */
  watch?: WatcherOptions;
  /** now is the clock of the reported annotation's value. @default Date.now */
  now?: () => number;
  /**
   * namespacesFrom names where the namespaces came from (POD_NAMESPACES, --namespaces ...), for
   * the error about one that does not exist. @default none: the error names only the namespace
   */
  namespacesFrom?: string;
}

/**
 * JobPodWatcher is the JobPodSource over the Kubernetes API: one pod watch per namespace, and
 * markReported as a merge patch carrying the pod uid, so it can never mark a new pod that took a
 * reported pod's name.
 */
export class JobPodWatcher implements JobPodSource {
  private readonly options: JobPodWatcherOptions;
  private readonly log: Logger;
  private watchers: ResourceWatcher<V1Pod>[] = [];
  private starting = new AbortController();
  private readonly releasing = new Set<string>();

  constructor(options: JobPodWatcherOptions) {
    if (options.namespaces.length === 0) throw new KubeError("Invalid", "no namespace to watch pods in");
    this.options = options;
    this.log = options.log ?? silentLogger;
  }

  /**
   * start watches every namespace and resolves once each one's pods have been delivered. It
   * rejects with a KubeError naming the namespace when one cannot be listed (its reason is the
   * API's: Forbidden, Unavailable, Unauthorized ... or Timeout), after stopping the others, and
   * before watching anything with a JobsError when a namespace does not exist (checkNamespacesExist).
   */
  async start(listener: PodListener): Promise<void> {
    if (this.watchers.length > 0) throw new KubeError("Invalid", "the pod watcher is already started");
    const { client, namespaces } = this.options;
    this.starting = new AbortController();
    await checkNamespacesExist(client, namespaces, {
      from: this.options.namespacesFrom,
      log: this.log,
      timeoutMs: this.options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS,
    });
    this.watchers = namespaces.map(
      (namespace) =>
        new ResourceWatcher<V1Pod>(
          client,
          { apiVersion: "v1", kind: "Pod", namespace },
          { log: this.log, ...this.options.watch },
        ),
    );
    try {
      await Promise.all(
        this.watchers.map((watcher, i) => this.startOne(watcher, namespaces[i] as string, listener)),
      );
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  async stop(): Promise<void> {
    this.starting.abort();
    const watchers = this.watchers;
    this.watchers = [];
    await Promise.all(watchers.map((w) => w.stop()));
  }

  /**
   * markReported writes REPORTED_ANNOTATION on the entry's pod, if it is still the same pod (by
   * uid). A pod that is gone, or whose name now belongs to a new pod, counts as marked: there is
   * nothing left to mark, and the outbox keeps it from being reported again meanwhile.
   */
  readonly markReported = async (entry: OutboxEntry): Promise<void> => {
    const { client } = this.options;
    const target = { apiVersion: "v1", kind: "Pod", name: entry.pod, namespace: entry.namespace };
    const patch = reportedAnnotationPatch(entry.uid, (this.options.now ?? Date.now)());
    try {
      await patchObject(client, target, patch, "merge");
    } catch (err) {
      const error = toKubeError(err, `annotate pod ${entry.namespace}/${entry.pod}`);
      if (error.reason === "NotFound") return;
      // The API server answers a uid mismatch with 422 ("metadata.uid: field is immutable"); make
      // sure that is what happened before treating the mark as done.
      if ((error.reason === "Invalid" || error.reason === "Conflict") && (await this.replaced(entry))) {
        this.log.info(
          { pod: entry.pod, namespace: entry.namespace, uid: entry.uid },
          "reported pod was replaced by a new pod of the same name; not marking it",
        );
        return;
      }
      throw error;
    }
  };

  /**
   * releaseReportFinalizer removes REPORT_FINALIZER from the pod in the background (once per pod
   * at a time), retrying a few times with backoff; a pod that is gone or replaced needs nothing.
   * If it still fails the error is logged, and the next start's list brings the pod back.
   */
  releaseReportFinalizer(pod: V1Pod): void {
    const uid = pod.metadata?.uid;
    if (uid === undefined || this.releasing.has(uid)) return;
    this.releasing.add(uid);
    const where = { pod: pod.metadata?.name, namespace: pod.metadata?.namespace, uid };
    void releaseReportFinalizer(this.options.client, pod)
      .then(
        (released) => {
          if (released) this.log.debug(where, "report finalizer released");
        },
        (err: unknown) => this.log.error({ ...where, err }, "cannot release the report finalizer"),
      )
      .finally(() => this.releasing.delete(uid));
  }

  // replaced is true when the entry's pod no longer exists under its name (gone, or a new uid).
  private async replaced(entry: OutboxEntry): Promise<boolean> {
    try {
      const pod = await this.options.client.core.readNamespacedPod({
        namespace: entry.namespace,
        name: entry.pod,
      });
      return pod.metadata?.uid !== entry.uid;
    } catch (err) {
      const error = toKubeError(err, `read pod ${entry.namespace}/${entry.pod}`);
      if (error.reason === "NotFound") return true;
      throw error;
    }
  }

  private async startOne(
    watcher: ResourceWatcher<V1Pod>,
    namespace: string,
    listener: PodListener,
  ): Promise<void> {
    watcher.on((event) => {
      const deleted = event.type === "deleted";
      listener(event.object, deleted, deleted && event.inferred === true);
    });
    await startWatch(watcher, `pods in namespace "${namespace}"`, {
      timeoutMs: this.options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS,
      signal: this.starting.signal,
      hint: "grant list and watch on pods there (a RoleBinding to the ClusterRole kubewise-jobs-watcher, see manifests/jobs/README.md)",
    });
    this.log.debug({ namespace, pods: watcher.list().length }, "watching pods");
  }
}

/**
 * releaseReportFinalizer removes REPORT_FINALIZER from `pod` (the state last seen of it) with a
 * JSON patch that first tests the uid and the finalizer's position, so it never touches a new
 * pod of the same name nor another finalizer; when the pod changed meanwhile it is read again.
 * It resolves to true when it removed the finalizer, false when there was nothing to remove (the
 * pod is gone, replaced, or no longer holds it), and throws after `attempts` failed tries.
 */
export async function releaseReportFinalizer(
  client: KubeClient,
  pod: V1Pod,
  options: { attempts?: number; backoffMs?: number } = {},
): Promise<boolean> {
  const target = {
    name: pod.metadata?.name ?? "",
    namespace: pod.metadata?.namespace ?? "",
    uid: pod.metadata?.uid ?? "",
  };
  const attempts = options.attempts ?? 5;
  let seen: V1Pod | undefined = pod;
  let lastError: KubeError | undefined;
  for (let attempt = 0; attempt < attempts; attempt++) {
    if (attempt > 0) await new Promise((r) => setTimeout(r, (options.backoffMs ?? 200) * 2 ** (attempt - 1)));
    try {
      return await removeReportFinalizer(client, target, seen);
    } catch (err) {
      const error = toKubeError(
        err,
        `release the report finalizer of pod ${target.namespace}/${target.name}`,
      );
      if (error.reason === "NotFound") return false;
      lastError = error;
      seen = undefined; // a failed test (422) or anything else: read the pod again
    }
  }
  throw (
    lastError ??
    new KubeError("Unknown", `release the report finalizer of pod ${target.namespace}/${target.name}`)
  );
}

// removeReportFinalizer is one try of releaseReportFinalizer, from `seen` or a fresh read.
async function removeReportFinalizer(
  client: KubeClient,
  target: { name: string; namespace: string; uid: string },
  seen: V1Pod | undefined,
): Promise<boolean> {
  const { name, namespace, uid } = target;
  const current = seen ?? (await client.core.readNamespacedPod({ name, namespace }));
  if (current.metadata?.uid !== uid) return false;
  const at = current.metadata.finalizers?.indexOf(REPORT_FINALIZER) ?? -1;
  if (at === -1) return false;
  await client.core.patchNamespacedPod({
    name,
    namespace,
    body: [
      { op: "test", path: "/metadata/uid", value: uid },
      { op: "test", path: `/metadata/finalizers/${at}`, value: REPORT_FINALIZER },
      { op: "remove", path: `/metadata/finalizers/${at}` },
    ],
  });
  return true;
}

/**
 * releaseAllReportFinalizers removes REPORT_FINALIZER from every pod holding it in `namespaces`
 * (every namespace when none are given): the way out when the watcher is gone for good and its
 * pods would otherwise stay Terminating. It returns the pods released, "namespace/name".
 */
export async function releaseAllReportFinalizers(
  client: KubeClient,
  namespaces: readonly string[] = [],
): Promise<string[]> {
  const lists =
    namespaces.length === 0
      ? [await client.core.listPodForAllNamespaces({})]
      : await Promise.all(namespaces.map((namespace) => client.core.listNamespacedPod({ namespace })));
  const held = lists
    .flatMap((l) => l.items)
    .filter((p) => p.metadata?.finalizers?.includes(REPORT_FINALIZER));
  const released: string[] = [];
  for (const pod of held) {
    if (await releaseReportFinalizer(client, pod))
      released.push(`${pod.metadata?.namespace}/${pod.metadata?.name}`);
  }
  return released;
}

/**
 * checkNamespacesExist reads each namespace and throws a JobsError (`namespace-not-found`) naming
 * every one that does not exist and `from`, where the list came from. A forbidden read is
 * logged at warn (existence cannot be checked) and skipped; any other failure, or no answer
 * within `timeoutMs`, is logged at debug and skipped: the pod list that follows reports it.
 */
export async function checkNamespacesExist(
  client: KubeClient,
  namespaces: readonly string[],
  options: { from?: string; log?: Logger; timeoutMs?: number } = {},
): Promise<void> {
  const log = options.log ?? silentLogger;
  const timeoutMs = options.timeoutMs ?? DEFAULT_START_TIMEOUT_MS;
  const results = await Promise.all(namespaces.map((name) => readNamespaceWithin(client, name, timeoutMs)));
  const missing = namespaces.filter((_, i) => results[i]?.reason === "NotFound");
  if (missing.length > 0) {
    const names = missing.map((n) => JSON.stringify(n)).join(", ");
    const plural = missing.length > 1;
    const what =
      options.from === undefined
        ? `namespace${plural ? "s" : ""} ${names} ${plural ? "do" : "does"} not exist`
        : `${options.from} lists ${names}, which ${plural ? "do" : "does"} not exist`;
    throw new JobsError(
      "namespace-not-found",
      `${what} (check the spelling, or create the namespace first)`,
      { cause: results.find((r) => r?.reason === "NotFound") },
    );
  }
  namespaces.forEach((namespace, i) => {
    const err = results[i];
    if (err === undefined) return;
    if (err.reason === "Forbidden") {
      log.warn(
        { namespace, err: err.message },
        "cannot check that the namespace exists (no permission to get namespaces); watching it anyway",
      );
    } else {
      log.debug({ namespace, err: err.message }, "cannot check that the namespace exists");
    }
  });
}

// readNamespaceWithin resolves to undefined when the namespace exists, else to why it could not
// be read; it never rejects, and gives up after timeoutMs (a hung API server is the list's to report).
async function readNamespaceWithin(
  client: KubeClient,
  name: string,
  timeoutMs: number,
): Promise<KubeError | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<KubeError>((resolve) => {
    timer = setTimeout(
      () => resolve(new KubeError("Timeout", `read namespace ${name}: no answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
  });
  const read = client.core.readNamespace({ name }).then(
    () => undefined,
    (err: unknown) => toKubeError(err, `read namespace ${name}`),
  );
  try {
    return await Promise.race([read, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * startWatch starts a watcher and waits for its first list, failing on the first error before
 * it (ResourceWatcher itself would retry forever), after `timeoutMs`, or when `signal` aborts.
 * The error is a KubeError with the API's reason, naming `what` ("pods in namespace "x""), and
 * `hint` is added to a Forbidden one. The caller stops the watcher on failure.
 */
export async function startWatch<T extends KubernetesObject>(
  watcher: ResourceWatcher<T>,
  what: string,
  options: { timeoutMs: number; signal?: AbortSignal; hint?: string },
): Promise<void> {
  let cleanup = (): void => {};
  const failed = new Promise<never>((_, reject) => {
    const timer = setTimeout(() => {
      const seconds = Math.round(options.timeoutMs / 1000);
      reject(
        new KubeError("Timeout", `cannot watch ${what}: no answer from the API server within ${seconds} s`),
      );
    }, options.timeoutMs);
    const off = watcher.onError((err) => reject(startError(what, err, options.hint)));
    const onAbort = (): void => reject(new KubeError("Unknown", `watch of ${what} stopped while starting`));
    options.signal?.addEventListener("abort", onAbort, { once: true });
    if (options.signal?.aborted) onAbort();
    cleanup = () => {
      clearTimeout(timer);
      off();
      options.signal?.removeEventListener("abort", onAbort);
    };
  });
  watcher.start();
  try {
    await Promise.race([watcher.synced(), failed]);
  } finally {
    cleanup();
  }
}

function startError(what: string, err: KubeError, hint: string | undefined): KubeError {
  const detail = err.message.replace(/^watch [^:]*: /, "");
  const tail = err.reason === "Forbidden" && hint !== undefined ? `; ${hint}` : "";
  return new KubeError(err.reason, `cannot watch ${what}: ${detail}${tail}`, {
    cause: err,
    status: err.status,
  });
}

/** JobRunWatchOptions configure a JobRunWatch. */
export interface JobRunWatchOptions {
  client: KubeClient;
  namespaces: readonly string[];
  appIdPath: AppIdPath;
  log?: Logger;
  /** retentionMs is how long a finished run is kept after it finished. @default 24 h */
  retentionMs?: number;
  /** maxSamples bounds the runs kept; the oldest go first. @default 100000 */
  maxSamples?: number;
  /** now is the clock of the retention. @default Date.now */
  now?: () => number;
  startTimeoutMs?: number;
  watch?: WatcherOptions;
}

/**
 * JobRunWatch is the JobRunFeed the servo's `jobs` measure connector reads: it watches job pods
 * in the namespaces and keeps each finished run (by pod uid) as a JobSample, also after the pod
 * is deleted, until it is older than the retention. Runs that never ran have no duration and
 * are not kept. The watch starts listing at start(), so runs of pods still in the API that
 * finished before it are known too.
 */
export class JobRunWatch implements JobRunFeed {
  private readonly options: JobRunWatchOptions;
  private readonly source: JobPodWatcher;
  private readonly runs = new Map<string, JobSample>();

  constructor(options: JobRunWatchOptions) {
    this.options = options;
    this.source = new JobPodWatcher({
      client: options.client,
      namespaces: options.namespaces,
      log: options.log,
      startTimeoutMs: options.startTimeoutMs,
      watch: options.watch,
    });
  }

  /** start begins watching and resolves once every namespace has been listed (see JobPodWatcher.start). */
  async start(): Promise<void> {
    await this.source.start((pod) => this.see(pod));
  }

  /** stop ends the watch; the runs seen so far stay available. */
  async stop(): Promise<void> {
    await this.source.stop();
  }

  samples(): readonly JobSample[] {
    this.prune();
    return [...this.runs.values()];
  }

  // see records a finished job pod's run. A deleted pod's last state is as good as any: a run
  // recorded before the delete is kept, and one finished then has its times in that state.
  private see(pod: V1Pod): void {
    const uid = pod.metadata?.uid;
    if (uid === undefined || this.runs.has(uid) || !isPodFinished(pod)) return;
    const { appIdPath } = this.options;
    const appId = jobAppId(appIdPath, pod);
    if (appId === undefined) return;
    const run = describeJobRun(pod, { appId, containerIndex: appContainerIndex(appIdPath) });
    const sample = sampleOf(run);
    if (sample === undefined) return;
    this.runs.set(uid, sample);
    const max = this.options.maxSamples ?? 100_000;
    if (this.runs.size > max) this.prune(max);
  }

  private prune(max = this.options.maxSamples ?? 100_000): void {
    const cutoff = (this.options.now ?? Date.now)() - (this.options.retentionMs ?? 24 * 3600_000);
    for (const [uid, sample] of this.runs) {
      if (sample.finishedAtMs < cutoff) this.runs.delete(uid);
    }
    if (this.runs.size <= max) return;
    const oldest = [...this.runs.values()].sort((a, b) => a.finishedAtMs - b.finishedAtMs);
    for (const sample of oldest.slice(0, this.runs.size - max)) this.runs.delete(sample.uid);
  }
}
