/**
 * The SwarmPool controller behind `kubewise swarm run`: level-based, one reconcile per pool key.
 *
 * Watches SwarmPools, StatefulSets, Deployments, Pods and ConfigMaps (in one namespace or all);
 * any change that concerns a pool queues the pool's key, with no per-event logic. reconcile(key)
 * reads everything it needs fresh — the pool, its job list, its worker ConfigMap — plus the
 * workload and its pods from the watch caches, computes the assignment (assignWork, sticky to the
 * ConfigMap's current one), writes the ConfigMap only when its text changes, restarts workers one
 * at a time when the pool asks for restarts (rollout.ts), and writes the status only when it
 * changes. A problem the user must fix (a bad spec, too few workers) sets Degraded and is not
 * retried until something changes; API failures are retried with backoff.
 *
 * Caches run on every instance so a standby can take over at once and serve /assignments, but
 * only the holder of the leader Lease reconciles, and every write checks that it still holds it.
 */
import type {
  KubeClient,
  KubernetesObject,
  V1ConfigMap,
  V1Deployment,
  V1Pod,
  V1StatefulSet,
} from "../kube/index.js";
import {
  LeaderElector,
  ResourceWatcher,
  applyObject,
  controllerOf,
  isNotFound,
  ownerReference,
  replaceStatus,
  toKubeError,
} from "../kube/index.js";
import { ConfigError } from "../config/index.js";
import { KubewiseError } from "../errors.js";
import { silentLogger, type Logger } from "../log.js";
import { assignWork, movedJobs, type Assignment } from "./assign.js";
import { SwarmError } from "./errors.js";
import {
  describeWorkerPod,
  inheritEntries,
  leavingWorkers,
  ownsPod,
  poolMembers,
  workloadOfPod,
  type WorkerPod,
  type Workload,
  type WorkloadKind,
} from "./members.js";
import { SwarmMetrics } from "./metrics.js";
import {
  parseJobList,
  parseSwarmPoolSpec,
  SWARM_GROUP,
  SWARM_POOL_KIND,
  SWARM_VERSION,
  type SwarmPoolSpec,
} from "./pool.js";
import {
  canonicalJson,
  healthyConditions,
  kubeTime,
  problemConditions,
  problemReasonOf,
  setConditions,
  workerStatus,
  type PoolCondition,
  type PoolProblemReason,
  type PoolStatus,
} from "./poolstatus.js";
import { TerminalError, WorkQueue, type ReconcileResult } from "./queue.js";
import {
  mergePending,
  planRollout,
  samePending,
  stalePods,
  type PendingRestart,
  type RolloutPlan,
} from "./rollout.js";
import {
  assignmentOf,
  changedWorkers,
  parseWorkerConfig,
  renderWorkerConfig,
  versionWorkloads,
  type WorkerConfig,
} from "./workloads.js";

/** SWARM_API_VERSION is the apiVersion of SwarmPool objects. */
export const SWARM_API_VERSION = `${SWARM_GROUP}/${SWARM_VERSION}`;
/** SWARM_POOL_PLURAL is the resource name of SwarmPools. */
export const SWARM_POOL_PLURAL = "swarmpools";

/** SwarmPoolObject is a SwarmPool as the API server returns it: spec unvalidated, status as written. */
export interface SwarmPoolObject extends KubernetesObject {
  spec?: unknown;
  status?: Partial<PoolStatus>;
}

/** SwarmControllerOptions configure a SwarmController. */
export interface SwarmControllerOptions {
  /** namespace whose pools are reconciled. @default every namespace */
  namespace?: string;
  /** lease elects the one instance that reconciles; see LeaderElectorOptions for the durations. */
  lease: {
    namespace: string;
    name: string;
    identity: string;
    leaseDurationMs?: number;
    renewDeadlineMs?: number;
    retryPeriodMs?: number;
    releaseOnStop?: boolean;
  };
  log?: Logger;
  /** metrics to count into. @default a new SwarmMetrics */
  metrics?: SwarmMetrics;
  /** now is the clock for condition times. @default Date.now */
  now?: () => number;
  /** resyncMs: every pool is reconciled at least this often, events or not. @default 300000 */
  resyncMs?: number;
  /** progressRequeueMs: a pool waiting on pods is looked at again this soon without events. @default 30000 */
  progressRequeueMs?: number;
}

