import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { optimizerConfigSchema } from "./config.js";
import { OptimizerError } from "./errors.js";
import { buildReport, niceTicks, renderHtml, writeReport } from "./report.js";
import { TrialStore, type Trial } from "./store.js";

const NOW = new Date("2024-02-03T04:05:06Z");
const config = optimizerConfigSchema.parse({
  study: "web",
  objective: "metrics.rps / settings.cpu",
  constraints: [{ name: "latency", expression: "metrics.p90 < 100.0" }],
});

function trial(
  number: number,
  [cpu, gc]: [number, string],
  [rps, p90]: [number, number],
  status: Trial["status"] = "ok",
): Trial {
  return {
    number,
    values: { web: { cpu, gc, replicas: 2 } },
    status,
    metrics: status === "ok" ? { rps, p90 } : {},
    startedAt: NOW.toISOString(),
    finishedAt: NOW.toISOString(),
  };
}

const trials = [
  trial(0, [1, "g1"], [100, 80]), // 100, feasible
  trial(1, [0.5, "g1"], [90, 150]), // 180, breaks latency
  trial(2, [2, "parallel"], [0, 0], "rejected"),
  trial(3, [0.75, "parallel"], [90, 95]), // 120, feasible, best
  trial(4, [1.5, "g1"], [120, 60]), // 80
];

function store(): TrialStore {
  const s = TrialStore.open(":memory:");
  s.ensureStudy("web", config, NOW);
  for (const t of trials) s.addTrial("web", t);
  return s;
}

void test("Verifies that the report scores trials, tracks the best feasible so far and picks the best", () => {
  const s = store();
  const report = buildReport(s.study("web")!, s.trials("web"), NOW);
  assert.equal(report.best?.number, 3);
  assert.deepEqual(
    report.trials.map((t) => t.bestSoFar),
    [100, 100, 100, 120, 120],
  );
  assert.deepEqual(report.trials[1]?.violated, ["latency"]);
  assert.equal(report.trials[2]?.objective, undefined);
  assert.equal(report.trials[2]?.feasible, false);
  assert.deepEqual(report.constraints, ["latency: metrics.p90 < 100.0"]);
});

void test("Verifies that the HTML has the trial plot, one plot per varying setting, and escapes text", () => {
  const s = store();
  const report = buildReport(s.study("web")!, s.trials("web"), NOW);
  const html = renderHtml({ ...report, study: "<web>" });
  assert.equal(
    (html.match(/<svg /g) ?? []).length,
    3,
    "expected the trial plot plus cpu and gc (replicas never varies)",
  );
  assert.match(html, /cpu vs objective/);
  assert.match(html, /gc vs objective/);
  assert.doesNotMatch(html, /replicas vs objective/);
  assert.match(html, /&#60;web&#62;/);
  assert.doesNotMatch(html, /<web>/);
  assert.match(html, /class="best-line"/);
  assert.match(html, /rejected/);
});

void test("Verifies that writeReport writes HTML and JSON files and names the study when several exist", () => {
  const dir = mkdtempSync(join(tmpdir(), "kubewise-report-"));
  try {
    const db = join(dir, "trials.db");
    const s = TrialStore.open(db);
    s.ensureStudy("web", config, NOW);
    for (const t of trials) s.addTrial("web", t);
    s.close();
    const files = writeReport({ db, outDir: join(dir, "out"), now: NOW });
    const json = JSON.parse(readFileSync(files.json, "utf8")) as {
      best: { number: number };
      generatedAt: string;
    };
    assert.equal(json.best.number, 3);
    assert.equal(json.generatedAt, NOW.toISOString());
    assert.match(readFileSync(files.html, "utf8"), /^<!doctype html>/);

    const t = TrialStore.open(db);
    t.ensureStudy("other", config, NOW);
    t.close();
    assert.throws(
      () => writeReport({ db, outDir: dir }),
      (err: unknown) => err instanceof OptimizerError && /other, web/.test(err.message),
    );
    assert.throws(() => writeReport({ db, outDir: dir, study: "nope" }), /study nope is not in/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("Verifies that axis ticks fall on 1, 2 or 5 times a power of ten inside the range, whole numbers for counts", () => {
  assert.deepEqual(niceTicks(-0.75, 15.75, 6, true), [0, 5, 10, 15]);
  assert.deepEqual(niceTicks(-0.2, 3.2, 6, true), [0, 1, 2, 3]);
  assert.deepEqual(niceTicks(0.03125, 2.094), [0.5, 1, 1.5, 2]);
  assert.deepEqual(niceTicks(0.5219, 2.103), [1, 1.5, 2]);
  assert.deepEqual(niceTicks(0.1, 0.4, 4), [0.1, 0.2, 0.3, 0.4]);
  assert.deepEqual(niceTicks(16.2, 99.8), [20, 40, 60, 80]);
  assert.deepEqual(niceTicks(-1200, 2600, 5), [-1000, 0, 1000, 2000]);
  assert.deepEqual(niceTicks(3, 3), [3]);
  for (const [lo, hi] of [
    [0.001, 0.0047],
    [-5, 5],
    [1e6, 3.5e6],
  ] as const) {
    const ticks = niceTicks(lo, hi);
    assert.ok(ticks.length >= 2 && ticks.length <= 10, `${lo}..${hi}: ${ticks.join(",")}`);
    assert.ok(
      ticks.every((t) => t >= lo && t <= hi),
      `${lo}..${hi}: ${ticks.join(",")}`,
    );
  }
});
