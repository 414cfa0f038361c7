/**
 * The reporter sends the outbox's pending reports to OPTUNE_URL, one at a time, and records each
 * outcome in the outbox before moving on:
 * - 2xx: delivered; then the markReported hook (the pod annotation) runs, and is retried until it
 *   succeeds without sending the report again;
 * - connection errors, timeouts, 5xx, 408, 429, 3xx and 401, 403, 404: retried with exponential
 *   backoff and jitter, capped (30 s by default), honouring Retry-After; each failure is logged at
 *   warn with the status and that the report is kept. A missing or expired token (401, 403), a
 *   wrong OPTUNE_ACCOUNT or OPTUNE_URL (404, a redirect) is a setup problem, fixed in the
 *   configuration or on the endpoint's side: the reports wait for the fix instead of being dropped;
 * - other 4xx (400, 409, 413, 422 ...): the payload itself is refused, and sending it again cannot
 *   help: rejected for good, logged at error, kept in the outbox for inspection.
 * A failure stops the pass (the outage is usually the endpoint's, so the queue waits rather than
 * hammering it with every report); outbox.pending() puts the report that just failed behind the
 * others, so one report that keeps failing (a 404 for one app id) is not retried ahead of them.
 * Each request carries the pod uid twice, in `param.idempotency_key` and an `Idempotency-Key`
 * header, so a receiver can drop the duplicate that a lost response makes unavoidable.
 */
import type { Logger } from "../log.js";
import { silentLogger } from "../log.js";
import type { ReportTarget } from "./config.js";
import { measurementEvent } from "./measurement.js";
import type { Outbox, OutboxEntry } from "./outbox.js";

/** BackoffPolicy shapes the retry delays: initialMs * factor^(n-1), capped at maxMs, with jitter. */

/** MARK_CONCURRENCY bounds the markReported hooks running beside the sending. */
const MARK_CONCURRENCY = 8;
export interface BackoffPolicy {
  /** initialMs is the base delay after the first failure. @default 1000 */
  initialMs: number;
  /** maxMs caps the base delay. @default 30000 */
  maxMs: number;
  /** factor multiplies the base delay after each further failure. @default 2 */
  factor: number;
}

/** DEFAULT_BACKOFF is 1 s, 2 s, 4 s ... up to 30 s. */
export const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 1000, maxMs: 30_000, factor: 2 };

/** MAX_RETRY_AFTER_MS bounds a server's Retry-After, so a bad header cannot park the queue for days. */
export const MAX_RETRY_AFTER_MS = 5 * 60_000;

/**
 * backoffDelay is the wait after the n-th consecutive failure (n >= 1): the capped exponential
 * base, half of it fixed and half random ("equal jitter"), so delays keep growing while watchers
 * restarted together do not retry in lockstep. `random` returns a number in [0, 1).
 */
export function backoffDelay(failures: number, policy: BackoffPolicy, random: () => number): number {
  const exponent = Math.max(0, failures - 1);
  const base = Math.min(policy.maxMs, policy.initialMs * policy.factor ** exponent);
  return Math.round(base / 2 + random() * (base / 2));
}

/** reportUrl fills OPTUNE_URL's {acct} and {app_id} (both URL-encoded; the app id may be anything). */
export function reportUrl(target: ReportTarget, appId: string): string {
  return target.urlTemplate
    .replaceAll("{acct}", encodeURIComponent(target.account))
    .replaceAll("{app_id}", encodeURIComponent(appId));
}

/** DeliveryOutcome is how one attempt ended. */
export type DeliveryOutcome =
  | { kind: "delivered"; status: number }
  | { kind: "retry"; error: string; status: number | undefined; retryAfterMs: number | undefined }
  | { kind: "rejected"; error: string; status: number };

/**
 * RETRIED_4XX are the client errors that say nothing about the report itself: the token (401,
 * 403), the URL or account (404), or the endpoint's load (408, 429). They are fixed on the other
 * side or in the configuration, so the report is kept and retried.
 */
export const RETRIED_4XX: readonly number[] = [401, 403, 404, 408, 429];

/**
 * classifyStatus sorts an HTTP status: 2xx delivered; 3xx, 5xx and RETRIED_4XX retry; any other
 * (a payload problem: 400, 409, 413, 422 ...) rejected.
 */
