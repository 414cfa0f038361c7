/**
 * The trial history, in SQLite. A trial stores what happened (settings tried, servo status,
 * measured metrics), not its score: scores are computed from the metrics with the current
 * objective, so a study resumed with a corrected objective re-scores its old trials instead of
 * trusting numbers computed by the old one.
 */
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { openDatabase, type SqlDatabase } from "../../sqlite.js";
import type { SettingValues } from "../protocol.js";
import { OptimizerError } from "./errors.js";

/** TrialStatus: `ok` measured; `rejected` the servo rejected the settings; `failed` adjust or measure failed. */
export type TrialStatus = "ok" | "rejected" | "failed";

/** Trial is one stored trial. Numbers start at 0 (the baseline). */
export interface Trial {
  number: number;
  values: SettingValues;
  status: TrialStatus;
  /** reason is the servo's reason word for a failure. */
  reason?: string;
  message?: string;
  metrics: Record<string, number>;
  startedAt: string;
  finishedAt: string;
}

/** Study is a stored study's header. */
export interface Study {
  name: string;
  createdAt: string;
  /** config is the optimizer section the study last ran with (for reports). */
  config: unknown;
  /** descriptor is the last DESCRIPTION's descriptor. */
  descriptor: unknown;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS studies (
  name TEXT PRIMARY KEY,
  created_at TEXT NOT NULL,
  config TEXT NOT NULL,
  descriptor TEXT
);
CREATE TABLE IF NOT EXISTS trials (
  study TEXT NOT NULL REFERENCES studies(name),
  number INTEGER NOT NULL,
  trial_values TEXT NOT NULL,
  status TEXT NOT NULL,
  reason TEXT,
  message TEXT,
  metrics TEXT NOT NULL,
  started_at TEXT NOT NULL,
  finished_at TEXT NOT NULL,
  PRIMARY KEY (study, number)
);
`;

interface TrialRow {
  number: number;
  trial_values: string;
  status: string;
  reason: string | null;
  message: string | null;
  metrics: string;
  started_at: string;
  finished_at: string;
}

interface StudyRow {
  name: string;
  created_at: string;
  config: string;
  descriptor: string | null;
}

/** TrialStore keeps studies and their trials in one SQLite file (":memory:" for tests). */
export class TrialStore {
  readonly path: string;
  private readonly db: SqlDatabase;

  private constructor(path: string, db: SqlDatabase) {
    this.path = path;
    this.db = db;
  }

  /**
   * open opens the database at `path`, creating it and its folder unless `mustExist` (readers
   * such as reports should not leave an empty database behind a typo).
   */
  static open(path: string, options: { mustExist?: boolean } = {}): TrialStore {
    try {
      const mustExist = options.mustExist === true;
      if (path !== ":memory:" && !mustExist) mkdirSync(dirname(path), { recursive: true });
      const db = openDatabase(path, { mustExist });
      try {
        // WAL lets `optimizer report` read while `optimizer serve` writes.
        if (path !== ":memory:") db.exec("PRAGMA journal_mode = WAL");
        db.exec("PRAGMA foreign_keys = ON");
        db.exec(SCHEMA);
      } catch (err) {
        db.close();
        throw err;
      }
      return new TrialStore(path, db);
    } catch (err) {
      throw new OptimizerError("store", `cannot open trial database ${path}: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }

  /** ensureStudy creates the study if it is new and records the config it runs with now. */
  ensureStudy(name: string, config: unknown, now: Date): Study {
    this.db
      .prepare(
        `INSERT INTO studies (name, created_at, config) VALUES (?, ?, ?)
         ON CONFLICT(name) DO UPDATE SET config = excluded.config`,
      )
      .run(name, now.toISOString(), JSON.stringify(config));
    return this.study(name) as Study;
  }

  /** study returns a study's header, or undefined. */
  study(name: string): Study | undefined {
    const row = this.db.prepare(`SELECT * FROM studies WHERE name = ?`).get<StudyRow>(name);
    if (!row) return undefined;
    return {
      name: row.name,
      createdAt: row.created_at,
      config: JSON.parse(row.config) as unknown,
      descriptor: row.descriptor === null ? undefined : (JSON.parse(row.descriptor) as unknown),
    };
  }

  /** studies lists the study names, oldest first. */
  studies(): string[] {
    return this.db
      .prepare(`SELECT name FROM studies ORDER BY created_at, name`)
      .all<{ name: string }>()
      .map((r) => r.name);
  }

  /** saveDescriptor records the latest descriptor of a study. */
  saveDescriptor(name: string, descriptor: unknown): void {
    this.db.prepare(`UPDATE studies SET descriptor = ? WHERE name = ?`).run(JSON.stringify(descriptor), name);
  }

  /** addTrial appends a trial; its number must be the next one, so two writers cannot both add trial n. */
  addTrial(study: string, trial: Trial): void {
    const next = this.trialCount(study);
    if (trial.number !== next) {
      throw new OptimizerError(
        "store",
        `study ${study}: trial ${trial.number} is out of order (next is ${next})`,
      );
    }
    this.db
      .prepare(
        `INSERT INTO trials (study, number, trial_values, status, reason, message, metrics, started_at, finished_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        study,
        trial.number,
        JSON.stringify(trial.values),
        trial.status,
        trial.reason ?? null,
        trial.message ?? null,
        JSON.stringify(trial.metrics),
        trial.startedAt,
        trial.finishedAt,
      );
  }

  /** trialCount is the number of trials of a study. */
  trialCount(study: string): number {
    return (
      this.db.prepare(`SELECT COUNT(*) AS n FROM trials WHERE study = ?`).get<{ n: number }>(study)?.n ?? 0
    );
  }

  /** trials returns a study's trials in order. */
  trials(study: string): Trial[] {
    const rows = this.db.prepare(`SELECT * FROM trials WHERE study = ? ORDER BY number`).all<TrialRow>(study);
    return rows.map((r) => {
      const t: Trial = {
        number: r.number,
        values: JSON.parse(r.trial_values) as SettingValues,
        status: r.status as TrialStatus,
        metrics: JSON.parse(r.metrics) as Record<string, number>,
        startedAt: r.started_at,
        finishedAt: r.finished_at,
      };
      if (r.reason !== null) t.reason = r.reason;
      if (r.message !== null) t.message = r.message;
      return t;
    });
  }

  /** close closes the database. */
  close(): void {
    this.db.close();
  }
}