/** PoolAssignment is what /assignments shows for one pool, read from the caches. */
export interface PoolAssignment {
  namespace: string;
  name: string;
  workload?: { kind: string; name: string };
  configMap?: { name: string; key: string };
  strategy?: string;
  /** workers maps each worker to its entry in the worker ConfigMap (what the workers read). */
  workers: Record<string, { jobs: readonly string[]; version: number }>;
  pendingRestarts: PendingRestart[];
  observedGeneration?: number;
  conditions: PoolCondition[];
  /** error says why the spec or the ConfigMap could not be read. */
  error?: string;
}

/** PoolProblem is a reason the pool cannot be assigned that only a change in the cluster fixes. */
class PoolProblem extends KubewiseError {
  declare readonly reason: PoolProblemReason;
  constructor(reason: PoolProblemReason, message: string) {
    super(reason, message);
  }
}

/** NotLeaderError stops a reconcile that would write after this instance lost the lease. */
class NotLeaderError extends KubewiseError {
  constructor() {
    super("NotLeader", "not the leader any more; the new leader reconciles");
  }
}

/** PoolInputs is everything a reconcile reads before deciding. */
interface PoolInputs {
  namespace: string;
  name: string;
  spec: SwarmPoolSpec;
  jobs: readonly string[];
  pods: WorkerPod[];
  workers: string[];
  /** leaving are the workers of a scale-down in progress. */
  leaving: string[];
  configMap: V1ConfigMap | undefined;
  previous: WorkerConfig | undefined;
}

/**
 * SwarmController reconciles SwarmPools (see the file comment). start() begins watching and
 * campaigning for the lease; stop() finishes the reconcile in flight, releases the lease and
 * stops watching.
 */
export class SwarmController {
  readonly metrics: SwarmMetrics;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly pools: ResourceWatcher<SwarmPoolObject>;
  private readonly statefulSets: ResourceWatcher<V1StatefulSet>;
  private readonly deployments: ResourceWatcher<V1Deployment>;
  private readonly pods: ResourceWatcher<V1Pod>;
  private readonly configMaps: ResourceWatcher<V1ConfigMap>;
  private readonly queue: WorkQueue;
  private readonly elector: LeaderElector;
  private readonly progressRequeueMs: number;
  private resync: NodeJS.Timeout | undefined;
  private started = false;
  private stopping = false;
  private isSynced = false;

  constructor(
    private readonly client: KubeClient,
    private readonly options: SwarmControllerOptions,
  ) {
    this.log = (options.log ?? silentLogger).child({ controller: "swarm" });
    this.metrics = options.metrics ?? new SwarmMetrics();
    this.now = options.now ?? Date.now;
    this.progressRequeueMs = options.progressRequeueMs ?? 30_000;
    const namespace = options.namespace;
    const watch = { log: this.log };
    this.pools = new ResourceWatcher(
      client,
      { apiVersion: SWARM_API_VERSION, kind: SWARM_POOL_KIND, plural: SWARM_POOL_PLURAL, namespace },
      watch,
    );
    this.statefulSets = new ResourceWatcher(
      client,
      { apiVersion: "apps/v1", kind: "StatefulSet", namespace },
      watch,
    );
    this.deployments = new ResourceWatcher(
      client,
      { apiVersion: "apps/v1", kind: "Deployment", namespace },
      watch,
    );
    this.pods = new ResourceWatcher(client, { apiVersion: "v1", kind: "Pod", namespace }, watch);
    this.configMaps = new ResourceWatcher(client, { apiVersion: "v1", kind: "ConfigMap", namespace }, watch);
    this.queue = new WorkQueue({
      reconcile: (key) => this.reconcile(key),
      log: this.log,
      onOutcome: (_key, outcome, ms, err) =>
        this.metrics.observe(outcome, ms, err === undefined ? undefined : reasonOf(err)),
    });
    this.elector = new LeaderElector(client, {
      ...options.lease,
      log: this.log,
      onStartedLeading: () => this.startLeading(),
      onStoppedLeading: () => this.stopLeading(),
    });
    this.metrics.leader.set(0);
    this.listen();
  }

  /** identity is this instance's name in the leader election. */
  get identity(): string {
    return this.elector.identity;
  }

  /**
   * start begins watching and, once the caches hold a full list, campaigning for the lease. It
   * returns at once: synced() tells when the caches are in, isLeader() when it reconciles.
   */
  start(): void {
    if (this.started) return;
    this.started = true;
    const watchers = this.watchers();
    for (const w of watchers) w.start();
    void Promise.all(watchers.map((w) => w.synced())).then(() => {
      if (this.stopping) return;
      this.isSynced = true;
      this.log.info("caches synced");
      this.elector.start();
      this.resync = setInterval(() => this.enqueueAll(), this.options.resyncMs ?? 300_000);
      this.resync.unref();
    });
  }

