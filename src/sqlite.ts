/**
 * One small synchronous SQLite interface over two drivers, for the optimizer's trial store and
 * the jobs outbox: better-sqlite3, the mature one, up to Node 23, and the built-in `node:sqlite`
 * from Node 24 on.
 *
 * Why two: better-sqlite3 12.x, the last release line that runs on Node 20, aborts the process on
 * Node 24 whenever one of its statement or database objects is garbage collected (Node 24's
 * node::ObjectWrap removes an environment cleanup hook in its destructor and asserts on a null
 * environment); better-sqlite3 13 fixed that by moving to Node-API but needs Node 22 and crashes
 * on Node 20. Node 24 ships node:sqlite without a flag or a warning, with no native addon to get
 * wrong. Both drivers are synchronous: when run() returns, the change is in SQLite (and on disk
 * as far as the `synchronous` pragma says).
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";

/** SqlValue is what a statement binds. */
export type SqlValue = string | number | bigint | null | Uint8Array;

/** SqlStatement is a prepared statement; rows come back as plain objects. */
export interface SqlStatement {
  run(...params: SqlValue[]): { changes: number };
  get<T = Record<string, unknown>>(...params: SqlValue[]): T | undefined;
  all<T = Record<string, unknown>>(...params: SqlValue[]): T[];
}

/** SqliteDriver names a driver. */
export type SqliteDriver = "node:sqlite" | "better-sqlite3";

/** SqlDatabase is an open database. Statements are prepared once per SQL text and kept. */
export interface SqlDatabase {
  readonly driver: SqliteDriver;
  readonly open: boolean;
  exec(sql: string): void;
  prepare(sql: string): SqlStatement;
  /** pragma reads the single value of a pragma, e.g. pragma("user_version"). */
  pragma(name: string): unknown;
  /** immediate runs fn in a BEGIN IMMEDIATE transaction: committed when fn returns, rolled back when it throws. */
  immediate<T>(fn: () => T): T;
  close(): void;
}

/** OpenOptions tune openDatabase. */
export interface OpenOptions {
  /** mustExist refuses to create a missing file. @default false */
  mustExist?: boolean;
  /** busyTimeoutMs is how long to wait for another connection's lock. @default 5000 */
  busyTimeoutMs?: number;
  /** driver picks one of availableDrivers() (tests); the default is the first. */
  driver?: SqliteDriver;
}

/** availableDrivers lists the drivers that are safe on this Node, the default first. */
export function availableDrivers(): SqliteDriver[] {
  const major = Number(process.versions.node.split(".")[0]);
  if (builtin() === undefined) return ["better-sqlite3"];
  return major >= 24 ? ["node:sqlite"] : ["better-sqlite3", "node:sqlite"];
}

/**
 * openDatabase opens (creating unless mustExist) the database at `path` (":memory:" for a
 * private in-memory one). Errors are the driver's; sqliteErrorCode tells them apart.
 */
