/**
 * The search: which settings to try next. Pure: it takes the space, the trials so far and an RNG,
 * and returns a point. The first trial is always the baseline (the current settings); the next
 * few are spread out over the grid; after that a Gaussian process models the objective (and, once
 * a trial has broken a constraint or failed, the chance of being feasible), and the untried grid
 * point with the largest expected improvement times probability of feasibility comes next.
 *
 * Grids are searched as grids: candidates are grid points (random ones, neighbours of the best
 * trials, then a hill climb on the acquisition), pinned settings keep their value, and no point
 * is proposed twice.
 */
import { fitGp, normalCdf, normalPdf, type GpModel } from "./gp.js";
import { randomInt, type Rng } from "./random.js";
import {
  baselinePoint,
  freeDimensions,
  gridIndex,
  gridValue,
  pointKey,
  spaceSize,
  type Dimension,
  type Point,
  type SearchSpace,
} from "./space.js";

/**
 * Observation is one finished trial as the search sees it. `score` is oriented so that larger is
 * better (a minimised objective is negated); it is undefined when the trial produced no usable
 * measurement (the adjust was rejected or failed). `feasible` is false when a constraint failed or
 * there is no score.
 */
export interface Observation {
  point: Point;
  score: number | undefined;
  feasible: boolean;
}

/** SearchOptions tune the search; the defaults suit spaces of up to ~10 settings. */
export interface SearchOptions {
  /** initialPoints is how many space-filling trials follow the baseline. @default min(5, free settings + 1) */
  initialPoints?: number;
  /** randomCandidates is how many random grid points the acquisition scores. @default 1000 */
  randomCandidates?: number;
}

/** SuggestionSource says why a point was proposed. */
export type SuggestionSource = "baseline" | "initial" | "model";

/** Suggestion is the next point to try, and why. */
export interface Suggestion {
  point: Point;
  source: SuggestionSource;
}

/** suggest proposes the next point, or undefined when every point of the space has been tried. */
export function suggest(
  space: SearchSpace,
  observations: readonly Observation[],
  rng: Rng,
  options: SearchOptions = {},
): Suggestion | undefined {
  const tried = new Set(observations.map((o) => pointKey(o.point)));
  if (observations.length === 0) return { point: baselinePoint(space), source: "baseline" };
  const free = freeDimensions(space);
  if (free.length === 0 || tried.size >= spaceSize(space)) return exhaustiveFallback(space, tried);
  const initial = options.initialPoints ?? Math.min(5, free.length + 1);
  const scored = observations.filter((o) => o.score !== undefined);
  if (observations.length <= initial || scored.length < 3) {
    const point = spaceFilling(space, observations, tried, rng);
    return point ? { point, source: "initial" } : exhaustiveFallback(space, tried);
  }
  const acquisition = buildAcquisition(space, observations);
  const point = maximise(space, observations, {
    tried,
    acquisition,
    rng,
    randomCandidates: options.randomCandidates ?? 1000,
  });
  return point ? { point, source: "model" } : exhaustiveFallback(space, tried);
}

// ---------------------------------------------------------------------------------------------
// Encoding

/** encoder maps points to model coordinates: grid values to [0, 1], enums to their index. */
function encoder(space: SearchSpace): { encode: (p: Point) => number[]; categorical: boolean[] } {
  const dims = freeDimensions(space).map((i) => [i, space.dimensions[i] as Dimension] as const);
  return {
    categorical: dims.map(([, d]) => d.kind === "enum"),
    encode: (p) =>
      dims.map(([i, d]) => {
        const v = p[i];
        if (d.kind === "enum") return Math.max(0, d.values.indexOf(v ?? ""));
        if (d.kind !== "grid" || typeof v !== "number") return 0;
        return (v - d.min) / (d.step * (d.count - 1));
      }),
  };
}

// ---------------------------------------------------------------------------------------------
// Candidates

function randomPoint(space: SearchSpace, rng: Rng): Point {
  return space.dimensions.map((d) => {
    if (d.kind === "grid") return gridValue(d, randomInt(rng, d.count));
    if (d.kind === "enum") return d.values[randomInt(rng, d.values.length)] ?? d.baseline;
    return d.baseline;
  });
}

/** neighbours are the points one or two grid steps away in one setting, or another enum value. */
function neighbours(space: SearchSpace, point: Point): Point[] {
  const out: Point[] = [];
  space.dimensions.forEach((d, i) => {
    const v = point[i];
    if (d.kind === "grid" && typeof v === "number") {
      const at = gridIndex(d, v);
      for (const delta of [-2, -1, 1, 2]) {
        const j = at + delta;
        if (j >= 0 && j < d.count) out.push(point.map((x, k) => (k === i ? gridValue(d, j) : x)));
      }
      // An off-grid baseline's nearest grid point is a neighbour too.
      if (gridValue(d, at) !== v) out.push(point.map((x, k) => (k === i ? gridValue(d, at) : x)));
    } else if (d.kind === "enum") {
      for (const e of d.values) if (e !== v) out.push(point.map((x, k) => (k === i ? e : x)));
    }
  });
  return out;
}

