import { test } from "node:test";
import assert from "node:assert/strict";
import { expectedPerformance, gaussian } from "../connectors/synthetic.js";
import { parseDescriptor } from "../protocol.js";
import { compileObjective } from "./objective.js";
import { mixSeed, seededRng } from "./random.js";
import {
  feasibilityModel,
  hasConverged,
  initialDesign,
  regionLength,
  suggest,
  warp,
  type Observation,
} from "./search.js";
import { gridValue, pointKey, spaceFromDescriptor, spaceSize, toSettingValues, type Point } from "./space.js";

const descriptor = parseDescriptor({
  application: {
    components: {
      web: {
        settings: {
          cpu: { type: "range", min: 0.25, max: 2, step: 0.25, value: 1, unit: "cores" },
          mem: { type: "range", min: 0.5, max: 4, step: 0.5, value: 1.3, unit: "GiB" },
          replicas: { type: "range", min: 1, max: 4, step: 1, value: 2, pinned: true },
          gc: { type: "enum", values: ["g1", "parallel", "serial"], value: "g1" },
        },
      },
    },
  },
});
const space = spaceFromDescriptor(descriptor);

/** score is a smooth bowl with its peak at cpu 1.5, mem 2.5, gc parallel. */
function score(p: Point): number {
  const [cpu, mem, , gc] = p as [number, number, number, string];
  return 10 - (cpu - 1.5) ** 2 * 4 - (mem - 2.5) ** 2 - (gc === "parallel" ? 0 : 1.5);
}

function run(trials: number, seed: number, feasible: (p: Point) => boolean = () => true): Observation[] {
  const history: Observation[] = [];
  for (let i = 0; i < trials; i++) {
    const s = suggest(space, history, seededRng(mixSeed(seed, i)));
    if (!s) break;
    history.push({ point: s.point, score: score(s.point), feasible: feasible(s.point) });
  }
  return history;
}

void test("Verifies that the space has grids from the descriptor and that pinned settings are pinned", () => {
  const kinds = space.dimensions.map((d) => `${d.setting}:${d.kind}`);
  assert.deepEqual(kinds, ["cpu:grid", "mem:grid", "replicas:pinned", "gc:enum"]);
  const cpu = space.dimensions[0];
  assert.ok(cpu?.kind === "grid");
  assert.equal(cpu.count, 8);
  assert.equal(gridValue(cpu, 7), 2);
  assert.equal(spaceSize(space), 8 * 8 * 3);
  assert.deepEqual(toSettingValues(space, [1, 2, 2, "g1"]), { web: { cpu: 1, mem: 2, gc: "g1" } });
  assert.deepEqual(toSettingValues(space, [1, 2, 2, "g1"], true), {
    web: { cpu: 1, mem: 2, replicas: 2, gc: "g1" },
  });
});

void test("Verifies that the first suggestion is the baseline, even off the grid", () => {
  const first = suggest(space, [], seededRng(1));
  assert.deepEqual(first, { point: [1, 1.3, 2, "g1"], source: "baseline" });
});

void test("Verifies that every suggestion is on the grid, keeps pinned values and never repeats", () => {
  const history = run(40, 3, (p) => (p[0] as number) > 0.5);
  const seen = new Set<string>();
  history.forEach((o, i) => {
    const [cpu, mem, replicas, gc] = o.point as [number, number, number, string];
    assert.equal(replicas, 2, "pinned replicas changed");
    if (i > 0) {
      assert.ok(Number.isInteger(cpu / 0.25) && cpu >= 0.25 && cpu <= 2, `cpu ${cpu} off the grid`);
      assert.ok(Number.isInteger(mem / 0.5) && mem >= 0.5 && mem <= 4, `mem ${mem} off the grid`);
    }
    assert.ok(["g1", "parallel", "serial"].includes(gc));
    assert.ok(!seen.has(pointKey(o.point)), `repeated ${pointKey(o.point)}`);
    seen.add(pointKey(o.point));
  });
});

void test("Verifies that the same seed and history give the same suggestion", () => {
  const history = run(8, 5);
  const a = suggest(space, history, seededRng(42));
  const b = suggest(space, history, seededRng(42));
  assert.deepEqual(a, b);
  assert.equal(a?.source, "model");
});

void test("Verifies that the model finds the peak of a bowl in fewer trials than random search needs on average", () => {
  // 192 points; random search needs ~96 trials on average to hit the single peak.
  const hits = [1, 2, 3].map((seed) => run(30, seed).findIndex((o) => score(o.point) === 10));
  for (const h of hits) assert.ok(h >= 0 && h < 30, `peak not found within 30 trials: ${hits.join(",")}`);
});

