import { test } from "node:test";
import assert from "node:assert/strict";
import { parseDescriptor } from "../protocol.js";
import { mixSeed, seededRng } from "./random.js";
import { hasConverged, suggest, warp, type Observation } from "./search.js";
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
