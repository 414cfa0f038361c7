import { test } from "node:test";
import assert from "node:assert/strict";
import { compileObjective, constraintSlack, penalisedScores } from "./objective.js";
import { OptimizerError } from "./errors.js";

const trial = {
  metrics: { throughput: 1200, p90: 180 },
  settings: { web: { cpu: 1, mem: 2, replicas: 3, gc: "g1" } },
};

void test("Verifies that the objective is evaluated over metrics and settings", () => {
  const o = compileObjective({
    objective: "metrics.throughput / (settings.cpu * 0.03 + settings.mem * 0.004)",
    direction: "maximize",
    constraints: [],
  });
  const e = o.evaluate(trial);
  assert.ok(Math.abs((e.objective ?? 0) - 1200 / 0.038) < 1e-6);
  assert.equal(e.score, e.objective);
  assert.equal(e.feasible, true);
});

void test("Verifies that int literals mix with double values and minimise negates the score", () => {
  const o = compileObjective({
    objective: "settings.replicas * 2 + 1",
    direction: "minimize",
    constraints: [],
  });
  const e = o.evaluate(trial);
  assert.equal(e.objective, 7);
  assert.equal(e.score, -7);
});

void test("Verifies that a broken constraint makes the trial infeasible and names it", () => {
  const o = compileObjective({
    objective: "metrics.throughput",
    direction: "maximize",
    constraints: [{ expression: "metrics.p90 < 150" }, { name: "gc", expression: 'settings.gc == "g1"' }],
  });
  const e = o.evaluate(trial);
  assert.equal(e.feasible, false);
  assert.deepEqual(e.violated, ["metrics.p90 < 150"]);
  assert.equal(e.score, 1200);
});

void test("Verifies that invalid CEL is an OptimizerError quoting the expression", () => {
  assert.throws(
    () => compileObjective({ objective: "metrics.throughput +", direction: "maximize", constraints: [] }),
    (err: unknown) =>
      err instanceof OptimizerError &&
      err.reason === "invalid-expression" &&
      /objective "metrics.throughput \+" is not valid CEL/.test(err.message),
  );
  assert.throws(
    () =>
      compileObjective({
        objective: "1.0",
        direction: "maximize",
        constraints: [{ expression: "metrics.p90 + 1.0" }],
      }),
    /constraint "metrics.p90 \+ 1.0" must yield a condition \(bool\), but yields double/,
  );
  assert.throws(
    () => compileObjective({ objective: '"fast"', direction: "maximize", constraints: [] }),
    /must yield a number, but yields string/,
  );
  assert.throws(
    () => compileObjective({ objective: "cost.total", direction: "maximize", constraints: [] }),
    /cost/,
  );
});

void test("Verifies that a missing metric or a division by zero gives no score and a clear error", () => {
  const missing = compileObjective({
    objective: "metrics.rps",
    direction: "maximize",
    constraints: [],
  }).evaluate(trial);
  assert.equal(missing.score, undefined);
  assert.equal(missing.feasible, false);
  assert.match(missing.error ?? "", /objective "metrics.rps" failed: .*rps.*\(metrics: throughput, p90\)/);
  const inf = compileObjective({
    objective: "metrics.p90 / 0.0",
    direction: "maximize",
    constraints: [],
  }).evaluate(trial);
  assert.equal(inf.score, undefined);
  assert.match(inf.error ?? "", /not a finite number/);
});

void test("Verifies that a setting name shared by two components is only reachable through components", () => {
  const o = compileObjective({
    objective: 'components["a"].cpu + components["b"].cpu',
    direction: "maximize",
    constraints: [],
  });
  assert.equal(o.evaluate({ metrics: {}, settings: { a: { cpu: 1 }, b: { cpu: 2 } } }).objective, 3);
  const shared = compileObjective({ objective: "settings.cpu", direction: "maximize", constraints: [] });
  assert.equal(shared.evaluate({ metrics: {}, settings: { a: { cpu: 1 }, b: { cpu: 2 } } }).score, undefined);
});

