/**
 * The work queue between watch events and the reconciler, with controller-runtime's contract: a
 * key is queued at most once however many events name it, is never reconciled by two workers at
 * once (an event during its reconcile queues it again for afterwards), is retried with
 * exponential backoff when the reconcile throws, is not retried when it throws a TerminalError,
 * and is looked at again after `requeueAfterMs` when the reconcile asks for that.
 */
import { KubewiseError } from "../errors.js";
import { silentLogger, type Logger } from "../log.js";

/** ReconcileResult is what a reconcile returns: nothing, or when to look again without an event. */
export interface ReconcileResult {
  requeueAfterMs?: number;
}

/**
 * TerminalError wraps a failure that retrying cannot fix (a bad spec, a missing object that an
 * event will announce): the queue logs it and forgets the key until the next event.
 */
export class TerminalError extends KubewiseError {
  constructor(cause: KubewiseError) {
    super(cause.reason, cause.message, { cause });
  }
}

/** ReconcileOutcome is how one reconcile ended, for metrics. */
export type ReconcileOutcome = "success" | "error" | "terminal";

/** WorkQueueOptions configure a WorkQueue. */
export interface WorkQueueOptions {
  reconcile: (key: string) => Promise<ReconcileResult>;
  /** concurrency: how many different keys are reconciled at once. @default 1 */
  concurrency?: number;
  /** backoff after consecutive failures of one key: initialMs doubling up to maxMs. @default 250 ms .. 60 s */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** onOutcome is told how each reconcile ended and how long it took. */
  onOutcome?: (key: string, outcome: ReconcileOutcome, durationMs: number, err?: unknown) => void;
  log?: Logger;
}

/** WorkQueue feeds keys to a reconcile function; see the file comment for the contract. */
export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly queued = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private readonly inflight = new Set<Promise<void>>();
  private running = false;
  private readonly log: Logger;

  constructor(private readonly options: WorkQueueOptions) {
    this.log = options.log ?? silentLogger;
  }

  /** start begins handing keys to the reconcile function; keys added while stopped are dropped. */
  start(): void {
    this.running = true;
    this.pump();
  }

  /**
   * stop drops every queued and delayed key and resolves once the reconciles in flight are done.
   * The queue can be started again; it then starts empty.
   */
  async stop(): Promise<void> {
    this.running = false;
    this.queue.length = 0;
    this.queued.clear();
    this.dirty.clear();
    this.failures.clear();
    for (const { timer } of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    await Promise.all([...this.inflight]);
  }

  /** add queues a key now (at most once; after its current reconcile if one is running). */
  add(key: string): void {
    if (!this.running) return;
    if (this.processing.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    this.queued.add(key);
    this.queue.push(key);
    this.pump();
  }

  /** addAfter queues a key after delayMs; an earlier pending delay for the key wins. */
  addAfter(key: string, delayMs: number): void {
    if (!this.running) return;
    const at = Date.now() + delayMs;
    const existing = this.timers.get(key);
    if (existing && existing.at <= at) return;
    if (existing) clearTimeout(existing.timer);
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, delayMs);
    timer.unref();
    this.timers.set(key, { at, timer });
  }

  /** length is the number of keys waiting (not counting delayed ones or those in flight). */
  get length(): number {
    return this.queue.length;
  }

  /** delayed is the number of keys waiting for a backoff or a requeueAfterMs. */
  get delayed(): number {
    return this.timers.size;
  }

  private pump(): void {
    const concurrency = this.options.concurrency ?? 1;
    while (this.running && this.processing.size < concurrency && this.queue.length > 0) {
      const key = this.queue.shift() as string;
      this.queued.delete(key);
      this.processing.add(key);
      const run = this.process(key).finally(() => {
        this.inflight.delete(run);
        this.processing.delete(key);
        if (this.dirty.delete(key)) this.add(key);
        this.pump();
      });
      this.inflight.add(run);
    }
  }

  private async process(key: string): Promise<void> {
    const started = Date.now();
    try {
      const result = await this.options.reconcile(key);
      this.failures.delete(key);
      this.options.onOutcome?.(key, "success", Date.now() - started);
      if (result.requeueAfterMs !== undefined && result.requeueAfterMs > 0) {
        this.addAfter(key, result.requeueAfterMs);
      }
    } catch (err) {
      const durationMs = Date.now() - started;
      if (err instanceof TerminalError) {
        this.failures.delete(key);
        this.options.onOutcome?.(key, "terminal", durationMs, err);
        this.log.info({ key, reason: err.reason, err: err.message }, "reconcile failed, not retrying");
        return;
      }
      const failures = (this.failures.get(key) ?? 0) + 1;
      this.failures.set(key, failures);
      const delay = Math.min(
        (this.options.initialBackoffMs ?? 250) * 2 ** (failures - 1),
        this.options.maxBackoffMs ?? 60_000,
      );
      this.options.onOutcome?.(key, "error", durationMs, err);
      this.log.warn(
        { key, err: err instanceof Error ? err.message : String(err), failures, retryInMs: delay },
        "reconcile failed, will retry",
      );
      this.addAfter(key, delay);
    }
  }
}