void test("Verifies that the search avoids an infeasible region once it has seen it", () => {
  const feasible = (p: Point): boolean => (p[0] as number) <= 1.25;
  const history = run(30, 7, feasible);
  const late = history.slice(15);
  const infeasible = late.filter((o) => !o.feasible).length;
  assert.ok(infeasible <= 4, `${infeasible} of the last 15 trials were infeasible`);
  const best = Math.max(...history.filter((o) => o.feasible).map((o) => o.score ?? -Infinity));
  assert.equal(best, score([1.25, 2.5, 2, "parallel"]));
});

void test("Verifies that a space with one point left is finished after it", () => {
  const tiny = spaceFromDescriptor(
    parseDescriptor({
      application: {
        components: { a: { settings: { x: { type: "range", min: 1, max: 2, step: 1, value: 1 } } } },
      },
    }),
  );
  const history: Observation[] = [];
  for (let i = 0; i < 2; i++) {
    const s = suggest(tiny, history, seededRng(i));
    assert.ok(s);
    history.push({ point: s.point, score: i, feasible: true });
  }
  assert.deepEqual(
    history.map((o) => o.point),
    [[1], [2]],
  );
  assert.equal(suggest(tiny, history, seededRng(9)), undefined);
});

void test("Verifies that convergence needs `patience` trials without relative improvement", () => {
  const obs = (scores: number[]): Observation[] =>
    scores.map((s) => ({ point: [s], score: s, feasible: true }));
  const patience = { patience: 3, minImprovement: 0.01 };
  assert.equal(hasConverged(obs([1, 5, 5, 5]), patience), false);
  assert.equal(hasConverged(obs([1, 5, 5, 5, 5.04]), patience), true);
  assert.equal(hasConverged(obs([1, 5, 5, 5, 5.1]), patience), false);
  assert.equal(hasConverged(obs([1, 5, 5]), patience), false);
  assert.equal(hasConverged(obs([1, 5, 5, 5, 5]), { patience: 0, minImprovement: 0 }), false);
});

void test("Verifies that the copula warp keeps the order of scores and spreads them evenly", () => {
  const w = warp([1, 1000, 2, 3]);
  assert.ok((w[0] ?? 0) < (w[2] ?? 0) && (w[2] ?? 0) < (w[3] ?? 0) && (w[3] ?? 0) < (w[1] ?? 0));
  assert.ok(Math.abs((w[0] ?? 0) + (w[1] ?? 0)) < 1e-9, "warped ranks are not symmetric around 0");
});

void test("Verifies that graded constraints make a near miss look more feasible than a far miss, where a classifier cannot tell them apart", () => {
  // One setting in [0, 1]: feasible at 0.5, broken at 0.2 (p90 55 ms against 50) and at 0.8
  // (p90 1200 ms). The points between are equally far from both.
  const encode = (p: Point): number[] => [p[0] as number];
  const graded: Observation[] = [
    { point: [0.5], score: 1, feasible: true, slacks: { latency: 0.4 } },
    { point: [0.2], score: 2, feasible: false, slacks: { latency: -0.09 } },
    { point: [0.8], score: 2, feasible: false, slacks: { latency: -3.1 } },
  ];
  const model = feasibilityModel(graded, encode, [false]);
  const towardNear = model.probability([0.3]);
  const towardFar = model.probability([0.7]);
  assert.ok(towardNear > towardFar + 0.1, `near side ${towardNear}, far side ${towardFar}`);
  const binary = feasibilityModel(
    graded.map(({ point, score, feasible }) => ({ point, score, feasible })),
    encode,
    [false],
  );
  assert.ok(Math.abs(binary.probability([0.3]) - binary.probability([0.7])) < 1e-6);
});

void test("Verifies that an infeasible trial no slack explains (a failed trial) is still learnt by a classifier", () => {
  const encode = (p: Point): number[] => [p[0] as number];
  const observations: Observation[] = [
    { point: [0.1], score: 1, feasible: true, slacks: { latency: 0.4 } },
    { point: [0.2], score: 1, feasible: true, slacks: { latency: 0.4 } },
    { point: [0.9], score: undefined, feasible: false },
  ];
  const model = feasibilityModel(observations, encode, [false]);
  assert.ok(model.probability([0.9]) < 0.5, `failed point: ${model.probability([0.9])}`);
  assert.ok(model.probability([0.15]) > model.probability([0.9]));
});

