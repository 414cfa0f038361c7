import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseCommand, type SettingValues } from "../protocol.js";
import { optimizerConfigSchema, type OptimizerConfigInput } from "./config.js";
import { LocalOptimizer } from "./optimizer.js";
import { TrialStore } from "./store.js";
import { simulateServo, type SimulatedApp } from "./testing.js";

// Every store is closed when the file's tests end.
const openStores: TrialStore[] = [];
function memoryStore(): TrialStore {
  const store = TrialStore.open(":memory:");
  openStores.push(store);
  return store;
}
after(() => {
  for (const store of openStores) store.close();
});

const FIXED_NOW = () => new Date("2024-01-02T03:04:05Z");

const app: SimulatedApp = {
  descriptor: {
    application: {
      components: {
        web: {
          settings: {
            cpu: { type: "range", unit: "cores", min: 0.5, max: 3, step: 0.5, pinned: false, value: 1 },
            mem: { type: "range", unit: "GiB", min: 0.5, max: 2, step: 0.5, pinned: false, value: 1 },
            replicas: { type: "range", unit: "", min: 1, max: 1, step: 1, pinned: true, value: 1 },
          },
        },
      },
    },
    measurement: { metrics: { rps: { unit: "rps" }, p90: { unit: "ms" } } },
  },
  metrics(v: SettingValues) {
    const cpu = Number(v.web?.cpu);
    const mem = Number(v.web?.mem);
    return { rps: 100 * Math.min(cpu, 2) * (mem >= 1 ? 1 : 0.5), p90: 200 / cpu };
  },
};

function config(extra: Partial<OptimizerConfigInput> = {}) {
  return optimizerConfigSchema.parse({
    study: "web",
    objective: "metrics.rps / (settings.cpu * 0.03 + settings.mem * 0.004)",
    constraints: ["metrics.p90 <= 150.0"],
    max_trials: 8,
    convergence: { patience: 0 },
    ...extra,
  });
}

void test("Verifies that a session describes first, measures the baseline without adjusting, then adjusts and measures", async () => {
  const store = memoryStore();
  const optimizer = new LocalOptimizer({ config: config({ apply_best: false }), store, now: FIXED_NOW });
  const log = await simulateServo((e, p) => optimizer.post(e, p), app);
  const names = log.commands.map((c) => c.cmd);
  assert.deepEqual(names.slice(0, 4), ["DESCRIBE", "MEASURE", "ADJUST", "MEASURE"]);
  assert.equal(names.at(-1), "SLEEP");
  assert.match(String(log.sleep?.reason), /study web is over: reached max_trials \(8\)/);
  const trials = store.trials("web");
  assert.equal(trials.length, 8);
  assert.deepEqual(trials[0]?.values, { web: { cpu: 1, mem: 1, replicas: 1 } });
  for (const c of log.commands) {
    if (c.cmd !== "ADJUST") continue;
    const s = c.param.state.application.components.web?.settings ?? {};
    assert.equal(s.replicas, undefined, "a pinned setting was sent in an ADJUST");
    assert.ok(Number.isInteger(Number(s.cpu?.value) / 0.5), `cpu ${String(s.cpu?.value)} is off the grid`);
  }
  const measure = log.commands.find((c) => c.cmd === "MEASURE");
  assert.ok(measure?.cmd === "MEASURE");
  assert.deepEqual(Object.keys(measure.param.metrics), ["rps", "p90"]);
  assert.equal(measure.param.control.duration, 60);
});

void test("Verifies that a finished study applies the best feasible settings, then sleeps", async () => {
  const store = memoryStore();
  const optimizer = new LocalOptimizer({ config: config(), store, now: FIXED_NOW });
  const log = await simulateServo((e, p) => optimizer.post(e, p), app);
  const summary = optimizer.summary();
  assert.ok(summary.best, "no best trial");
  assert.ok(Number(summary.best.values.web?.cpu) >= 1.5, "best trial breaks the p90 constraint");
  assert.equal(log.values.web?.cpu, summary.best.values.web?.cpu);
  assert.equal(log.values.web?.mem, summary.best.values.web?.mem);
  assert.equal(log.commands.at(-1)?.cmd, "SLEEP");

  // The app drifts back to its original settings (say, a redeploy): the finished study puts the
  // best settings back, confirms them with a describe, and sleeps again.
  const drifted = await simulateServo((e, p) => optimizer.post(e, p), app);
  assert.deepEqual(
    drifted.commands.map((c) => c.cmd),
    ["DESCRIBE", "ADJUST", "DESCRIBE", "SLEEP"],
  );
  assert.equal(drifted.values.web?.cpu, summary.best.values.web?.cpu);
  assert.equal(store.trials("web").length, 8, "applying the best settings added a trial");
});

