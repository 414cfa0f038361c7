/**
 * The benchmark's in-process methods (ours and random search) and the grid helpers shared with
 * the Optuna runner. Every method starts with the baseline, sees noisy measurements, and is scored
 * on the true value of what it tried: the number of trials until one is feasible and within 5% of
 * the optimum.
 */
import { compileObjective, type CompiledObjective } from "../../src/servo/optimizer/objective.js";
import { mixSeed, seededRng, type Rng } from "../../src/servo/optimizer/random.js";
import { suggest, type Observation } from "../../src/servo/optimizer/search.js";
import {
  baselinePoint,
  gridValue,
  pointKey,
  spaceFromDescriptor,
  toSettingValues,
  type Point,
  type SearchSpace,
} from "../../src/servo/optimizer/space.js";
import type { Outcome, Surface } from "./surfaces.js";

/** axes lists every value of every dimension (pinned ones have one). */
export function axes(space: SearchSpace): (number | string)[][] {
  return space.dimensions.map((d) =>
    d.kind === "grid"
      ? Array.from({ length: d.count }, (_, i) => gridValue(d, i))
      : d.kind === "enum"
        ? d.values
        : [d.baseline],
  );
}

/** valuesOf names a point's values by setting. */
export function valuesOf(space: SearchSpace, point: Point): Record<string, number | string> {
  return Object.fromEntries(space.dimensions.map((d, i) => [d.setting, point[i] ?? d.baseline]));
}

/** forEachPoint visits every point of the grid in row-major order (first dimension slowest). */
export function forEachPoint(space: SearchSpace, visit: (p: Point) => void): void {
  const ax = axes(space);
  const index = ax.map(() => 0);
  for (;;) {
    visit(index.map((j, i) => ax[i]?.[j] ?? ""));
    let i = ax.length - 1;
    for (; i >= 0; i--) {
      index[i] = (index[i] ?? 0) + 1;
      if ((index[i] ?? 0) < (ax[i]?.length ?? 1)) break;
      index[i] = 0;
    }
    if (i < 0) return;
  }
}

/** optimum is the best feasible true objective on the grid. */
export function optimum(surface: Surface): number {
  const space = spaceFromDescriptor(surface.descriptor);
  const sign = surface.direction === "maximize" ? 1 : -1;
  let best = -Infinity;
  forEachPoint(space, (p) => {
    const o = surface.evaluate(valuesOf(space, p));
    if (o.feasible) best = Math.max(best, sign * o.objective);
  });
  return sign * best;
}

/** reached says whether a true outcome is feasible and within 5% of the optimum. */
export function reached(surface: Surface, best: number, o: Outcome): boolean {
  if (!o.feasible) return false;
  return surface.direction === "maximize"
    ? o.objective >= best - 0.05 * Math.abs(best)
    : o.objective <= best + 0.05 * Math.abs(best);
}

function gaussian(rng: Rng): number {
  const u = Math.max(rng(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng());
}

/** Method proposes the next point from the noisy history; undefined means it has nothing left. */
export type Method = (space: SearchSpace, history: Observation[], seed: number) => Point | undefined;

/** ours is the optimizer's search, seeded per trial as the optimizer seeds it. */
export const ours: Method = (space, history, seed) =>
  suggest(space, history, seededRng(mixSeed(seed, history.length)))?.point;

/** randomSearch is the baseline, then uniform grid points without repeats. */
export const randomSearch: Method = (space, history, seed) => {
  if (history.length === 0) return baselinePoint(space);
  const rng = seededRng(mixSeed(seed, history.length, 7));
  const tried = new Set(history.map((h) => pointKey(h.point)));
  const ax = axes(space);
  for (let i = 0; i < 10_000; i++) {
    const p = ax.map((a) => a[Math.floor(rng() * a.length)] ?? "");
    if (!tried.has(pointKey(p))) return p;
  }
  return undefined;
};

/** studyObjective compiles a surface's study, if it has one. */
export function studyObjective(surface: Surface): CompiledObjective | undefined {
  const study = surface.study;
  if (!study) return undefined;
  return compileObjective({
    objective: study.objective,
    direction: surface.direction,
    constraints: study.constraints,
  });
}

/**
 * measure is what the search sees of one trial. A surface with a study reports its metrics, each
 * with noise, scored by the study's expressions (so feasibility and the constraint slacks come
 * from the noisy metrics, as in a real study); otherwise the true objective gets noise and the true
 * feasibility is reported.
 */
function measure(
  run: { surface: Surface; compiled: CompiledObjective | undefined; space: SearchSpace; noise: Rng },
  point: Point,
  truth: Outcome,
): Observation {
  const { surface, compiled, space, noise } = run;
  const study = surface.study;
  if (study && compiled) {
    const metrics = Object.fromEntries(
      Object.entries(study.metrics(valuesOf(space, point))).map(([k, v]) => [
        k,
        Math.max(0, v * (1 + surface.noise * gaussian(noise))),
      ]),
    );
    const e = compiled.evaluate({ metrics, settings: toSettingValues(space, point, true) });
    const o: Observation = { point, score: e.score, feasible: e.feasible };
    if (e.slacks) o.slacks = e.slacks;
    return o;
  }
  const sign = surface.direction === "maximize" ? 1 : -1;
  const measured = truth.objective * (1 + surface.noise * gaussian(noise));
  return { point, score: sign * measured, feasible: truth.feasible };
}

/**
 * trialsToTarget runs one method on one surface and returns how many trials it took to try a
 * point within 5% of the optimum, or undefined if it did not within maxTrials.
 */
export function trialsToTarget(
  surface: Surface,
  best: number,
  method: Method,
  seed: number,
  maxTrials: number,
): number | undefined {
  const space = spaceFromDescriptor(surface.descriptor);
  const run = { surface, space, compiled: studyObjective(surface), noise: seededRng(mixSeed(seed, 99)) };
  const history: Observation[] = [];
  for (let t = 1; t <= maxTrials; t++) {
    const point = method(space, history, seed);
    if (!point) return undefined;
    const truth = surface.evaluate(valuesOf(space, point));
    if (reached(surface, best, truth)) return t;
    history.push(measure(run, point, truth));
  }
  return undefined;
}
