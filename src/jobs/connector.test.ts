import { test } from "node:test";
import assert from "node:assert/strict";
import { ConfigError } from "../config/index.js";
import { ServoError, measureParamSchema, type MeasureParam } from "../servo/index.js";
import { JobsMeasureConnector, type Clock, type JobRunFeed } from "./connector.js";
import type { JobSample } from "./stats.js";

const T0 = 1_234_567_890_000;

/** fakeClock moves only when slept on. */
function fakeClock(): Clock & { slept: number } {
  const clock = {
    t: T0,
    slept: 0,
    now: () => clock.t,
    sleep: async (ms: number) => {
      clock.t += ms;
      clock.slept += ms;
    },
  };
  return clock;
}

/** feedOf shows only the runs that have finished by the clock's now, as a watcher would. */
function feedOf(clock: Clock, runs: JobSample[]): JobRunFeed {
  return { samples: () => runs.filter((r) => r.finishedAtMs <= clock.now()) };
}

function run(
  uid: string,
  finishedAfterS: number,
  durationSeconds: number,
  succeeded = true,
  appId = "render",
): JobSample {
  return { uid, appId, finishedAtMs: T0 + finishedAfterS * 1000, durationSeconds, succeeded };
}

function param(control: Record<string, number>, metrics: string[] = []): MeasureParam {
  return measureParamSchema.parse({ metrics, control });
}

const runs = [
  run("before-warmup", 5, 99),
  run("a", 20, 10),
  run("other-app", 25, 1, true, "other"),
  run("b", 30, 20),
  run("failed", 35, 1, false),
  run("c", 40, 30),
  run("after-window", 200, 99),
];

test("Verifies that a window's runs of the app id give mean, p50, p90 and counts", async () => {
  const clock = fakeClock();
  const connector = new JobsMeasureConnector({ app_id: "render" }, feedOf(clock, runs), { clock });
  const progress: number[] = [];
  const result = await connector.measure(param({ warmup: 10, duration: 60 }), (p) => progress.push(p));
  assert.deepEqual(result.metrics.duration, { value: 20, unit: "s" });
  assert.deepEqual(result.metrics.duration_p50, { value: 20, unit: "s" });
  assert.ok(Math.abs((result.metrics.duration_p90 as { value: number }).value - 28) < 1e-9);
  assert.deepEqual(result.metrics.job_count, { value: 3, unit: "" });
  assert.deepEqual(result.metrics.failed_count, { value: 1, unit: "" });
  assert.equal(result.annotations.runs, "a,b,failed,c");
  assert.equal(clock.slept, 70_000, "waited warmup + duration");
  assert.ok(progress.every((p) => p >= 0 && p <= 100));
});

test("Verifies that with count it returns as soon as N successful runs finished", async () => {
  const clock = fakeClock();
  const connector = new JobsMeasureConnector({ app_id: "render", count: 2 }, feedOf(clock, runs), { clock });
  const result = await connector.measure(
    param({ warmup: 10, duration: 600 }, ["duration", "job_count"]),
    () => undefined,
  );
  assert.deepEqual(Object.keys(result.metrics), ["duration", "job_count"]);
  assert.deepEqual(result.metrics.duration, { value: 15, unit: "s" });
  assert.equal(clock.now(), T0 + 30_000, "stopped when the second run finished, not at the window's end");
});

test("Verifies that a window without a successful run fails the measurement", async () => {
  const clock = fakeClock();
  const connector = new JobsMeasureConnector({ app_id: "nothing" }, feedOf(clock, runs), { clock });
  await assert.rejects(
    connector.measure(param({ duration: 30 }), () => undefined),
    (err: unknown) =>
      err instanceof ServoError && err.reason === "measure-failed" && /app id "nothing"/.test(err.message),
  );
});

test("Verifies that with currentSettings only the runs made with the settings current at the start count, and the measurement names them", async () => {
  const clock = fakeClock();
  const tuned = (uid: string, at: number, d: number, settings: string): JobSample => ({
    ...run(uid, at, d),
    settings,
  });
  const feed = feedOf(clock, [
    run("untuned", 15, 50),
    tuned("old", 20, 40, "adjust-1"),
    tuned("new-a", 30, 10, "adjust-2"),
    tuned("new-b", 40, 20, "adjust-2"),
  ]);
  let reads = 0;
  const connector = new JobsMeasureConnector({ app_id: "render", count: 2 }, feed, {
    clock,
    currentSettings: async () => {
      reads++;
      return "adjust-2";
    },
  });
  const result = await connector.measure(param({ warmup: 10, duration: 600 }), () => undefined);
  assert.equal(result.annotations.runs, "new-a,new-b");
  assert.equal(result.annotations.tuned_settings, "adjust-2");
  assert.deepEqual(result.metrics.duration, { value: 15, unit: "s" });
  assert.equal(reads, 1, "read once, at the start");

  const baseline = new JobsMeasureConnector({ app_id: "render" }, feed, {
    clock: fakeClock(),
    currentSettings: async () => "",
  });
  const untuned = await baseline.measure(param({ duration: 60 }), () => undefined);
  assert.equal(
    untuned.annotations.runs,
    "untuned",
    "an empty identity keeps the runs the webhook left alone",
  );
});

test("Verifies that a window without a run made with the current settings names them and the webhook, and a failing settings source fails the measurement", async () => {
  const clock = fakeClock();
  const connector = new JobsMeasureConnector({ app_id: "render" }, feedOf(clock, runs), {
    clock,
    currentSettings: async () => "adjust-9",
  });
  await assert.rejects(
    connector.measure(param({ duration: 60 }), () => undefined),
    (err: unknown) =>
      err instanceof ServoError &&
      err.reason === "measure-failed" &&
      err.message.includes('made with the tuned settings "adjust-9"') &&
      err.message.includes("webhook"),
  );
  const broken = new JobsMeasureConnector({ app_id: "render" }, feedOf(clock, runs), {
    clock,
    currentSettings: async () => {
      throw new Error("configmaps is forbidden");
    },
  });
  await assert.rejects(
    broken.measure(param({ duration: 60 }), () => undefined),
    (err: unknown) =>
      err instanceof ServoError &&
      err.reason === "measure-failed" &&
      /which settings app id "render" runs with now: configmaps is forbidden/.test(err.message),
  );
});

test("Verifies that bad options and unknown metrics are named", () => {
  const clock = fakeClock();
  assert.throws(
    () => new JobsMeasureConnector({ count: 0 }, feedOf(clock, []), { clock }),
    (err: unknown) => err instanceof ConfigError && /app_id/.test(err.message) && /count/.test(err.message),
  );
  const connector = new JobsMeasureConnector({ app_id: "x" }, feedOf(clock, []), { clock });
  assert.deepEqual(connector.describeMetrics().perf, { unit: "1/s" });
  return assert.rejects(
    connector.measure(param({ duration: 1 }, ["throughput"]), () => undefined),
    (err: unknown) => err instanceof ServoError && err.reason === "unknown-metric",
  );
});

test("Verifies that an aborted measurement is cancelled", async () => {
  const clock = fakeClock();
  const connector = new JobsMeasureConnector({ app_id: "render" }, feedOf(clock, runs), { clock });
  const controller = new AbortController();
  controller.abort(new Error("servo stopping"));
  await assert.rejects(
    connector.measure(param({ duration: 30 }), () => undefined, controller.signal),
    (err: unknown) =>
      err instanceof ServoError && err.status === "cancelled" && /servo stopping/.test(err.message),
  );
});