void test("Verifies that the trust region doubles after 3 improvements in a row, halves after `failures` misses, and collapses then restarts", () => {
  const obs = (scores: number[]): Observation[] =>
    scores.map((s, i) => ({ point: [i], score: s, feasible: true }));
  assert.equal(regionLength(obs([1]), 0, 4), 0.8);
  assert.equal(regionLength(obs([1, 2, 3]), 0, 4), 1.6);
  assert.equal(regionLength(obs([1, 2, 3, 4, 5, 6]), 0, 4), 1.6, "capped");
  assert.equal(regionLength(obs([5, 1, 1, 1]), 0, 4), 0.8);
  assert.equal(regionLength(obs([5, 1, 1, 1, 1]), 0, 4), 0.4);
  // The first `start` trials (baseline and initial design) do not count.
  assert.equal(regionLength(obs([5, 1, 1, 1, 1]), 2, 4), 0.8);
  // 0.8 halves to 0.025 (below the minimum) after 4 * 5 misses: one global proposal, then anew.
  const misses = [5, ...new Array<number>(19).fill(1)];
  assert.equal(regionLength(obs(misses), 0, 4), 0.05);
  assert.equal(regionLength(obs([...misses, 1]), 0, 4), undefined);
  assert.equal(regionLength(obs([...misses, 1, 1]), 0, 4), 0.8);
  // An infeasible trial is a miss whatever its score.
  assert.equal(
    regionLength(
      [1, 9, 9, 9, 9].map((s, i) => ({ point: [i], score: s, feasible: i === 0 })),
      0,
      4,
    ),
    0.4,
  );
});

void test("Verifies that the initial design is shorter after a baseline that met graded constraints", () => {
  const baseline = (o: Partial<Observation>): Observation[] => [
    { point: [], score: 1, feasible: true, ...o },
  ];
  assert.equal(initialDesign(3, baseline({ slacks: { latency: 0.3 } })), 2);
  assert.equal(initialDesign(3, baseline({})), 4);
  assert.equal(initialDesign(8, baseline({})), 5);
  assert.equal(initialDesign(3, baseline({ feasible: false, slacks: { latency: -0.3 } })), 4);
});

// The demo's problem (examples/servo/demo.yaml on the simulated workload): minimise cpu + mem/4
// subject to p90 <= 50 ms and errors <= 0.5%, from cpu 1, mem 1, COMMIT_DELAY 20. The cheap corner
// is infeasible and the optimum (cpu 0.75, mem 0.75, COMMIT_DELAY 50, cost 0.9375) is on the
// latency boundary near the baseline.
const demoSpace = spaceFromDescriptor(
  parseDescriptor({
    application: {
      components: {
        tuning: {
          settings: {
            cpu: { type: "range", min: 0.125, max: 2, step: 0.125, value: 1 },
            mem: { type: "range", min: 0.125, max: 2, step: 0.125, value: 1 },
            COMMIT_DELAY: { type: "range", min: 1, max: 100, step: 1, value: 20 },
          },
        },
      },
    },
  }),
);
const demoObjective = compileObjective({
  objective: "settings.cpu + 0.25 * settings.mem",
  direction: "minimize",
  constraints: [
    { name: "latency", expression: "metrics.latency_p90 <= 50.0" },
    { name: "errors", expression: "metrics.error_rate <= 0.5" },
  ],
});

function demoRun(seed: number, trials: number): { point: Point; cost: number; feasible: boolean }[] {
  const noise = gaussian(seed);
  const history: Observation[] = [];
  const out: { point: Point; cost: number; feasible: boolean }[] = [];
  for (let i = 0; i < trials; i++) {
    const s = suggest(demoSpace, history, seededRng(mixSeed(seed, i)));
    assert.ok(s);
    const [cpu, mem, delay] = s.point as [number, number, number];
    const truth = expectedPerformance(cpu, mem, delay, { loadRps: 300 });
    const metrics = Object.fromEntries(
      Object.entries(truth).map(([k, v]) => [k, Math.max(0, v * (1 + 0.02 * noise()))]),
    );
    const e = demoObjective.evaluate({ metrics, settings: toSettingValues(demoSpace, s.point) });
    history.push({
      point: s.point,
      score: e.score,
      feasible: e.feasible,
      ...(e.slacks ? { slacks: e.slacks } : {}),
    });
    const cost = cpu + 0.25 * mem;
    out.push({ point: s.point, cost, feasible: truth.latency_p90 <= 50 && truth.error_rate <= 0.5 });
  }
  return out;
}

void test("Verifies that on the demo's problem 16 trials find a feasible point within 5% of the optimum, without returning to the infeasible cheap corner", () => {
  const reached = [1, 2, 3, 4].map((seed) => {
    const run = demoRun(seed, 16);
    const corner = run.filter((t) => (t.point[0] as number) <= 0.25 && (t.point[1] as number) <= 0.25);
    assert.ok(corner.length <= 1, `seed ${seed}: the cheap corner was tried ${corner.length} times`);
    return run.findIndex((t) => t.feasible && t.cost <= 0.9375 * 1.05);
  });
  assert.ok(
    reached.every((r) => r >= 0),
    `trials to within 5% of the optimum per seed (-1: not within 16): ${reached.join(", ")}`,
  );
});
