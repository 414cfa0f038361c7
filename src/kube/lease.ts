/**
 * Leader election over a coordination.k8s.io/v1 Lease, the way client-go's leaderelection package
 * does it: candidates read the Lease, the holder renews it every retry period, and a candidate
 * takes it over only when the holder has not renewed it for a whole lease duration. Every write
 * carries the resourceVersion that was read, so two candidates racing for the same Lease cannot
 * both win: the API server refuses the second write with a Conflict.
 *
 * Expiry is measured on the candidate's own clock, from when it first saw the current record,
 * never by comparing the holder's renewTime with the local clock, so clock skew between machines
 * does not matter. The holder gives up (onStoppedLeading) once it has failed to renew for the
 * renew deadline, which is shorter than the lease duration, so it stops acting before anyone else
 * may start.
 */
import { V1MicroTime, type V1Lease } from "@kubernetes/client-node";
import { silentLogger, type Logger } from "../log.js";
import { KubeClient } from "./client.js";
import { KubeError, isNotFound, toKubeError } from "./errors.js";

/** LeaseRecord is the election state a Lease carries; times are milliseconds since the epoch. */
export interface LeaseRecord {
  /** holderIdentity is the current leader; "" when the lease was released. */
  holderIdentity: string;
  leaseDurationSeconds: number;
  acquireTimeMs?: number;
  renewTimeMs?: number;
  leaseTransitions: number;
  /** resourceVersion of the Lease the record was read from; an update must match it. */
  resourceVersion?: string;
}

/**
 * LeaseDecision is what a candidate does with the record it read: create the Lease, renew its
 * own hold, acquire an expired or released lease, or wait for the holder's lease to run out.
 */
export type LeaseDecision =
  | { action: "create"; record: LeaseRecord }
  | { action: "renew"; record: LeaseRecord }
  | { action: "acquire"; record: LeaseRecord }
  | { action: "wait"; holder: string; expiresInMs: number };

/** LeaseDecisionInput is everything decideLease looks at; it reads no clock of its own. */
export interface LeaseDecisionInput {
  /** current is the record read from the API server; undefined when there is no Lease. */
  current: LeaseRecord | undefined;
  /** observedAtMs is when this candidate first saw `current` unchanged (its own clock). */
  observedAtMs: number;
  nowMs: number;
  identity: string;
  leaseDurationMs: number;
}

/**
 * decideLease is the pure core of the election. A holder other than us keeps the lease while
 * observedAtMs + its leaseDurationSeconds is in the future; an empty holder (a released lease)
 * or an expired one may be acquired, which counts one more leaseTransition. Renewing keeps the
 * acquire time and the transition count.
 */
export function decideLease(input: LeaseDecisionInput): LeaseDecision {
  const { current, nowMs, identity } = input;
  const leaseDurationSeconds = Math.max(1, Math.ceil(input.leaseDurationMs / 1000));
  if (current === undefined) {
    return {
      action: "create",
      record: {
        holderIdentity: identity,
        leaseDurationSeconds,
        acquireTimeMs: nowMs,
        renewTimeMs: nowMs,
        leaseTransitions: 0,
      },
    };
  }
  if (current.holderIdentity === identity) {
    return {
      action: "renew",
      record: {
        ...current,
        leaseDurationSeconds,
        renewTimeMs: nowMs,
        acquireTimeMs: current.acquireTimeMs ?? nowMs,
      },
    };
  }
  const expiresAt = input.observedAtMs + current.leaseDurationSeconds * 1000;
  if (current.holderIdentity !== "" && expiresAt > nowMs) {
    return { action: "wait", holder: current.holderIdentity, expiresInMs: expiresAt - nowMs };
  }
  return {
    action: "acquire",
    record: {
      holderIdentity: identity,
      leaseDurationSeconds,
      acquireTimeMs: nowMs,
      renewTimeMs: nowMs,
      leaseTransitions: current.leaseTransitions + 1,
      resourceVersion: current.resourceVersion,
    },
  };
}