export function classifyStatus(status: number): DeliveryOutcome["kind"] {
  if (status >= 200 && status < 300) return "delivered";
  if (status >= 400 && status < 500 && !RETRIED_4XX.includes(status)) return "rejected";
  return "retry";
}

/** parseRetryAfter reads a Retry-After header (seconds or an HTTP date) as milliseconds from now. */
export function parseRetryAfter(value: string | null, now: number): number | undefined {
  if (value === null || value.trim() === "") return undefined;
  const seconds = Number(value);
  const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(value) - now;
  if (!Number.isFinite(ms)) return undefined;
  return Math.min(MAX_RETRY_AFTER_MS, Math.max(0, ms));
}

/** MarkReported is the hook run after a 2xx, e.g. to annotate the pod; it may throw to be retried. */
export type MarkReported = (entry: OutboxEntry) => Promise<void>;

/** Sleep waits `ms` or until `signal` aborts, whichever is first; it never rejects. */
export type Sleep = (ms: number, signal: AbortSignal) => Promise<void>;

/** ReporterOptions configure a Reporter; everything but outbox and target has a default. */
export interface ReporterOptions {
  outbox: Outbox;
  target: ReportTarget;
  log?: Logger;
  /** markReported runs after each 2xx. @default nothing (the report counts as marked at once) */
  markReported?: MarkReported;
  backoff?: Partial<BackoffPolicy>;
  /** requestTimeoutMs bounds one POST. @default 10000 (the original's timeout) */
  requestTimeoutMs?: number;
  /** idleMs is how long an idle loop sleeps before looking again (a notify wakes it sooner). @default 60000 */
  idleMs?: number;
  /** retentionMs is how long finished entries are kept before pruning. @default 7 days */
  retentionMs?: number;
  /** userAgent is sent as User-Agent. @default "kubewise" */
  userAgent?: string;
  fetch?: typeof globalThis.fetch;
  now?: () => number;
  sleep?: Sleep;
  random?: () => number;
}

/** ReporterStatus is a snapshot for logs and tests. */
export interface ReporterStatus {
  consecutiveFailures: number;
  /** nextAttemptAt is when the queue may be tried again; 0 when it is not backing off. */
  nextAttemptAt: number;
  delivered: number;
  rejected: number;
  retried: number;
}

/** defaultSleep is a timer that resolves early, without error, when the signal aborts. */
export const defaultSleep: Sleep = (ms, signal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });

const PRUNE_EVERY_MS = 60 * 60_000;

/**
 * Reporter delivers the outbox; see the top of this file. `start()` runs the loop in the
 * background, `notify()` wakes it after an enqueue, `stop()` lets an in-flight request finish
 * (so its outcome is recorded, not lost to a resend) and resolves when the loop has ended.
 * `runOnce()` is one pass, for callers and tests that drive it themselves.
 */
export class Reporter {
  private readonly outbox: Outbox;
  private readonly target: ReportTarget;
  private readonly log: Logger;
  private readonly markReported: MarkReported | undefined;
  private readonly marking = new Set<Promise<void>>();
  private readonly policy: BackoffPolicy;
  private readonly requestTimeoutMs: number;
  private readonly idleMs: number;
  private readonly retentionMs: number;
  private readonly userAgent: string;
  private readonly fetch: typeof globalThis.fetch;
  private readonly now: () => number;
  private readonly sleep: Sleep;
  private readonly random: () => number;

  private failures = 0;
  private blockedUntil = 0;
  private markFailures = 0;
  private markBlockedUntil = 0;
  private lastPruneAt = 0;
  private counters = { delivered: 0, rejected: 0, retried: 0 };
  private stopping = false;
  private wake = new AbortController();
  private loop: Promise<void> | undefined;

  constructor(options: ReporterOptions) {
    this.outbox = options.outbox;
    this.target = options.target;
    this.log = options.log ?? silentLogger;
    this.markReported = options.markReported;
    this.policy = { ...DEFAULT_BACKOFF, ...options.backoff };
    this.requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
    this.idleMs = options.idleMs ?? 60_000;
    this.retentionMs = options.retentionMs ?? 7 * 24 * 3600_000;
    this.userAgent = options.userAgent ?? "kubewise";
    this.fetch = options.fetch ?? globalThis.fetch;
    this.now = options.now ?? Date.now;
    this.sleep = options.sleep ?? defaultSleep;
    this.random = options.random ?? Math.random;
  }