  /** synced is true once every cache holds a full list. */
  synced(): boolean {
    return this.isSynced;
  }

  /** isLeader is true while this instance holds the lease (and so reconciles). */
  isLeader(): boolean {
    return this.elector.isLeader();
  }

  /** leader is the identity last seen holding the lease, if any. */
  leader(): string | undefined {
    return this.elector.leader() || undefined;
  }

  /**
   * stop finishes the reconcile in flight, then steps down (releasing the lease so a standby
   * takes over at once) and stops watching. Writes cannot happen after the lease is released.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.resync) clearInterval(this.resync);
    await this.queue.stop();
    await this.elector.stop();
    await Promise.all(this.watchers().map((w) => w.stop()));
    this.metrics.leader.set(0);
  }

  /**
   * reconcile brings one pool (key "namespace/name") in line with its spec; it is safe to run any
   * number of times. It throws TerminalError for problems a retry cannot fix (after recording them
   * in the pool's conditions) and other errors for the queue to retry.
   */
  async reconcile(key: string): Promise<ReconcileResult> {
    this.assertLeading();
    const slash = key.indexOf("/");
    const namespace = key.slice(0, slash);
    const name = key.slice(slash + 1);
    const pool = await this.readPool(namespace, name);
    if (pool === undefined) return {};
    const log = this.log.child({ pool: key });
    try {
      const inputs = await this.readInputs(pool, namespace, name);
      return await this.converge(pool, inputs, log);
    } catch (err) {
      if (err instanceof NotLeaderError) throw new TerminalError(err);
      if (!(err instanceof PoolProblem)) throw err;
      await this.reportProblem(pool, err, log);
      throw new TerminalError(err);
    }
  }

