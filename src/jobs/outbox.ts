/**
 * The outbox: every report is written here before it is sent, and stays until it is delivered,
 * so a crash, a restart or an endpoint outage loses nothing; and because a pod's uid is the key,
 * a report is never added, or sent, twice.
 *
 * Why SQLite (through src/sqlite.ts) rather than an append-only JSON-lines file: the outbox
 * needs keyed updates (pending -> delivered -> marked), a uniqueness check that holds across
 * crashes, and pruning. A JSON-lines file would need a replay to rebuild its state, its own fsync and
 * torn-last-line handling, and a compaction with an atomic rename; SQLite gives atomic,
 * fsync'ed commits (WAL with synchronous=FULL), a primary key and DELETE for free, and
 * both drivers' calls are synchronous, so an `enqueue` has reached the disk when it returns.
 * The file is opened in exclusive locking mode, so two watchers cannot share one outbox.
 */
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { openDatabase, sqliteErrorCode, type SqlDatabase } from "../sqlite.js";
import { JobsError } from "./errors.js";
import type { MeasurementPayload } from "./measurement.js";

/**
 * OutboxState is where a report is: `pending` (not yet accepted), `delivered` (the endpoint
 * answered 2xx) or `rejected` (the endpoint refused the payload for good, e.g. 400 or 422).
 */
export type OutboxState = "pending" | "delivered" | "rejected";

/** NewReport is what the watcher hands the outbox for one finished job pod. */
export interface NewReport {
  /** uid is the pod uid: the outbox key and the report's idempotency key. */
  uid: string;
  appId: string;
  namespace: string;
  pod: string;
  param: MeasurementPayload;
}

/** OutboxEntry is a report with its delivery record. Times are epoch milliseconds. */
export interface OutboxEntry extends NewReport {
  state: OutboxState;
  attempts: number;
  lastError: string | undefined;
  enqueuedAt: number;
  lastAttemptAt: number | undefined;
  deliveredAt: number | undefined;
  /** markedAt is when the markReported hook (the pod annotation) succeeded after delivery. */
  markedAt: number | undefined;
}

/** EnqueueResult says whether a report was added, or what the outbox already knows of its uid. */
export type EnqueueResult = { added: true } | { added: false; existing: OutboxEntry };

/** OutboxOptions are the outbox's injectable parts. */
export interface OutboxOptions {
  /** now is the clock. @default Date.now */
  now?: () => number;
  /** busyTimeoutMs is how long to wait for another process's lock before failing. @default 2000 */
  busyTimeoutMs?: number;
}

interface Row {
  uid: string;
  app_id: string;
  namespace: string;
  pod: string;
  param: string;
  state: OutboxState;
  attempts: number;
  last_error: string | null;
  enqueued_at: number;
  last_attempt_at: number | null;
  delivered_at: number | null;
  marked_at: number | null;
}

const SCHEMA_VERSION = 1;

const schema = `
CREATE TABLE IF NOT EXISTS reports (
  uid TEXT PRIMARY KEY,
  app_id TEXT NOT NULL,
  namespace TEXT NOT NULL,
  pod TEXT NOT NULL,
  param TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'rejected')),
  attempts INTEGER NOT NULL DEFAULT 0,
  last_error TEXT,
  enqueued_at INTEGER NOT NULL,
  last_attempt_at INTEGER,
  delivered_at INTEGER,
  marked_at INTEGER
) STRICT;
CREATE INDEX IF NOT EXISTS reports_state ON reports (state, enqueued_at);
`;

/** Outbox is the durable queue of reports; see the top of this file. */
export class Outbox {
  readonly file: string;
  private readonly db: SqlDatabase;
  private readonly now: () => number;

  private constructor(file: string, db: SqlDatabase, now: () => number) {
    this.file = file;
    this.db = db;
    this.now = now;
  }

  /**
   * open opens (creating it and its folder if needed) the outbox at `file`. It throws a
   * JobsError: `outbox-locked` when another process has it open, `outbox` when it cannot be
   * opened or is not an outbox.
   */
  static open(file: string, options: OutboxOptions = {}): Outbox {
    let db: SqlDatabase | undefined;
    try {
      if (file !== ":memory:") mkdirSync(dirname(file), { recursive: true });
      db = openDatabase(file, { busyTimeoutMs: options.busyTimeoutMs ?? 2000 });
      // Exclusive locking before WAL: no shared-memory file, and the lock is held for the life of
      // the connection, so a second watcher on the same file fails here instead of interleaving.
      db.exec("PRAGMA locking_mode = EXCLUSIVE");
      db.exec("PRAGMA journal_mode = WAL");
      // FULL: every commit is fsync'ed, so an enqueue that returned survives a power cut.
      db.exec("PRAGMA synchronous = FULL");
      migrate(db, file);
      return new Outbox(file, db, options.now ?? Date.now);
    } catch (err) {
      db?.close();
      if (err instanceof JobsError) throw err;
      throw openError(file, err);
    }
  }

  /**
   * enqueue stores a new report as pending and returns `{added: true}`; if the uid is already
   * known, in any state, it changes nothing and returns the existing entry, which is how a pod
   * is never reported twice.
   */
  enqueue(report: NewReport): EnqueueResult {
    const info = this.db
      .prepare(
        `INSERT INTO reports (uid, app_id, namespace, pod, param, state, enqueued_at)
         VALUES (?, ?, ?, ?, ?, 'pending', ?) ON CONFLICT (uid) DO NOTHING`,
      )
      .run(report.uid, report.appId, report.namespace, report.pod, JSON.stringify(report.param), this.now());
    if (info.changes === 1) return { added: true };
    const existing = this.get(report.uid);
    if (existing === undefined)
      throw new JobsError("outbox", `outbox ${this.file}: report ${report.uid} vanished`);
    return { added: false, existing };
  }

