import { test } from "node:test";
import assert from "node:assert/strict";
import type { JobRun } from "./measurement.js";
import { durationStats, percentile, sampleOf, selectSamples, statsMetrics, type JobSample } from "./stats.js";

const T0 = 1_234_567_890_000;
const EPS = 1e-9;

function sample(
  uid: string,
  finishedAfterS: number,
  durationSeconds: number,
  succeeded = true,
  appId = "app",
): JobSample {
  return { uid, appId, finishedAtMs: T0 + finishedAfterS * 1000, durationSeconds, succeeded };
}

test("Verifies that percentiles interpolate between closest ranks (type 7)", () => {
  assert.equal(percentile([10], 0.5), 10);
  assert.equal(percentile([10], 0.9), 10);
  assert.equal(percentile([1, 2, 3, 4], 0.5), 2.5);
  assert.ok(Math.abs(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9) - 9.1) < EPS);
  assert.equal(percentile([1, 2, 3], 0), 1);
  assert.equal(percentile([1, 2, 3], 1), 3);
});

test("Verifies that percentile rejects no values and p outside [0, 1]", () => {
  assert.throws(() => percentile([], 0.5), RangeError);
  assert.throws(() => percentile([1], -0.1), RangeError);
  assert.throws(() => percentile([1], 1.1), RangeError);
  assert.throws(() => percentile([1], Number.NaN), RangeError);
});

test("Verifies that stats over no successful run are undefined, not NaN", () => {
  assert.equal(durationStats([]), undefined);
  assert.equal(durationStats([sample("a", 1, 5, false)]), undefined);
});

test("Verifies that mean, p50, p90, min, max and counts are over successful runs by default", () => {
  const samples = [
    sample("a", 1, 10),
    sample("b", 2, 20),
    sample("c", 3, 30),
    sample("d", 4, 40),
    sample("f", 5, 999, false),
  ];
  const stats = durationStats(samples);
  assert.ok(stats);
  assert.equal(stats.count, 4);
  assert.equal(stats.failed, 1);
  assert.equal(stats.mean, 25);
  assert.equal(stats.p50, 25);
  assert.ok(Math.abs(stats.p90 - 37) < EPS);
  assert.equal(stats.min, 10);
  assert.equal(stats.max, 40);
  const all = durationStats(samples, { includeFailed: true });
  assert.equal(all?.count, 5);
  assert.equal(all?.max, 999);
});

test("Verifies that the window keeps one app id, [start, end), one sample per uid, in finish order", () => {
  const samples = [
    sample("late", 100, 1),
    sample("other-app", 5, 1, true, "other"),
    sample("before", -1, 1),
    sample("b", 20, 2),
    sample("a", 10, 3),
    sample("a", 10, 3),
    sample("at-end", 60, 1),
  ];
  const picked = selectSamples(samples, { appId: "app", startMs: T0, endMs: T0 + 60_000 });
  assert.deepEqual(
    picked.map((s) => s.uid),
    ["a", "b"],
  );
});

test("Verifies that a window naming settings keeps only the runs made with them, '' meaning untuned", () => {
  const samples = [
    sample("plain", 1, 1),
    { ...sample("v1", 2, 1), settings: "adjust-1" },
    { ...sample("v2", 3, 1), settings: "adjust-2" },
  ];
  const uids = (settings?: string): string[] =>
    selectSamples(samples, {
      appId: "app",
      startMs: T0,
      ...(settings === undefined ? {} : { settings }),
    }).map((s) => s.uid);
  assert.deepEqual(uids(), ["plain", "v1", "v2"]);
  assert.deepEqual(uids("adjust-2"), ["v2"]);
  assert.deepEqual(uids(""), ["plain"]);
  assert.deepEqual(uids("adjust-3"), []);
});

test("Verifies that a limit takes the first N successful runs after the start", () => {
  const samples = [sample("a", 1, 1), sample("f", 2, 1, false), sample("b", 3, 1), sample("c", 4, 1)];
  assert.deepEqual(
    selectSamples(samples, { appId: "app", startMs: T0, limit: 2 }).map((s) => s.uid),
    ["a", "f", "b"],
  );
  assert.deepEqual(
    selectSamples(samples, { appId: "app", startMs: T0, limit: 2, includeFailed: true }).map((s) => s.uid),
    ["a", "f"],
  );
  assert.deepEqual(selectSamples(samples, { appId: "app", startMs: T0, limit: 0 }), []);
});

test("Verifies that only runs that ran become samples", () => {
  const base = {
    uid: "u",
    appId: "app",
    finishedAtMs: T0,
    durationSeconds: 4,
    exitCode: 0,
    outcome: "ran",
  } as JobRun;
  assert.deepEqual(sampleOf(base), {
    uid: "u",
    appId: "app",
    finishedAtMs: T0,
    durationSeconds: 4,
    succeeded: true,
  });
  assert.equal(sampleOf({ ...base, exitCode: 1 })?.succeeded, false);
  assert.equal(sampleOf({ ...base, settings: "adjust-4" })?.settings, "adjust-4");
  assert.equal(sampleOf({ ...base, outcome: "never-ran", durationSeconds: undefined }), undefined);
});

test("Verifies that the metrics name the statistics and leave perf out for a zero mean", () => {
  const metrics = statsMetrics({ count: 2, failed: 0, mean: 4, p50: 4, p90: 5, min: 3, max: 5 });
  assert.deepEqual(metrics.duration, { value: 4, unit: "s" });
  assert.deepEqual(metrics.perf, { value: 0.25, unit: "1/s" });
  assert.deepEqual(metrics.job_count, { value: 2, unit: "" });
  assert.equal(
    statsMetrics({ count: 1, failed: 0, mean: 0, p50: 0, p90: 0, min: 0, max: 0 }).perf,
    undefined,
  );
});