  /** assignments describes every cached pool and its worker ConfigMap, on leader and standby alike. */
  assignments(): PoolAssignment[] {
    return this.pools
      .list()
      .map((pool) => this.describePool(pool))
      .sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`));
  }

  private watchers(): ResourceWatcher<KubernetesObject>[] {
    return [this.pools, this.statefulSets, this.deployments, this.pods, this.configMaps];
  }

  private listen(): void {
    this.pools.on(({ object }) => this.queue.add(keyOf(object)));
    this.statefulSets.on(({ object }) => this.enqueueForWorkload(object, "StatefulSet"));
    this.deployments.on(({ object }) => this.enqueueForWorkload(object, "Deployment"));
    this.pods.on(({ object }) => {
      const workload = workloadOfPod(object);
      if (workload) this.enqueueMatching(object.metadata?.namespace, (ref) => sameWorkload(ref, workload));
    });
    this.configMaps.on(({ object }) => {
      const name = object.metadata?.name;
      this.enqueueMatching(object.metadata?.namespace, (ref) => ref.configMaps.includes(name ?? ""));
    });
  }

  private enqueueForWorkload(object: KubernetesObject, kind: WorkloadKind): void {
    const name = object.metadata?.name ?? "";
    this.enqueueMatching(object.metadata?.namespace, (ref) => sameWorkload(ref, { kind, name }));
  }

  private enqueueMatching(namespace: string | undefined, match: (ref: PoolRefs) => boolean): void {
    for (const pool of this.pools.list()) {
      if (pool.metadata?.namespace === namespace && match(poolRefs(pool))) this.queue.add(keyOf(pool));
    }
  }

  private enqueueAll(): void {
    for (const pool of this.pools.list()) this.queue.add(keyOf(pool));
  }

  private startLeading(): void {
    if (this.stopping) return;
    this.metrics.leader.set(1);
    this.queue.start();
    this.enqueueAll();
  }

  private stopLeading(): void {
    this.metrics.leader.set(0);
    void this.queue.stop();
  }

  private assertLeading(): void {
    if (!this.elector.isLeader()) throw new NotLeaderError();
  }

  private async readPool(namespace: string, name: string): Promise<SwarmPoolObject | undefined> {
    try {
      return (await this.client.custom.getNamespacedCustomObject({
        group: SWARM_GROUP,
        version: SWARM_VERSION,
        plural: SWARM_POOL_PLURAL,
        namespace,
        name,
      })) as SwarmPoolObject;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw toKubeError(err, `read SwarmPool ${namespace}/${name}`);
    }
  }

  private async readInputs(pool: SwarmPoolObject, namespace: string, name: string): Promise<PoolInputs> {
    let spec: SwarmPoolSpec;
    try {
      spec = parseSwarmPoolSpec(pool.spec, `SwarmPool ${namespace}/${name}`);
    } catch (err) {
      if (err instanceof ConfigError) throw new PoolProblem("InvalidSpec", err.message);
      throw err;
    }
    const jobs = await this.readJobs(namespace, spec);
    const workload = this.readWorkload(namespace, spec);
    const pods = this.pods
      .list()
      .filter((p) => p.metadata?.namespace === namespace && ownsPod(workload, p))
      .map(describeWorkerPod);
    const leaving = leavingWorkers(workload, pods);
    const configMap = await this.readConfigMap(namespace, spec.workerConfigMap.name);
    const owner = configMap && controllerOf(configMap);
    if (owner && owner.uid !== pool.metadata?.uid) {
      throw new PoolProblem(
        "ConfigMapConflict",
        `ConfigMap ${namespace}/${spec.workerConfigMap.name} (spec.workerConfigMap) is controlled by ${owner.kind} ${owner.name}; give this pool its own worker ConfigMap`,
      );
    }
    const current = this.previousConfig(configMap, spec.workerConfigMap.key, namespace);
    // Restarts in flight keep their slots (poolMembers), so a restart moves no jobs.
    const restarting = spec.refresh.strategy === "restart" ? (pool.status?.pendingRestarts ?? []) : [];
    const { workers, inherited } = poolMembers(workload, pods, restarting, new Set(current?.keys()));
    const previous = inheritEntries(current, inherited);
    return { namespace, name, spec, jobs, pods, workers, leaving, configMap, previous };
  }

  private async readJobs(namespace: string, spec: SwarmPoolSpec): Promise<readonly string[]> {
    if (spec.jobs.inline !== undefined) return spec.jobs.inline;
    const ref = spec.jobs.configMapKeyRef as { name: string; key: string };
    const where = `ConfigMap ${namespace}/${ref.name}`;
    const configMap = await this.readConfigMap(namespace, ref.name);
    if (configMap === undefined) {
      throw new PoolProblem("JobsNotFound", `${where} (spec.jobs.configMapKeyRef) does not exist`);
    }
    const text = configMap.data?.[ref.key];
    if (text === undefined) {
      throw new PoolProblem("JobsNotFound", `${where} has no key "${ref.key}" (spec.jobs.configMapKeyRef)`);
    }
    try {
      return parseJobList(text, `${where} key ${ref.key}`);
    } catch (err) {
      if (err instanceof ConfigError) throw new PoolProblem("InvalidJobs", err.message);
      throw err;
    }
  }

  private readWorkload(namespace: string, spec: SwarmPoolSpec): Workload {
    const { kind, name } = spec.workload;
    const workload: Workload | undefined =
      kind === "StatefulSet"
        ? wrap("StatefulSet", this.statefulSets.get(name, namespace))
        : wrap("Deployment", this.deployments.get(name, namespace));
    if (workload === undefined) {
      throw new PoolProblem(
        "WorkloadNotFound",
        `${kind} ${namespace}/${name} (spec.workload) does not exist`,
      );
    }
    return workload;
  }

  private async readConfigMap(namespace: string, name: string): Promise<V1ConfigMap | undefined> {
    try {
      return await this.client.core.readNamespacedConfigMap({ namespace, name });
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw toKubeError(err, `read ConfigMap ${namespace}/${name}`);
    }
  }

  /** previousConfig reads the current assignment; an unreadable one is replaced, not kept. */
  private previousConfig(
    configMap: V1ConfigMap | undefined,
    key: string,
    namespace: string,
  ): WorkerConfig | undefined {
    const text = configMap?.data?.[key];
    if (text === undefined) return undefined;
    try {
      return parseWorkerConfig(text, `ConfigMap ${namespace}/${configMap?.metadata?.name} key ${key}`);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, "worker config unreadable, assigning afresh");
      return undefined;
    }
  }

  private async converge(pool: SwarmPoolObject, inputs: PoolInputs, log: Logger): Promise<ReconcileResult> {
    const { spec, previous, pods, workers } = inputs;
    const config = versionWorkloads(previous, this.assign(inputs));
    const text = renderWorkerConfig(config);
    const restart = spec.refresh.strategy === "restart";
    let pending: PendingRestart[] = restart ? (pool.status?.pendingRestarts ?? []) : [];
    let current = pool;
    if (this.configMapOutdated(inputs, pool, text)) {
      if (restart) {
        // Recorded before the ConfigMap changes: if we stop in between, the next leader still
        // knows which pods started with the old entries.
        const merged = mergePending(pending, stalePods(previous, config, pods));
        if (!samePending(merged, pending)) {
          current = await this.writeStatus(current, { ...(current.status ?? {}), pendingRestarts: merged });
          pending = merged;
        }
      }
      await this.writeConfigMap(current, inputs, text);
      const moved =
        previous === undefined ? 0 : movedJobs(assignmentOf(previous), assignmentOf(config)).length;
      this.metrics.jobsMoved.inc({ namespace: inputs.namespace, pool: inputs.name }, moved);
      log.info(
        {
          workers: workers.length,
          jobs: inputs.jobs.length,
          moved,
          changed: changedWorkers(previous, config),
        },
        "worker config written",
      );
    }
    const plan = planRollout(pending, workers, pods, inputs.leaving);
    if (plan.step.kind === "restart") await this.restartPod(inputs, plan.step.target, log);
    const byName = new Map(pods.map((p) => [p.name, p]));
    const unready = workers.filter((w) => byName.get(w)?.ready !== true);
    const status = this.healthyStatus(current, inputs, config, plan, unready);
    if (canonicalJson(status) !== canonicalJson(current.status ?? {}))
      await this.writeStatus(current, status);
    // Pod events drive the rollout; the requeue is only a safety net against a missed event.
    const settled = plan.step.kind === "idle" && unready.length === 0;
    return settled ? {} : { requeueAfterMs: this.progressRequeueMs };
  }

  private assign(inputs: PoolInputs): Assignment {
    const { jobs, workers, previous, spec } = inputs;
    try {
      return assignWork(jobs, workers, previous && assignmentOf(previous), { dedicated: spec.qos.dedicated });
    } catch (err) {
      if (err instanceof SwarmError) throw new PoolProblem(problemReasonOf(err.reason), err.message);
      throw err;
    }
  }

  private configMapOutdated(inputs: PoolInputs, pool: SwarmPoolObject, text: string): boolean {
    const cm = inputs.configMap;
    if (cm?.data?.[inputs.spec.workerConfigMap.key] !== text) return true;
    return controllerOf(cm)?.uid !== pool.metadata?.uid;
  }

  private healthyStatus(
    pool: SwarmPoolObject,
    inputs: PoolInputs,
    config: WorkerConfig,
    plan: RolloutPlan,
    unready: readonly string[],
  ): PoolStatus {
    const generation = pool.metadata?.generation ?? 0;
    const updates = healthyConditions({
      jobCount: inputs.jobs.length,
      workers: inputs.workers,
      unready,
      step: plan.step,
    });
    return {
      observedGeneration: generation,
      workerCount: inputs.workers.length,
      jobCount: inputs.jobs.length,
      workers: workerStatus(config, new Set(inputs.spec.qos.dedicated)),
      ...(plan.pending.length > 0 ? { pendingRestarts: plan.pending } : {}),
      conditions: setConditions(pool.status?.conditions, updates, generation, kubeTime(this.now())),
    };
  }

  private async reportProblem(pool: SwarmPoolObject, problem: PoolProblem, log: Logger): Promise<void> {
    const generation = pool.metadata?.generation ?? 0;
    const old = pool.status ?? {};
    const status: PoolStatus = {
      ...old,
      observedGeneration: generation,
      workerCount: old.workerCount ?? 0,
      jobCount: old.jobCount ?? 0,
      workers: old.workers ?? [],
      conditions: setConditions(
        old.conditions,
        problemConditions(problem.reason, problem.message),
        generation,
        kubeTime(this.now()),
      ),
    };
    if (canonicalJson(status) === canonicalJson(old)) return;
    log.warn({ reason: problem.reason, err: problem.message }, "pool cannot be assigned");
    await this.writeStatus(pool, status);
  }

  private async writeStatus(pool: SwarmPoolObject, status: Partial<PoolStatus>): Promise<SwarmPoolObject> {
    this.assertLeading();
    const updated = await replaceStatus(
      this.client,
      { apiVersion: SWARM_API_VERSION, plural: SWARM_POOL_PLURAL },
      { ...pool, status },
    );
    this.metrics.writes.inc({ object: "status" });
    return updated;
  }

  private async writeConfigMap(pool: SwarmPoolObject, inputs: PoolInputs, text: string): Promise<void> {
    this.assertLeading();
    const { name, key } = inputs.spec.workerConfigMap;
    const configMap: V1ConfigMap = {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: {
        name,
        namespace: inputs.namespace,
        labels: { "app.kubernetes.io/managed-by": "kubewise" },
        // blockOwnerDeletion would need update on swarmpools/finalizers where the
        // OwnerReferencesPermissionEnforcement admission plugin runs; garbage collection works without it.
        ownerReferences: [ownerReference(pool, { controller: true, blockOwnerDeletion: false })],
      },
      data: { [key]: text },
    };
    await applyObject(this.client, configMap);
    this.metrics.writes.inc({ object: "configmap" });
  }

  private async restartPod(inputs: PoolInputs, target: PendingRestart, log: Logger): Promise<void> {
    this.assertLeading();
    const { namespace } = inputs;
    try {
      // The uid precondition makes this delete only the stale pod, never its replacement.
      await this.client.core.deleteNamespacedPod({
        namespace,
        name: target.name,
        body: { preconditions: { uid: target.uid } },
      });
      this.metrics.writes.inc({ object: "pod" });
      this.metrics.restarts.inc({ namespace, pool: inputs.name });
      log.info({ worker: target.name, uid: target.uid, version: target.version }, "worker restarted");
    } catch (err) {
      const error = toKubeError(err, `delete pod ${namespace}/${target.name}`);
      // Gone already, or a new pod has the name: either way the stale pod is not running.
      if (error.reason === "NotFound" || error.reason === "Conflict") return;
      throw error;
    }
  }

  private describePool(pool: SwarmPoolObject): PoolAssignment {
    const namespace = pool.metadata?.namespace ?? "";
    const base: PoolAssignment = {
      namespace,
      name: pool.metadata?.name ?? "",
      workers: {},
      pendingRestarts: pool.status?.pendingRestarts ?? [],
      observedGeneration: pool.status?.observedGeneration,
      conditions: pool.status?.conditions ?? [],
    };
    let spec: SwarmPoolSpec;
    try {
      spec = parseSwarmPoolSpec(pool.spec);
    } catch (err) {
      return { ...base, error: (err as Error).message };
    }
    const { name, key } = spec.workerConfigMap;
    const described = {
      ...base,
      workload: { kind: spec.workload.kind, name: spec.workload.name },
      configMap: { name, key },
      strategy: spec.refresh.strategy,
    };
    const text = this.configMaps.get(name, namespace)?.data?.[key];
    if (text === undefined) return described;
    try {
      const config = parseWorkerConfig(text);
      return { ...described, workers: Object.fromEntries(config) };
    } catch (err) {
      return { ...described, error: (err as Error).message };
    }
  }
}

/** PoolRefs are the names a pool refers to, read leniently from an unvalidated spec. */
interface PoolRefs {
  workload: { kind: string; name: string };
  configMaps: string[];
}

function poolRefs(pool: SwarmPoolObject): PoolRefs {
  const spec = (pool.spec ?? {}) as {
    workload?: { kind?: string; name?: string };
    jobs?: { configMapKeyRef?: { name?: string } };
    workerConfigMap?: { name?: string };
  };
  const workload = { kind: spec.workload?.kind ?? "StatefulSet", name: spec.workload?.name ?? "" };
  const configMaps = [spec.workerConfigMap?.name ?? `${workload.name}-config`];
  if (spec.jobs?.configMapKeyRef?.name) configMaps.push(spec.jobs.configMapKeyRef.name);
  return { workload, configMaps };
}

function sameWorkload(ref: PoolRefs, workload: { kind: string; name: string }): boolean {
  return ref.workload.kind === workload.kind && ref.workload.name === workload.name;
}

function keyOf(obj: KubernetesObject): string {
  return `${obj.metadata?.namespace ?? ""}/${obj.metadata?.name ?? ""}`;
}

function wrap(kind: "StatefulSet", object: V1StatefulSet | undefined): Workload | undefined;
function wrap(kind: "Deployment", object: V1Deployment | undefined): Workload | undefined;
function wrap(kind: WorkloadKind, object: V1StatefulSet | V1Deployment | undefined): Workload | undefined {
  if (object === undefined) return undefined;
  return kind === "StatefulSet"
    ? { kind, object: object as V1StatefulSet }
    : { kind: "Deployment", object: object as V1Deployment };
}

function reasonOf(err: unknown): string {
  return err instanceof KubewiseError ? err.reason : "Unknown";
}