/**
 * releasedRecord is what a leader writes when it steps down: no holder and a one-second duration,
 * so the next candidate takes over at its next try instead of waiting out a whole lease.
 */
export function releasedRecord(current: LeaseRecord, nowMs: number): LeaseRecord {
  return {
    holderIdentity: "",
    leaseDurationSeconds: 1,
    acquireTimeMs: nowMs,
    renewTimeMs: nowMs,
    leaseTransitions: current.leaseTransitions,
    resourceVersion: current.resourceVersion,
  };
}

/**
 * LeaseStore reads and writes one Lease. update must fail with a KubeError of reason Conflict
 * when the Lease's resourceVersion is no longer record.resourceVersion.
 */
export interface LeaseStore {
  read(): Promise<LeaseRecord | undefined>;
  create(record: LeaseRecord): Promise<LeaseRecord>;
  update(record: LeaseRecord): Promise<LeaseRecord>;
}

/** kubeLeaseStore keeps the election record in the Lease namespace/name of the cluster. */
export function kubeLeaseStore(client: KubeClient, namespace: string, name: string): LeaseStore {
  const what = `lease ${namespace}/${name}`;
  let last: V1Lease | undefined;
  const body = (record: LeaseRecord): V1Lease => ({
    apiVersion: "coordination.k8s.io/v1",
    kind: "Lease",
    metadata: {
      ...(last?.metadata ?? {}),
      name,
      namespace,
      resourceVersion: record.resourceVersion,
    },
    spec: {
      holderIdentity: record.holderIdentity,
      leaseDurationSeconds: record.leaseDurationSeconds,
      leaseTransitions: record.leaseTransitions,
      acquireTime: microTime(record.acquireTimeMs),
      renewTime: microTime(record.renewTimeMs),
    },
  });
  const keep = (lease: V1Lease): LeaseRecord => {
    last = lease;
    return leaseRecordOf(lease);
  };
  return {
    async read() {
      try {
        return keep(await client.coordination.readNamespacedLease({ namespace, name }));
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw toKubeError(err, `read ${what}`);
      }
    },
    async create(record) {
      try {
        last = undefined;
        const created = await client.coordination.createNamespacedLease({
          namespace,
          body: body({ ...record, resourceVersion: undefined }),
        });
        return keep(created);
      } catch (err) {
        throw toKubeError(err, `create ${what}`);
      }
    },
    async update(record) {
      try {
        return keep(
          await client.coordination.replaceNamespacedLease({ namespace, name, body: body(record) }),
        );
      } catch (err) {
        throw toKubeError(err, `update ${what}`);
      }
    },
  };
}

/** leaseRecordOf reads the election record of a Lease (times as sent, MicroTime or RFC 3339). */
export function leaseRecordOf(lease: V1Lease): LeaseRecord {
  const spec = lease.spec ?? {};
  return {
    holderIdentity: spec.holderIdentity ?? "",
    leaseDurationSeconds: spec.leaseDurationSeconds ?? 0,
    acquireTimeMs: timeOf(spec.acquireTime),
    renewTimeMs: timeOf(spec.renewTime),
    leaseTransitions: spec.leaseTransitions ?? 0,
    resourceVersion: lease.metadata?.resourceVersion,
  };
}

// client-node declares MicroTime fields as Dates but hands back the wire string; accept both.
function timeOf(value: Date | string | undefined): number | undefined {
  if (value === undefined || value === null) return undefined;
  const ms = new Date(value).getTime();
  return Number.isNaN(ms) ? undefined : ms;
}

// The API server wants six fractional digits in a MicroTime; V1MicroTime serialises that way.
function microTime(ms: number | undefined): V1MicroTime | undefined {
  return ms === undefined ? undefined : new V1MicroTime(ms);
}