export function openDatabase(path: string, options: OpenOptions = {}): SqlDatabase {
  if (options.mustExist === true && path !== ":memory:" && !existsSync(path)) {
    throw Object.assign(new Error(`no such file: ${path}`), { code: "SQLITE_CANTOPEN" });
  }
  const driver = options.driver ?? availableDrivers()[0] ?? "better-sqlite3";
  const raw = driver === "node:sqlite" ? openBuiltin(path) : openBetterSqlite(path);
  const db = new Database(driver, raw);
  try {
    db.exec(`PRAGMA busy_timeout = ${Math.max(0, Math.round(options.busyTimeoutMs ?? 5000))}`);
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}

/**
 * sqliteErrorCode is the SQLite result code name of an error from either driver (SQLITE_BUSY,
 * SQLITE_NOTADB, ...; extended codes by their primary name), or undefined for other errors.
 */
export function sqliteErrorCode(err: unknown): string | undefined {
  const e = err as { code?: unknown; errcode?: unknown };
  if (typeof e.code === "string" && e.code.startsWith("SQLITE_")) return primaryName(e.code);
  if (typeof e.errcode === "number") return RESULT_CODES[e.errcode & 0xff];
  return undefined;
}

// primaryName turns an extended code name (SQLITE_BUSY_SNAPSHOT) into its primary one (SQLITE_BUSY).
function primaryName(code: string): string {
  const primary = Object.values(RESULT_CODES).find((name) => code === name || code.startsWith(`${name}_`));
  return primary ?? code;
}

/** RESULT_CODES are SQLite's primary result codes that callers tell apart. */
const RESULT_CODES: Record<number, string> = {
  1: "SQLITE_ERROR",
  5: "SQLITE_BUSY",
  6: "SQLITE_LOCKED",
  8: "SQLITE_READONLY",
  10: "SQLITE_IOERR",
  11: "SQLITE_CORRUPT",
  13: "SQLITE_FULL",
  14: "SQLITE_CANTOPEN",
  19: "SQLITE_CONSTRAINT",
  26: "SQLITE_NOTADB",
};

/** RawStatement and RawDatabase are what both drivers' objects have in common. */
interface RawStatement {
  run(...params: SqlValue[]): { changes: number | bigint };
  get(...params: SqlValue[]): unknown;
  all(...params: SqlValue[]): unknown[];
}

interface RawDatabase {
  exec(sql: string): unknown;
  prepare(sql: string): RawStatement;
  close(): unknown;
}

type BuiltinModule = { DatabaseSync: new (path: string) => RawDatabase };

function builtin(): BuiltinModule | undefined {
  // Node 20 has no node:sqlite and 22.5-22.12 only behind a flag: getBuiltinModule says undefined.
  const get = (process as { getBuiltinModule?: (id: string) => unknown }).getBuiltinModule;
  return get?.("node:sqlite") as BuiltinModule | undefined;
}

function openBuiltin(path: string): RawDatabase {
  const mod = builtin();
  if (mod === undefined) throw new Error(`node:sqlite is not available in Node ${process.version}`);
  return new mod.DatabaseSync(path);
}

function openBetterSqlite(path: string): RawDatabase {
  // Loaded only when used, so Node 24 never loads the native addon.
  const require = createRequire(import.meta.url);
  const BetterSqlite = require("better-sqlite3") as new (path: string) => RawDatabase;
  return new BetterSqlite(path);
}

// plain copies a row into an ordinary object (node:sqlite's rows have a null prototype).
function plain<T>(row: unknown): T {
  return (row === undefined || row === null ? undefined : { ...(row as object) }) as T;
}

class Statement implements SqlStatement {
  constructor(private readonly raw: RawStatement) {}

  run(...params: SqlValue[]): { changes: number } {
    return { changes: Number(this.raw.run(...params).changes) };
  }

  get<T>(...params: SqlValue[]): T | undefined {
    return plain<T | undefined>(this.raw.get(...params));
  }

  all<T>(...params: SqlValue[]): T[] {
    return this.raw.all(...params).map((row) => plain<T>(row));
  }
}

class Database implements SqlDatabase {
  private readonly statements = new Map<string, Statement>();
  private closed = false;

  constructor(
    readonly driver: SqliteDriver,
    private readonly raw: RawDatabase,
  ) {}

  get open(): boolean {
    return !this.closed;
  }

  exec(sql: string): void {
    this.raw.exec(sql);
  }

  prepare(sql: string): SqlStatement {
    let statement = this.statements.get(sql);
    if (statement === undefined) {
      statement = new Statement(this.raw.prepare(sql));
      this.statements.set(sql, statement);
    }
    return statement;
  }

  pragma(name: string): unknown {
    const row = this.raw.prepare(`PRAGMA ${name}`).get() as Record<string, unknown> | undefined;
    return row === undefined ? undefined : Object.values(row)[0];
  }

  immediate<T>(fn: () => T): T {
    this.raw.exec("BEGIN IMMEDIATE");
    let result: T;
    try {
      result = fn();
    } catch (err) {
      this.raw.exec("ROLLBACK");
      throw err;
    }
    this.raw.exec("COMMIT");
    return result;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.statements.clear();
    this.raw.close();
  }
}