void test("Verifies that penalised scores put every infeasible trial below every feasible one", () => {
  const scores = penalisedScores([
    { objective: 5, score: 5, feasible: true, violated: [] },
    { objective: 50, score: 50, feasible: false, violated: ["x"] },
    { objective: 3, score: 3, feasible: true, violated: [] },
    { objective: undefined, score: undefined, feasible: false, violated: [] },
    { objective: 1, score: 1, feasible: false, violated: ["x"] },
  ]);
  const [a, b, c, d, e] = scores as [number, number, number, undefined, number];
  assert.equal(a, 5);
  assert.equal(c, 3);
  assert.ok(b < c && e < c, `infeasible ${b}, ${e} not below feasible ${c}`);
  assert.ok(b > e, "infeasible trials should keep their order");
  assert.equal(d, undefined);
});

void test("Verifies that constraints comparing a metric with a constant are recognised as bounds, either way round and in && parts", () => {
  const o = compileObjective({
    objective: "metrics.throughput",
    direction: "maximize",
    constraints: [
      { name: "latency", expression: "metrics.latency_p90 <= 50.0" },
      { expression: "100 < metrics.throughput" },
      { name: "both", expression: 'metrics["p90"] < 150 && metrics.errors <= -1.5' },
      { name: "gc", expression: 'settings.gc == "g1"' },
      { name: "sum", expression: "metrics.a + metrics.b < 3.0" },
      { name: "ratio", expression: "metrics.a <= metrics.b" },
      { name: "either", expression: "metrics.a <= 1.0 || metrics.b <= 1.0" },
    ],
  });
  assert.deepEqual(o.bounds, [
    { key: "latency", metric: "latency_p90", upper: true, limit: 50 },
    { key: "100 < metrics.throughput", metric: "throughput", upper: false, limit: 100 },
    { key: "both#1", metric: "p90", upper: true, limit: 150 },
    { key: "both#2", metric: "errors", upper: true, limit: -1.5 },
  ]);
});

void test("Verifies that slacks grade how far a metric is inside or outside its bound, on a log scale for positive limits", () => {
  const o = compileObjective({
    objective: "metrics.rps",
    direction: "maximize",
    constraints: [
      { name: "latency", expression: "metrics.p90 <= 50.0" },
      { name: "errors", expression: "metrics.error_rate <= 0.5" },
      { name: "rps", expression: "metrics.rps >= 100.0" },
    ],
  });
  const slacks = (metrics: Record<string, number>): Record<string, number> =>
    o.evaluate({ metrics, settings: {} }).slacks ?? {};
  const near = slacks({ p90: 55, error_rate: 0, rps: 120 });
  const far = slacks({ p90: 1192, error_rate: 64.7, rps: 80 });
  const inside = slacks({ p90: 29, error_rate: 0.2, rps: 300 });
  assert.ok((near.latency ?? 0) < 0 && (near.latency ?? 0) > -0.2, `p90 55 ms: ${near.latency}`);
  assert.ok((far.latency ?? 0) < -2, `p90 1192 ms: ${far.latency}`);
  assert.ok((inside.latency ?? 0) > 0);
  // No errors at all is well inside the limit, and finite.
  assert.ok(Number.isFinite(near.errors) && (near.errors ?? 0) > 2);
  assert.ok((far.errors ?? 0) < -4);
  // A lower bound: more is inside.
  assert.ok((inside.rps ?? 0) > 0 && (far.rps ?? 0) < 0);
  // A missing metric has no slack; a study without bounds has none at all.
  assert.equal(slacks({ p90: 40, rps: 120 }).errors, undefined);
  const plain = compileObjective({ objective: "metrics.rps", direction: "maximize", constraints: [] });
  assert.equal(plain.evaluate({ metrics: { rps: 1 }, settings: {} }).slacks, undefined);
});

void test("Verifies that a slack is zero at the limit and relative to it for limits that are not positive", () => {
  const upper = { key: "k", metric: "m", upper: true, limit: 50 };
  assert.ok(Math.abs(constraintSlack(upper, 50)) < 1e-12);
  assert.ok(constraintSlack(upper, 45) > 0 && constraintSlack(upper, 55) < 0);
  assert.equal(constraintSlack({ key: "k", metric: "m", upper: true, limit: -10 }, -15), 0.5);
  assert.equal(constraintSlack({ key: "k", metric: "m", upper: false, limit: 0 }, 2), 2);
});