/** LeaderElectorOptions configure a LeaderElector; durations follow client-go's defaults. */
export interface LeaderElectorOptions {
  /** namespace and name of the Lease. */
  namespace: string;
  name: string;
  /** identity of this candidate, unique among candidates (e.g. the pod name). */
  identity: string;
  /** leaseDurationMs: how long others wait after the last renew they saw. @default 15000 */
  leaseDurationMs?: number;
  /** renewDeadlineMs: the leader steps down when it could not renew for this long. @default 10000 */
  renewDeadlineMs?: number;
  /** retryPeriodMs between tries to acquire or renew. @default 2000 */
  retryPeriodMs?: number;
  /** releaseOnStop empties the holder on stop() so a standby takes over at once. @default true */
  releaseOnStop?: boolean;
  /** now is the clock (milliseconds); injectable for tests. @default Date.now */
  now?: () => number;
  /** sleep waits between tries and ends early when the signal aborts; injectable for tests. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  log?: Logger;
  /** onStartedLeading is called when this candidate becomes the leader. */
  onStartedLeading?: () => void;
  /** onStoppedLeading is called when it stops being the leader (lost, deadline passed, stopped). */
  onStoppedLeading?: () => void;
  /** onNewLeader is called whenever the observed holder changes ("" when released). */
  onNewLeader?: (identity: string) => void;
}

/**
 * LeaderElector campaigns for a Lease until stop(): start() runs the loop in the background,
 * isLeader() says whether this candidate may act right now, and stop() releases the lease (by
 * default) before resolving. It survives API server outages: failed tries are logged and
 * retried; only the renew deadline decides when a leader stops leading.
 */
export class LeaderElector {
  readonly identity: string;
  private readonly store: LeaseStore;
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private readonly now: () => number;
  private readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  private readonly log: Logger;
  private leading = false;
  private lastRenewMs = 0;
  private observed: { record: LeaseRecord | undefined; atMs: number } | undefined;
  private holder: string | undefined;
  private abort: AbortController | undefined;
  private loop: Promise<void> | undefined;

  constructor(
    target: KubeClient | LeaseStore,
    private readonly options: LeaderElectorOptions,
  ) {
    this.identity = options.identity;
    this.store =
      target instanceof KubeClient ? kubeLeaseStore(target, options.namespace, options.name) : target;
    this.leaseDurationMs = options.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = options.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = options.retryPeriodMs ?? 2_000;
    if (!(this.retryPeriodMs < this.renewDeadlineMs && this.renewDeadlineMs < this.leaseDurationMs)) {
      throw new KubeError(
        "Invalid",
        `leader election needs retryPeriod < renewDeadline < leaseDuration (got ${this.retryPeriodMs} ms, ${this.renewDeadlineMs} ms, ${this.leaseDurationMs} ms)`,
      );
    }
    if (options.identity === "") throw new KubeError("Invalid", "leader election needs a non-empty identity");
    this.now = options.now ?? Date.now;
    this.sleep = options.sleep ?? abortableSleep;
    this.log = (options.log ?? silentLogger).child({
      lease: `${options.namespace}/${options.name}`,
      identity: options.identity,
    });
  }

  /** isLeader is true while this candidate holds the lease and renewed it within the renew deadline. */
  isLeader(): boolean {
    return this.leading && this.now() - this.lastRenewMs < this.renewDeadlineMs;
  }

  /** leader is the holder last seen in the Lease ("" when released, undefined before the first read). */
  leader(): string | undefined {
    return this.holder;
  }

  /** start campaigns in the background until stop(). */
  start(): void {
    if (this.loop) return;
    const abort = new AbortController();
    this.abort = abort;
    this.loop = this.run(abort.signal);
  }

  /** stop ends the campaign; a leader steps down and, unless releaseOnStop is false, releases the lease. */
  async stop(): Promise<void> {
    const loop = this.loop;
    if (!loop) return;
    this.abort?.abort();
    await loop;
    this.loop = undefined;
    if (this.leading && this.options.releaseOnStop !== false) await this.release();
    this.setLeading(false);
  }