  /** start runs the delivery loop until stop(); pending reports from a previous run go first. */
  start(): void {
    if (this.loop !== undefined) return;
    this.stopping = false;
    const pending = this.outbox.counts().pending;
    if (pending > 0) this.log.info({ pending }, "resending reports left from a previous run");
    this.loop = this.run();
  }

  /** stop ends the loop after the request in flight, if any, and resolves when it has. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wake.abort();
    await this.loop;
    this.loop = undefined;
  }

  /** notify wakes the loop to look at the outbox now; backoff still applies. */
  notify(): void {
    this.wake.abort();
  }

  /** status returns the failure streak, the backoff deadline and the counters of this process. */
  status(): ReporterStatus {
    return {
      consecutiveFailures: this.failures,
      nextAttemptAt: this.blockedUntil,
      ...this.counters,
    };
  }

  /**
   * runOnce makes one pass: retries due markReported hooks, then sends due pending reports in
   * order until one needs a retry. It returns how long to wait before the next pass is useful,
   * or undefined when nothing is waiting.
   */
  async runOnce(): Promise<number | undefined> {
    await this.markDue();
    let sendWait: number | undefined;
    try {
      sendWait = await this.sendDue();
    } finally {
      await Promise.all(this.marking);
    }
    this.pruneIfDue();
    // Asked after sending: a delivery in this pass may have left a hook to retry.
    const markWait =
      this.outbox.unmarked().length > 0 ? Math.max(0, this.markBlockedUntil - this.now()) : undefined;
    if (markWait === undefined) return sendWait;
    return sendWait === undefined ? markWait : Math.min(markWait, sendWait);
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      this.wake = new AbortController();
      let wait: number | undefined;
      try {
        wait = await this.runOnce();
      } catch (err) {
        // The outbox itself failed (disk full, file removed): keep trying, loudly.
        this.failures++;
        wait = backoffDelay(this.failures, this.policy, this.random);
        this.log.error({ err, retry_in_ms: wait }, "outbox error; retrying");
      }
      if (this.stopping) break;
      await this.sleep(wait ?? this.idleMs, this.wake.signal);
    }
  }

  private async sendDue(): Promise<number | undefined> {
    const now = this.now();
    if (now < this.blockedUntil) return this.blockedUntil - now;
    for (const entry of this.outbox.pending()) {
      if (this.stopping) return undefined;
      const outcome = await this.deliver(entry);
      if (outcome.kind === "retry") return this.scheduleRetry(entry, outcome);
      if (outcome.kind === "rejected") {
        this.outbox.markRejected(entry.uid, outcome.error);
        this.counters.rejected++;
        this.log.error(
          {
            uid: entry.uid,
            pod: entry.pod,
            namespace: entry.namespace,
            app_id: entry.appId,
            status: outcome.status,
            error: outcome.error,
          },
          `report rejected by the endpoint (HTTP ${outcome.status}); it will not be retried`,
        );
        continue;
      }
      this.outbox.markDelivered(entry.uid);
      this.failures = 0;
      this.blockedUntil = 0;
      this.counters.delivered++;
      this.log.info(
        {
          uid: entry.uid,
          pod: entry.pod,
          namespace: entry.namespace,
          app_id: entry.appId,
          attempts: entry.attempts + 1,
        },
        "report delivered",
      );
      await this.launchMark(entry);
    }
    return undefined;
  }

  /**
   * launchMark runs the markReported hook beside the sending, at most MARK_CONCURRENCY at once:
   * an annotation is an API round trip, and waiting for each one before the next report halves
   * the rate at which a backlog drains after an outage.
   */
  private async launchMark(entry: OutboxEntry): Promise<void> {
    while (this.marking.size >= MARK_CONCURRENCY) await Promise.race(this.marking);
    const job: Promise<void> = this.mark(entry).then(
      () => void this.marking.delete(job),
      () => void this.marking.delete(job),
    );
    this.marking.add(job);
  }

  private scheduleRetry(entry: OutboxEntry, outcome: Extract<DeliveryOutcome, { kind: "retry" }>): number {
    this.outbox.recordFailure(entry.uid, outcome.error);
    this.failures++;
    this.counters.retried++;
    const wait = Math.max(backoffDelay(this.failures, this.policy, this.random), outcome.retryAfterMs ?? 0);
    this.blockedUntil = this.now() + wait;
    this.log.warn(
      {
        uid: entry.uid,
        pod: entry.pod,
        namespace: entry.namespace,
        app_id: entry.appId,
        status: outcome.status,
        error: outcome.error,
        failures: this.failures,
        retry_in_ms: wait,
      },
      `report delivery failed (${outcome.status === undefined ? outcome.error : `HTTP ${outcome.status}`}); ` +
        "the report is kept in the outbox and will be retried",
    );
    return wait;
  }

  private async deliver(entry: OutboxEntry): Promise<DeliveryOutcome> {
    const headers: Record<string, string> = {
      "content-type": "application/json",
      "user-agent": this.userAgent,
      "idempotency-key": entry.uid,
    };
    if (this.target.token !== undefined) {
      headers.authorization = /^Bearer /i.test(this.target.token)
        ? this.target.token
        : `Bearer ${this.target.token}`;
    }
    let response: Response;
    try {
      response = await this.fetch(reportUrl(this.target, entry.appId), {
        method: "POST",
        headers,
        body: JSON.stringify(measurementEvent(entry.param)),
        redirect: "manual",
        signal: AbortSignal.timeout(this.requestTimeoutMs),
      });
    } catch (err) {
      return { kind: "retry", error: describeFetchError(err), status: undefined, retryAfterMs: undefined };
    }
    const text = await response.text().catch(() => "");
    const kind = classifyStatus(response.status);
    if (kind === "delivered") return { kind, status: response.status };
    const error = describeResponse(response, text);
    const status = response.status;
    if (kind === "rejected") return { kind, error, status };
    const retryAfterMs = parseRetryAfter(response.headers.get("retry-after"), this.now());
    return { kind, error, status, retryAfterMs };
  }

  private async markDue(): Promise<void> {
    if (this.now() < this.markBlockedUntil) return;
    for (const entry of this.outbox.unmarked()) {
      if (this.stopping || !(await this.mark(entry))) return;
    }
  }

  // mark runs the hook for a delivered report; a failure is retried later by markDue without
  // sending the report again (it is delivered; only the annotation is missing).
  private async mark(entry: OutboxEntry): Promise<boolean> {
    try {
      if (this.markReported !== undefined) await this.markReported(entry);
      this.outbox.markMarked(entry.uid);
      this.markFailures = 0;
      return true;
    } catch (err) {
      this.markFailures++;
      const wait = backoffDelay(this.markFailures, this.policy, this.random);
      this.markBlockedUntil = this.now() + wait;
      this.log.warn(
        { uid: entry.uid, pod: entry.pod, err, retry_in_ms: wait },
        "marking a delivered report failed; will retry",
      );
      return false;
    }
  }

  private pruneIfDue(): void {
    const now = this.now();
    if (now - this.lastPruneAt < PRUNE_EVERY_MS) return;
    this.lastPruneAt = now;
    const pruned = this.outbox.prune(now - this.retentionMs);
    if (pruned > 0) this.log.info({ pruned }, "pruned old outbox entries");
  }
}