/**
 * perturb moves a point by a few grid steps in several settings at once (normal steps, a tenth
 * of each range), so candidates can follow a ridge where two settings must change together.
 */
function perturb(space: SearchSpace, point: Point, rng: Rng): Point {
  return space.dimensions.map((d, i) => {
    const v = point[i] ?? d.baseline;
    if (d.kind === "enum") return rng() < 0.2 ? (d.values[randomInt(rng, d.values.length)] ?? v) : v;
    if (d.kind !== "grid" || typeof v !== "number" || rng() < 0.4) return v;
    const z = Math.sqrt(-2 * Math.log(Math.max(rng(), 1e-12))) * Math.cos(2 * Math.PI * rng());
    const shift = Math.round(z * Math.max(1, 0.1 * d.count)) || (rng() < 0.5 ? -1 : 1);
    return gridValue(d, Math.max(0, Math.min(d.count - 1, gridIndex(d, v) + shift)));
  });
}

function distance(a: number[], b: number[], categorical: boolean[]): number {
  let s = 0;
  for (let d = 0; d < a.length; d++) {
    const diff = categorical[d] ? (a[d] === b[d] ? 0 : 1) : (a[d] ?? 0) - (b[d] ?? 0);
    s += diff * diff;
  }
  return Math.sqrt(s);
}

/** spaceFilling picks, among random untried grid points, the one farthest from every trial. */
function spaceFilling(
  space: SearchSpace,
  observations: readonly Observation[],
  tried: Set<string>,
  rng: Rng,
): Point | undefined {
  const { encode, categorical } = encoder(space);
  const seen = observations.map((o) => encode(o.point));
  let best: { point: Point; d: number } | undefined;
  for (let i = 0; i < 256; i++) {
    const p = randomPoint(space, rng);
    if (tried.has(pointKey(p))) continue;
    const x = encode(p);
    const d = Math.min(...seen.map((s) => distance(s, x, categorical)));
    if (!best || d > best.d) best = { point: p, d };
  }
  return best?.point;
}