  /**
   * tryOnce makes one attempt to acquire or renew and updates the leading state; the loop calls
   * it every retry period. It returns isLeader() afterwards. Exposed so tests can drive the
   * election step by step with an injected clock.
   */
  async tryOnce(): Promise<boolean> {
    const startedMs = this.now();
    const outcome = await this.tryAcquireOrRenew(startedMs);
    if (outcome === "held") {
      // The lease runs from when the request was sent at the latest, so count from then.
      this.lastRenewMs = startedMs;
      this.setLeading(true);
    } else if (outcome === "other-holder") {
      this.setLeading(false);
    } else if (this.leading && this.now() - this.lastRenewMs >= this.renewDeadlineMs) {
      this.log.warn({ deadlineMs: this.renewDeadlineMs }, "could not renew the lease in time, stepping down");
      this.setLeading(false);
    }
    return this.isLeader();
  }

  private async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await this.tryOnce();
      if (signal.aborted) break;
      // Candidates spread their tries (client-go's jitter 1.2) so they do not all hit the API at once.
      const wait = this.leading ? this.retryPeriodMs : this.retryPeriodMs * (1 + 0.2 * Math.random());
      await this.sleep(wait, signal);
    }
  }

  private async tryAcquireOrRenew(nowMs: number): Promise<"held" | "other-holder" | "failed"> {
    try {
      const current = await this.store.read();
      this.observe(current, nowMs);
      const decision = decideLease({
        current,
        observedAtMs: this.observed?.atMs ?? nowMs,
        nowMs,
        identity: this.identity,
        leaseDurationMs: this.leaseDurationMs,
      });
      if (decision.action === "wait") return "other-holder";
      const written =
        decision.action === "create"
          ? await this.store.create(decision.record)
          : await this.store.update(decision.record);
      this.observe(written, nowMs);
      if (decision.action !== "renew")
        this.log.info({ transitions: written.leaseTransitions }, "acquired the lease");
      return "held";
    } catch (err) {
      const error = toKubeError(err, "leader election");
      // A Conflict only means another candidate wrote first; the next read shows who.
      const level = error.reason === "Conflict" || error.reason === "AlreadyExists" ? "debug" : "warn";
      this.log[level]({ err: error.message, reason: error.reason }, "lease try failed");
      return "failed";
    }
  }

  private observe(record: LeaseRecord | undefined, nowMs: number): void {
    if (this.observed === undefined || !sameRecord(this.observed.record, record)) {
      this.observed = { record, atMs: nowMs };
    }
    const holder = record?.holderIdentity ?? "";
    if (holder !== this.holder) {
      this.holder = holder;
      if (holder !== "") this.log.info({ holder }, "new leader observed");
      this.options.onNewLeader?.(holder);
    }
  }

  private async release(): Promise<void> {
    try {
      const current = await this.store.read();
      if (current?.holderIdentity !== this.identity) return;
      const written = await this.store.update(releasedRecord(current, this.now()));
      this.observe(written, this.now());
      this.log.info("released the lease");
    } catch (err) {
      this.log.warn({ err: toKubeError(err, "release lease").message }, "could not release the lease");
    }
  }

  private setLeading(leading: boolean): void {
    if (leading === this.leading) return;
    this.leading = leading;
    if (leading) {
      this.log.info("started leading");
      this.options.onStartedLeading?.();
    } else {
      this.log.info("stopped leading");
      this.options.onStoppedLeading?.();
    }
  }
}

function sameRecord(a: LeaseRecord | undefined, b: LeaseRecord | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  if (a.resourceVersion !== undefined && b.resourceVersion !== undefined) {
    return a.resourceVersion === b.resourceVersion;
  }
  return (
    a.holderIdentity === b.holderIdentity &&
    a.renewTimeMs === b.renewTimeMs &&
    a.leaseTransitions === b.leaseTransitions
  );
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
