import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { availableDrivers, openDatabase, sqliteErrorCode } from "./sqlite.js";

const major = Number(process.versions.node.split(".")[0]);

test("Verifies that Node 24 and later use node:sqlite and earlier Nodes better-sqlite3 by default", () => {
  const drivers = availableDrivers();
  assert.equal(drivers[0], major >= 24 ? "node:sqlite" : "better-sqlite3");
  if (major >= 24) assert.deepEqual(drivers, ["node:sqlite"], "better-sqlite3 12 aborts on Node 24");
  assert.equal(openDatabase(":memory:").driver, drivers[0]);
});

for (const driver of availableDrivers()) {
  test(`Verifies that ${driver}: statements run, read plain rows, and are prepared once`, () => {
    const db = openDatabase(":memory:", { driver });
    db.exec("CREATE TABLE t (k TEXT PRIMARY KEY, n INTEGER, x REAL, b BLOB)");
    const insert = db.prepare("INSERT INTO t VALUES (?, ?, ?, ?) ON CONFLICT (k) DO NOTHING");
    assert.equal(insert, db.prepare("INSERT INTO t VALUES (?, ?, ?, ?) ON CONFLICT (k) DO NOTHING"));
    assert.deepEqual(insert.run("a", 1, 0.5, null), { changes: 1 });
    assert.deepEqual(insert.run("a", 2, 0.5, null), { changes: 0 });
    insert.run("b", 2, 1.5, new Uint8Array([1, 2]));
    const row = db.prepare("SELECT k, n, x FROM t WHERE k = ?").get<{ k: string; n: number; x: number }>("a");
    assert.deepEqual(row, { k: "a", n: 1, x: 0.5 });
    assert.equal(Object.getPrototypeOf(row), Object.prototype);
    assert.equal(db.prepare("SELECT * FROM t WHERE k = ?").get("zz"), undefined);
    assert.deepEqual(
      db
        .prepare("SELECT k FROM t ORDER BY k")
        .all<{ k: string }>()
        .map((r) => r.k),
      ["a", "b"],
    );
    db.close();
    assert.equal(db.open, false);
    db.close();
  });

  test(`Verifies that ${driver}: pragma reads one value and immediate commits or rolls back`, () => {
    const db = openDatabase(":memory:", { driver });
    assert.equal(Number(db.pragma("user_version")), 0);
    db.exec("CREATE TABLE t (n INTEGER)");
    db.immediate(() => {
      db.prepare("INSERT INTO t VALUES (?)").run(1);
      db.exec("PRAGMA user_version = 3");
    });
    assert.equal(Number(db.pragma("user_version")), 3);
    assert.throws(
      () =>
        db.immediate(() => {
          db.prepare("INSERT INTO t VALUES (?)").run(2);
          throw new Error("boom");
        }),
      /boom/,
    );
    assert.deepEqual(db.prepare("SELECT n FROM t").all(), [{ n: 1 }]);
    db.close();
  });

  test(`Verifies that ${driver}: a missing file with mustExist, a non-database and a locked file have SQLite's codes`, () => {
    const dir = mkdtempSync(join(tmpdir(), "kubewise-sqlite-"));
    try {
      assert.throws(
        () => openDatabase(join(dir, "missing.db"), { driver, mustExist: true }),
        (err: unknown) => sqliteErrorCode(err) === "SQLITE_CANTOPEN",
      );
      const junk = join(dir, "junk.db");
      writeFileSync(junk, "this is not a database, just some text that is long enough to have a header");
      assert.throws(
        () => openDatabase(junk, { driver }).exec("CREATE TABLE t (n)"),
        (err: unknown) => sqliteErrorCode(err) === "SQLITE_NOTADB",
      );
      const file = join(dir, "locked.db");
      const holder = openDatabase(file, { driver });
      holder.exec("PRAGMA locking_mode = EXCLUSIVE");
      holder.exec("CREATE TABLE t (n)");
      const other = openDatabase(file, { driver, busyTimeoutMs: 50 });
      assert.throws(
        () => other.prepare("SELECT * FROM t").all(),
        (err: unknown) => sqliteErrorCode(err) === "SQLITE_BUSY",
      );
      other.close();
      holder.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test("Verifies that errors that are not SQLite's have no code", () => {
  assert.equal(sqliteErrorCode(new Error("x")), undefined);
  assert.equal(sqliteErrorCode(Object.assign(new Error("x"), { code: "ENOENT" })), undefined);
  assert.equal(
    sqliteErrorCode(Object.assign(new Error("x"), { code: "SQLITE_BUSY_SNAPSHOT" })),
    "SQLITE_BUSY",
  );
  assert.equal(sqliteErrorCode(Object.assign(new Error("x"), { errcode: 261 })), "SQLITE_BUSY");
});
