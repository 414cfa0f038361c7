import { test } from "node:test";
import assert from "node:assert/strict";
import { SwarmError } from "./errors.js";
import { TerminalError, WorkQueue, type ReconcileOutcome, type ReconcileResult } from "./queue.js";

/** Gate is a promise the test resolves by hand, to hold a reconcile in flight. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open = (): void => {};
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 400 && !condition(); i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(condition(), "condition not met in time");
}

test("Verifies that a key added many times while waiting is reconciled once", async () => {
  const seen: string[] = [];
  const hold = gate();
  const q = new WorkQueue({
    reconcile: async (key) => {
      seen.push(key);
      if (key === "first") await hold.promise;
      return {};
    },
  });
  q.start();
  q.add("first");
  for (let i = 0; i < 5; i++) q.add("pool");
  assert.equal(q.length, 1);
  hold.open();
  await until(() => seen.length === 2);
  await q.stop();
  assert.deepEqual(seen, ["first", "pool"]);
});

test("Verifies that a key is never reconciled twice at once, and an event during its reconcile runs it again after", async () => {
  let active = 0;
  let maxActive = 0;
  let runs = 0;
  const hold = gate();
  const q = new WorkQueue({
    concurrency: 4,
    reconcile: async () => {
      active++;
      maxActive = Math.max(maxActive, active);
      runs++;
      if (runs === 1) await hold.promise;
      active--;
      return {};
    },
  });
  q.start();
  q.add("pool");
  await until(() => runs === 1);
  q.add("pool");
  q.add("pool");
  hold.open();
  await until(() => runs === 2 && active === 0);
  await q.stop();
  assert.equal(maxActive, 1);
  assert.equal(runs, 2, "the two adds during the first run collapse into one more run");
});

test("Verifies that a failing reconcile is retried with growing backoff and a success resets it", async () => {
  const times: number[] = [];
  const outcomes: ReconcileOutcome[] = [];
  const q = new WorkQueue({
    initialBackoffMs: 20,
    reconcile: async () => {
      times.push(Date.now());
      if (times.length < 4) throw new Error("API server unreachable");
      return {};
    },
    onOutcome: (_key, outcome) => outcomes.push(outcome),
  });
  q.start();
  q.add("pool");
  await until(() => outcomes.length === 4);
  await q.stop();
  assert.deepEqual(outcomes, ["error", "error", "error", "success"]);
  const gaps = times.slice(1).map((t, i) => t - (times[i] as number));
  // 20, 40, 80 ms; timers may fire late but never early.
  assert.ok(
    (gaps[0] as number) >= 19 && (gaps[1] as number) >= 39 && (gaps[2] as number) >= 79,
    String(gaps),
  );
});

test("Verifies that a TerminalError is not retried, while a new event still reconciles the key", async () => {
  let runs = 0;
  const outcomes: ReconcileOutcome[] = [];
  const q = new WorkQueue({
    initialBackoffMs: 1,
    reconcile: async () => {
      runs++;
      if (runs === 1) throw new Error("API server unreachable");
      throw new TerminalError(new SwarmError("insufficient-workers", "need 3 workers, have 2"));
    },
    onOutcome: (_key, outcome) => outcomes.push(outcome),
  });
  q.start();
  q.add("pool");
  await until(() => outcomes.length === 2);
  assert.deepEqual(outcomes, ["error", "terminal"], "the plain error was retried");
  assert.equal(q.delayed + q.length, 0, "nothing scheduled after the terminal error");
  q.add("pool");
  await until(() => runs === 3);
  await q.stop();
  assert.deepEqual(outcomes, ["error", "terminal", "terminal"]);
});

test("Verifies that requeueAfterMs looks at the key again without an event", async () => {
  const results: ReconcileResult[] = [{ requeueAfterMs: 10 }, {}];
  let runs = 0;
  const q = new WorkQueue({ reconcile: async () => results[runs++] ?? {} });
  q.start();
  q.add("pool");
  await until(() => runs === 2);
  await q.stop();
  assert.equal(runs, 2);
});

test("Verifies that stop() drops queued and delayed keys, waits for the one in flight, and adds while stopped are ignored", async () => {
  const seen: string[] = [];
  const hold = gate();
  const q = new WorkQueue({
    reconcile: async (key) => {
      seen.push(key);
      if (key === "a") await hold.promise;
      return { requeueAfterMs: 5 };
    },
  });
  q.start();
  q.add("a");
  q.add("b");
  q.addAfter("c", 5);
  let stopped = false;
  const stopping = q.stop().then(() => (stopped = true));
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(stopped, false, "stop waits for the reconcile in flight");
  hold.open();
  await stopping;
  q.add("d");
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(seen, ["a"]);
});