/** exhaustiveFallback enumerates a small space for a point not yet tried. */
function exhaustiveFallback(space: SearchSpace, tried: Set<string>): Suggestion | undefined {
  if (spaceSize(space) > 200_000) return undefined;
  const axes = space.dimensions.map((d): (number | string)[] =>
    d.kind === "grid"
      ? Array.from({ length: d.count }, (_, i) => gridValue(d, i))
      : d.kind === "enum"
        ? d.values
        : [d.baseline],
  );
  const index = axes.map(() => 0);
  for (;;) {
    const p = index.map((j, i) => axes[i]?.[j] ?? "");
    if (!tried.has(pointKey(p))) return { point: p, source: "initial" };
    let i = 0;
    for (; i < index.length; i++) {
      index[i] = (index[i] ?? 0) + 1;
      if ((index[i] ?? 0) < (axes[i]?.length ?? 1)) break;
      index[i] = 0;
    }
    if (i === index.length) return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Acquisition

type Acquisition = (p: Point) => number;

/**
 * buildAcquisition is expected improvement over the best feasible score, times the probability
 * of feasibility when any trial so far was infeasible. With no feasible trial yet, it is the
 * probability of feasibility alone (find the feasible region first).
 */
function buildAcquisition(space: SearchSpace, observations: readonly Observation[]): Acquisition {
  const { encode, categorical } = encoder(space);
  const scored = observations.filter((o): o is Observation & { score: number } => o.score !== undefined);
  const warped = warp(scored.map((o) => o.score));
  const objective = fitGp(
    scored.map((o) => encode(o.point)),
    warped,
    categorical,
  );
  const feasibleScores = scored.flatMap((o, i) => (o.feasible ? [warped[i] ?? 0] : []));
  const incumbent = feasibleScores.length > 0 ? Math.max(...feasibleScores) : undefined;
  const anyInfeasible = observations.some((o) => !o.feasible);
  const feasibility: GpModel | undefined = anyInfeasible
    ? fitGp(
        observations.map((o) => encode(o.point)),
        observations.map((o) => (o.feasible ? 1 : -1)),
        categorical,
      )
    : undefined;
  const spread = Math.max(...warped) - Math.min(...warped) || 1;
  return (p) => {
    const x = encode(p);
    const pof = feasibility ? probabilityPositive(feasibility, x) : 1;
    if (incumbent === undefined) return pof;
    const { mean, variance } = objective.predict(x);
    // xi: a little exploration, relative to the spread of scores seen.
    return expectedImprovement(mean, Math.sqrt(variance), incumbent + 0.01 * spread) * pof;
  };
}

/**
 * warp maps scores through their ranks onto normal quantiles (a Gaussian copula). The model then
 * sees evenly spread targets whatever the objective's scale, so a cliff (a pod that thrashes) or
 * one huge ratio does not flatten the rest of the surface.
 */
export function warp(scores: readonly number[]): number[] {
  const n = scores.length;
  return scores.map((s) => {
    let below = 0;
    let equal = 0;
    for (const t of scores) {
      if (t < s) below++;
      else if (t === s) equal++;
    }
    return normalQuantile((below + equal / 2) / n);
  });
}

/** normalQuantile is Φ⁻¹(p) (Acklam's rational approximation, relative error below 1.2e-9). */
export function normalQuantile(p: number): number {
  const q = Math.min(Math.max(p, 1e-9), 1 - 1e-9);
  const a = [
    -39.69683028665376, 220.9460984245205, -275.928510446969, 138.357751867269, -30.66479806614716,
    2.506628277459239,
  ];
  const b = [
    -54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572,
  ];
  const c = [
    -0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968,
    2.938163982698783,
  ];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const poly = (k: number[], x: number): number => k.reduce((acc, v) => acc * x + v, 0);
  if (q < 0.02425) {
    const r = Math.sqrt(-2 * Math.log(q));
    return poly(c, r) / (poly(d, r) * r + 1);
  }
  if (q > 1 - 0.02425) {
    const r = Math.sqrt(-2 * Math.log(1 - q));
    return -poly(c, r) / (poly(d, r) * r + 1);
  }
  const r = q - 0.5;
  const r2 = r * r;
  return (poly(a, r2) * r) / (poly(b, r2) * r2 + 1);
}

function probabilityPositive(model: GpModel, x: number[]): number {
  const { mean, variance } = model.predict(x);
  return normalCdf(mean / Math.sqrt(variance + model.noise));
}

/** expectedImprovement is E[max(0, f - best)] for f ~ N(mean, sd²). */
export function expectedImprovement(mean: number, sd: number, best: number): number {
  if (sd <= 1e-12) return Math.max(0, mean - best);
  const z = (mean - best) / sd;
  return (mean - best) * normalCdf(z) + sd * normalPdf(z);
}

/**
 * maximise scores random grid points and the neighbours of the best trials, then hill-climbs
 * from the best few candidates, one grid step at a time, never landing on a tried point.
 */
function maximise(
  space: SearchSpace,
  observations: readonly Observation[],
  search: { tried: Set<string>; acquisition: Acquisition; rng: Rng; randomCandidates: number },
): Point | undefined {
  const { tried, acquisition, rng, randomCandidates } = search;
  const pool = new Map<string, Point>();
  const add = (p: Point): void => {
    const k = pointKey(p);
    if (!tried.has(k)) pool.set(k, p);
  };
  for (let i = 0; i < randomCandidates; i++) add(randomPoint(space, rng));
  const ranked = observations
    .filter((o) => o.score !== undefined)
    .sort((a, b) => Number(b.feasible) - Number(a.feasible) || (b.score ?? 0) - (a.score ?? 0));
  for (const o of ranked.slice(0, 3)) {
    for (const n of neighbours(space, o.point)) add(n);
    for (let i = 0; i < 100; i++) add(perturb(space, o.point, rng));
  }

  const scored = [...pool.values()].map((p) => ({ p, a: acquisition(p) })).sort((x, y) => y.a - x.a);
  let best = scored[0];
  for (const start of scored.slice(0, 5)) {
    let current = start;
    for (let step = 0; step < 50; step++) {
      let next = current;
      for (const n of neighbours(space, current.p)) {
        if (tried.has(pointKey(n))) continue;
        const a = acquisition(n);
        if (a > next.a) next = { p: n, a };
      }
      if (next === current) break;
      current = next;
    }
    if (!best || current.a > best.a) best = current;
  }
  return best?.p;
}

// ---------------------------------------------------------------------------------------------
// Progress

/** bestIndex is the index of the feasible observation with the largest score, if any. */
export function bestIndex(observations: readonly Observation[]): number | undefined {
  let best: number | undefined;
  observations.forEach((o, i) => {
    if (!o.feasible || o.score === undefined) return;
    const b = best === undefined ? undefined : observations[best]?.score;
    if (b === undefined || o.score > b) best = i;
  });
  return best;
}

/** Convergence says when a study stops improving. */
export interface Convergence {
  /** patience is how many trials in a row may pass without enough improvement. */
  patience: number;
  /** minImprovement is the relative gain over the earlier best that counts as progress. */
  minImprovement: number;
}

/**
 * hasConverged is true when the last `patience` trials did not beat the best score before them
 * by more than `minImprovement` (relative to its magnitude). Studies shorter than patience + 1
 * have not converged.
 */
export function hasConverged(observations: readonly Observation[], convergence: Convergence): boolean {
  const { patience, minImprovement } = convergence;
  if (patience <= 0 || observations.length <= patience) return false;
  const before = observations.slice(0, observations.length - patience);
  const i = bestIndex(before);
  const all = bestIndex(observations);
  if (all === undefined) return false;
  if (i === undefined) return false;
  const earlier = before[i]?.score ?? 0;
  const now = observations[all]?.score ?? 0;
  return now - earlier <= minImprovement * Math.max(Math.abs(earlier), 1e-12);
}