function describeResponse(response: Response, body: string): string {
  const location = response.headers.get("location");
  const where = location === null ? "" : ` to ${location}`;
  const snippet = body.trim().slice(0, 200);
  const text = snippet === "" ? "" : `: ${snippet}`;
  const status = response.status;
  if (status >= 300 && status < 400) {
    return `HTTP ${status} redirect${where}; set OPTUNE_URL to the final URL`;
  }
  const advice = STATUS_ADVICE[status];
  return `HTTP ${status}${text}${advice === undefined ? "" : `; ${advice}`}`;
}

// STATUS_ADVICE names the setting behind a status that is a setup problem rather than the payload's.
const STATUS_ADVICE: Partial<Record<number, string>> = {
  401: "check OPTUNE_AUTH_TOKEN (missing or expired?)",
  403: "check OPTUNE_AUTH_TOKEN and OPTUNE_ACCOUNT",
  404: "check OPTUNE_URL and OPTUNE_ACCOUNT (and the app id in the URL)",
};

function describeFetchError(err: unknown): string {
  if (err instanceof Error && err.name === "TimeoutError") return "request timed out";
  const cause =
    err instanceof Error ? (err.cause as { code?: string; message?: string } | undefined) : undefined;
  const detail = cause?.code ?? cause?.message;
  const message = err instanceof Error ? err.message : String(err);
  return detail === undefined ? message : `${message} (${detail})`;
}
