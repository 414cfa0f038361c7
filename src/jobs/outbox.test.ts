import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { JobsError } from "./errors.js";
import { Outbox, type NewReport } from "./outbox.js";

function tempFile(): string {
  return join(mkdtempSync(join(tmpdir(), "kubewise-outbox-")), "sub", "outbox.sqlite");
}

function report(uid: string, appId = "app"): NewReport {
  return {
    uid,
    appId,
    namespace: "batch",
    pod: `pod-${uid}`,
    param: { status: "ok", reason: "success", annotations: {}, idempotency_key: uid },
  };
}

test("Verifies that enqueue adds a uid once and then returns what the outbox knows", () => {
  const outbox = Outbox.open(tempFile());
  try {
    assert.deepEqual(outbox.enqueue(report("a")), { added: true });
    const again = outbox.enqueue({ ...report("a"), param: { ...report("a").param, reason: "changed" } });
    assert.equal(again.added, false);
    assert.ok(!again.added);
    assert.equal(again.existing.state, "pending");
    assert.equal(outbox.get("a")?.param.reason, "success", "the first report is kept");
    outbox.markDelivered("a");
    const afterDelivery = outbox.enqueue(report("a"));
    assert.ok(!afterDelivery.added);
    assert.equal(afterDelivery.existing.state, "delivered");
    assert.deepEqual(outbox.pending(), []);
  } finally {
    outbox.close();
  }
});

test("Verifies that states move pending -> delivered -> marked, and rejected is final", () => {
  let now = 1_000;
  const outbox = Outbox.open(tempFile(), { now: () => now });
  try {
    outbox.enqueue(report("a"));
    outbox.enqueue(report("b"));
    now = 2_000;
    outbox.recordFailure("a", "HTTP 503");
    assert.deepEqual(
      outbox.pending().map((e) => e.uid),
      ["b", "a"],
      "the report that just failed goes behind the untried one",
    );
    assert.equal(outbox.get("a")?.attempts, 1);
    assert.equal(outbox.get("a")?.lastError, "HTTP 503");
    outbox.markDelivered("a");
    outbox.markRejected("b", "HTTP 400: bad");
    outbox.markDelivered("b");
    assert.equal(outbox.get("b")?.state, "rejected", "a rejected report cannot become delivered");
    assert.deepEqual(outbox.counts(), { pending: 0, delivered: 1, rejected: 1 });
    assert.deepEqual(
      outbox.unmarked().map((e) => e.uid),
      ["a"],
    );
    now = 3_000;
    outbox.markMarked("a");
    assert.equal(outbox.get("a")?.markedAt, 3_000);
    assert.equal(outbox.get("a")?.deliveredAt, 2_000);
    assert.equal(outbox.get("a")?.attempts, 2);
    assert.deepEqual(outbox.unmarked(), []);
  } finally {
    outbox.close();
  }
});

test("Verifies that prune keeps pending and unmarked entries and drops old finished ones", () => {
  let now = 1_000;
  const outbox = Outbox.open(tempFile(), { now: () => now });
  try {
    for (const uid of ["pending", "unmarked", "marked", "rejected", "recent"]) outbox.enqueue(report(uid));
    outbox.markDelivered("unmarked");
    outbox.markDelivered("marked");
    outbox.markMarked("marked");
    outbox.markRejected("rejected", "HTTP 403");
    now = 50_000;
    outbox.markDelivered("recent");
    outbox.markMarked("recent");
    assert.equal(outbox.prune(10_000), 2);
    assert.equal(outbox.get("marked"), undefined);
    assert.equal(outbox.get("rejected"), undefined);
    assert.ok(outbox.get("pending"));
    assert.ok(outbox.get("unmarked"));
    assert.ok(outbox.get("recent"));
  } finally {
    outbox.close();
  }
});

test("Verifies that reports survive a process killed right after enqueue (SIGKILL, no close)", () => {
  const file = tempFile();
  const outboxModule = fileURLToPath(new URL("./outbox.ts", import.meta.url));
  const script = `
    import { Outbox } from ${JSON.stringify(outboxModule)};
    const outbox = Outbox.open(${JSON.stringify(file)});
    for (const uid of ["u1", "u2", "u3"]) {
      outbox.enqueue({ uid, appId: "app", namespace: "ns", pod: "p-" + uid, param: { idempotency_key: uid } });
    }
    outbox.markDelivered("u2");
    process.kill(process.pid, "SIGKILL");
  `;
  const result = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
    encoding: "utf8",
  });
  assert.equal(result.signal, "SIGKILL", `child should die by SIGKILL; stderr: ${result.stderr}`);
  const reopened = Outbox.open(file);
  try {
    assert.deepEqual(
      reopened.pending().map((e) => e.uid),
      ["u1", "u3"],
    );
    assert.equal(reopened.get("u2")?.state, "delivered");
    assert.ok(!reopened.enqueue(report("u2")).added, "a delivered uid is not enqueued again after the crash");
  } finally {
    reopened.close();
  }
});

test("Verifies that a second process cannot open an outbox in use", () => {
  const file = tempFile();
  const first = Outbox.open(file);
  try {
    first.enqueue(report("a"));
    assert.throws(
      () => Outbox.open(file, { busyTimeoutMs: 50 }),
      (err: unknown) =>
        err instanceof JobsError && err.reason === "outbox-locked" && /in use/.test(err.message),
    );
  } finally {
    first.close();
  }
  const again = Outbox.open(file);
  assert.equal(again.pending().length, 1, "the lock goes with close");
  again.close();
});

test("Verifies that a file that is not an outbox is refused with a clear error", () => {
  const file = join(mkdtempSync(join(tmpdir(), "kubewise-outbox-")), "junk");
  writeFileSync(file, "this is not a database, it is a text file that is long enough to have a header page");
  assert.throws(
    () => Outbox.open(file),
    (err: unknown) =>
      err instanceof JobsError && err.reason === "outbox" && /is not an outbox/.test(err.message),
  );
});