  /** get returns the entry for a uid, or undefined. */
  get(uid: string): OutboxEntry | undefined {
    const row = this.db.prepare("SELECT * FROM reports WHERE uid = ?").get<Row>(uid);
    return row === undefined ? undefined : toEntry(row);
  }

  /**
   * pending lists the reports still to send, least recently tried first (never-tried ones in
   * the order they were added), so one report that keeps failing does not hold up the others.
   */
  pending(): OutboxEntry[] {
    return this.db
      .prepare(
        `SELECT * FROM reports WHERE state = 'pending'
         ORDER BY coalesce(last_attempt_at, 0), enqueued_at, uid`,
      )
      .all<Row>()
      .map(toEntry);
  }

  /** unmarked lists delivered reports whose markReported hook has not yet succeeded. */
  unmarked(): OutboxEntry[] {
    return this.db
      .prepare(
        "SELECT * FROM reports WHERE state = 'delivered' AND marked_at IS NULL ORDER BY delivered_at, uid",
      )
      .all<Row>()
      .map(toEntry);
  }

  /** recordFailure counts a failed attempt that will be retried, keeping its error for `status`. */
  recordFailure(uid: string, error: string): void {
    this.db
      .prepare(
        `UPDATE reports SET attempts = attempts + 1, last_attempt_at = ?, last_error = ?
         WHERE uid = ? AND state = 'pending'`,
      )
      .run(this.now(), error, uid);
  }

  /** markDelivered records a 2xx. Only a pending report can become delivered. */
  markDelivered(uid: string): void {
    const now = this.now();
    this.db
      .prepare(
        `UPDATE reports SET state = 'delivered', attempts = attempts + 1, last_attempt_at = ?,
         delivered_at = ?, last_error = NULL WHERE uid = ? AND state = 'pending'`,
      )
      .run(now, now, uid);
  }

  /** markRejected records a permanent refusal; the report is kept for inspection, never resent. */
  markRejected(uid: string, error: string): void {
    this.db
      .prepare(
        `UPDATE reports SET state = 'rejected', attempts = attempts + 1, last_attempt_at = ?,
         last_error = ? WHERE uid = ? AND state = 'pending'`,
      )
      .run(this.now(), error, uid);
  }

  /** markMarked records that the markReported hook succeeded for a delivered report. */
  markMarked(uid: string): void {
    this.db
      .prepare("UPDATE reports SET marked_at = ? WHERE uid = ? AND state = 'delivered'")
      .run(this.now(), uid);
  }

  /**
   * prune deletes finished entries (delivered and marked, or rejected) last touched before
   * `before` and returns how many. Pending and unmarked entries are never pruned. Once an entry
   * is pruned the pod's annotation is what keeps it from being reported again.
   */
  prune(before: number): number {
    return this.db
      .prepare(
        `DELETE FROM reports WHERE (state = 'delivered' AND marked_at IS NOT NULL AND marked_at < ?)
         OR (state = 'rejected' AND last_attempt_at < ?)`,
      )
      .run(before, before).changes;
  }

  /** counts returns how many entries are in each state. */
  counts(): Record<OutboxState, number> {
    const out: Record<OutboxState, number> = { pending: 0, delivered: 0, rejected: 0 };
    const rows = this.db
      .prepare("SELECT state, count(*) AS n FROM reports GROUP BY state")
      .all<{ state: OutboxState; n: number }>();
    for (const row of rows) out[row.state] = row.n;
    return out;
  }

  /** close releases the file and its lock. */
  close(): void {
    if (this.db.open) this.db.close();
  }
}

function migrate(db: SqlDatabase, file: string): void {
  const version = Number(db.pragma("user_version"));
  if (version > SCHEMA_VERSION) {
    throw new JobsError(
      "outbox",
      `outbox ${file} was written by a newer kubewise (schema ${version}, this one knows ${SCHEMA_VERSION})`,
    );
  }
  db.immediate(() => {
    db.exec(schema);
    db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
  });
}

function openError(file: string, err: unknown): JobsError {
  const code = sqliteErrorCode(err);
  if (code === "SQLITE_BUSY" || code === "SQLITE_LOCKED") {
    return new JobsError(
      "outbox-locked",
      `outbox ${file} is in use by another process (is another "kubewise jobs watch" running?)`,
      { cause: err },
    );
  }
  const what = code === "SQLITE_NOTADB" ? "is not an outbox (not a SQLite file)" : "cannot be opened";
  return new JobsError("outbox", `outbox ${file} ${what}: ${(err as Error).message}`, { cause: err });
}

function toEntry(row: Row): OutboxEntry {
  return {
    uid: row.uid,
    appId: row.app_id,
    namespace: row.namespace,
    pod: row.pod,
    param: JSON.parse(row.param) as MeasurementPayload,
    state: row.state,
    attempts: row.attempts,
    lastError: row.last_error ?? undefined,
    enqueuedAt: row.enqueued_at,
    lastAttemptAt: row.last_attempt_at ?? undefined,
    deliveredAt: row.delivered_at ?? undefined,
    markedAt: row.marked_at ?? undefined,
  };
}