void test("Verifies that a restarted optimizer resumes the study from the database", async () => {
  const dir = mkdtempSync(join(tmpdir(), "kubewise-opt-"));
  try {
    const db = join(dir, "trials.db");
    let store = TrialStore.open(db);
    let optimizer = new LocalOptimizer({ config: config({ max_trials: 6 }), store, now: FIXED_NOW });
    const first = await simulateServo((e, p) => optimizer.post(e, p), app, { maxCommands: 6 });
    const afterFirst = store.trials("web");
    store.close();
    assert.ok(
      afterFirst.length >= 2 && afterFirst.length < 6,
      `first session recorded ${afterFirst.length} trials`,
    );

    store = TrialStore.open(db);
    optimizer = new LocalOptimizer({ config: config({ max_trials: 6 }), store, now: FIXED_NOW });
    const second = await simulateServo((e, p) => optimizer.post(e, p), app, { values: first.values });
    const all = store.trials("web");
    assert.equal(all.length, 6);
    assert.deepEqual(all.slice(0, afterFirst.length), afterFirst, "stored trials were changed");
    assert.deepEqual(
      all.map((t) => t.number),
      [0, 1, 2, 3, 4, 5],
    );
    assert.notEqual(second.commands[1]?.cmd, "MEASURE", "the baseline was measured again after the restart");
    const keys = new Set(all.map((t) => JSON.stringify(t.values)));
    assert.equal(keys.size, all.length, "a resumed study repeated a trial");
    store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

void test("Verifies that a rejected adjust is recorded as a rejected trial and the app is described again", async () => {
  const store = memoryStore();
  const optimizer = new LocalOptimizer({ config: config({ max_trials: 5 }), store, now: FIXED_NOW });
  const rejecting: SimulatedApp = { ...app, reject: (v) => (Number(v.web?.mem) < 1 ? "oom" : undefined) };
  const log = await simulateServo((e, p) => optimizer.post(e, p), rejecting);
  const trials = store.trials("web");
  for (const t of trials) {
    const expected = Number(t.values.web?.mem) < 1 ? "rejected" : "ok";
    assert.equal(t.status, expected, `trial ${t.number} with mem ${String(t.values.web?.mem)}`);
  }
  const names = log.commands.map((c) => c.cmd).join(" ");
  if (trials.some((t) => t.status === "rejected")) assert.match(names, /ADJUST DESCRIBE/);
});

void test("Verifies that results out of turn and foreign cmd_uids are refused with optimizer statuses", () => {
  const optimizer = new LocalOptimizer({
    config: config(),
    store: memoryStore(),
    now: FIXED_NOW,
  });
  assert.deepEqual(optimizer.handle({ event: "HELLO", param: { agent: "x" } }), { status: "ok" });
  const early = optimizer.handle({ event: "MEASUREMENT", param: { metrics: { rps: { value: 1 } } } });
  assert.equal((early as { status: string }).status, "unexpected-event");
  const cmd = parseCommand(optimizer.handle({ event: "WHATS_NEXT", param: null }));
  assert.equal(cmd.cmd, "DESCRIBE");
  const again = parseCommand(optimizer.handle({ event: "WHATS_NEXT", param: null }));
  assert.equal(again.cmd_uid, cmd.cmd_uid, "an unanswered command is not re-sent as it was");
  const wrong = optimizer.handle({
    event: "DESCRIPTION",
    param: { status: "ok", cmd_uid: "nope", descriptor: app.descriptor },
  });
  assert.deepEqual(wrong, {
    status: "invalid",
    reason: "unexpected cmd_uid",
    message: `cmd_uid nope is not the command in progress (${cmd.cmd_uid})`,
  });
  const bad = optimizer.handle({ event: "NOPE" });
  assert.equal((bad as { status: string }).status, "invalid");
});

void test("Verifies that a failed describe backs off with a SLEEP before describing again", () => {
  const optimizer = new LocalOptimizer({
    config: config(),
    store: memoryStore(),
    now: FIXED_NOW,
  });
  const describe = parseCommand(optimizer.handle({ event: "WHATS_NEXT", param: null }));
  optimizer.handle({
    event: "DESCRIPTION",
    param: { status: "failed", reason: "unknown", message: "no deployment", cmd_uid: describe.cmd_uid },
  });
  const sleep = parseCommand(optimizer.handle({ event: "WHATS_NEXT", param: null }));
  assert.ok(sleep.cmd === "SLEEP");
  assert.equal(sleep.param.duration, 15);
  assert.equal(parseCommand(optimizer.handle({ event: "WHATS_NEXT", param: null })).cmd, "DESCRIBE");
});

void test("Verifies that a study whose objective cannot be evaluated stops with the error as its reason", async () => {
  const store = memoryStore();
  const optimizer = new LocalOptimizer({
    config: config({ objective: "metrics.throughput", constraints: [], max_trials: 20 }),
    store,
    now: FIXED_NOW,
  });
  const log = await simulateServo((e, p) => optimizer.post(e, p), app);
  assert.equal(store.trials("web").length, 3);
  assert.match(
    String(log.sleep?.reason),
    /objective could not be evaluated on the last 3 trials: objective "metrics.throughput" failed/,
  );
});

void test("Verifies that a setting described without a value is adjusted before the baseline is measured", async () => {
  const store = memoryStore();
  const optimizer = new LocalOptimizer({
    config: config({ max_trials: 1, apply_best: false }),
    store,
    now: FIXED_NOW,
  });
  const unset: SimulatedApp = {
    ...app,
    descriptor: {
      ...app.descriptor,
      application: {
        components: {
          web: {
            settings: {
              cpu: { type: "range", unit: "cores", min: 0.5, max: 3, step: 0.5, pinned: false, value: null },
              mem: { type: "range", unit: "GiB", min: 0.5, max: 2, step: 0.5, pinned: false, value: 1 },
            },
          },
        },
      },
    },
  };
  const log = await simulateServo((e, p) => optimizer.post(e, p), unset);
  assert.deepEqual(
    log.commands.map((c) => c.cmd),
    ["DESCRIBE", "ADJUST", "MEASURE", "SLEEP"],
  );
  const adjust = log.commands[1];
  assert.ok(adjust?.cmd === "ADJUST");
  assert.deepEqual(adjust.param.state.application.components.web?.settings.cpu, { value: 1.5 });
  assert.deepEqual(store.trials("web")[0]?.values, { web: { cpu: 1.5, mem: 1 } });
});
