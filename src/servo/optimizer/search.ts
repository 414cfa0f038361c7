/**
 * The search: which settings to try next. Pure: it takes the space, the trials so far and an RNG,
 * and returns a point. The first trial is always the baseline (the current settings); the next
 * few are spread out over the grid; after that Gaussian processes model the objective and the
 * chance of being feasible, and the untried grid point with the largest expected improvement over
 * the best feasible trial, times the probability of feasibility, comes next.
 *
 * Feasibility is modelled per constraint where it can be: a constraint that bounds a metric
 * (`metrics.latency_p90 <= 50.0`) reports how far inside or outside its limit each trial was (its
 * slack), so a p90 of 55 ms counts as nearly feasible and one of 1200 ms as far from it. What no
 * slack explains (failed trials, other constraints) gets a feasible/infeasible classifier.
 *
 * Once a trial is feasible, proposals stay in a trust region around the best feasible trial (as
 * TuRBO does) that grows after repeated improvements and shrinks after repeated misses, so the
 * search refines the boundary where constrained optima sit instead of probing far corners.
 *
 * Grids are searched as grids: candidates are grid points (random ones in the region, neighbours
 * of the best trials, then a hill climb on the acquisition), pinned settings keep their value, and
 * no point is proposed twice.
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
  /**
   * slacks grade the constraints that bound a metric (Evaluation.slacks): positive inside the
   * limit, negative outside, larger = further. Each key gets its own model.
   */
  slacks?: Readonly<Record<string, number>>;
}

/** SearchOptions tune the search; the defaults suit spaces of up to ~10 settings. */
export interface SearchOptions {
  /**
   * initialPoints is how many space-filling trials follow the baseline.
   * @default min(5, free settings + 1); 2 when the baseline met graded constraints (initialDesign)
   */
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
  const initial = options.initialPoints ?? initialDesign(free.length, observations);
  const scored = observations.filter((o) => o.score !== undefined);
  if (observations.length <= initial || scored.length < 3) {
    const point = spaceFilling(space, observations, tried, rng);
    return point ? { point, source: "initial" } : exhaustiveFallback(space, tried);
  }
  const model = buildAcquisition(space, observations);
  const region = trustRegion(space, observations, initial, model);
  const point = maximise(space, observations, {
    tried,
    acquisition: model.acquisition,
    rng,
    randomCandidates: options.randomCandidates ?? 1000,
    region,
  });
  return point ? { point, source: "model" } : exhaustiveFallback(space, tried);
}

/**
 * initialDesign is how many space-filling trials follow the baseline: one more than the free
 * settings, up to 5, so the first model has seen every direction. When the baseline met graded
 * constraints (constraints on metrics, see Observation.slacks) it is 2, the fewest a model is fitted
 * on: a feasible baseline is a place to search from, constrained optima sit on an SLO's boundary
 * near it more often than in a far corner, and every trial, spread out or not, also teaches the
 * constraint models where the boundary is.
 */
export function initialDesign(free: number, observations: readonly Observation[]): number {
  const baseline = observations[0];
  if (baseline?.feasible && Object.keys(baseline.slacks ?? {}).length > 0) return 2;
  return Math.min(5, free + 1);
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
 * of feasibility. Every graded constraint (a metric against a limit, see Observation.slacks) gets a
 * model of its slack, and the chance that the slack is positive; whatever infeasibility the
 * slacks do not explain (a failed trial, a constraint on something other than a metric) gets a
 * classifier, once there is any. With no feasible trial yet, it is the probability of feasibility
 * alone (find the feasible region first).
 */
function buildAcquisition(
  space: SearchSpace,
  observations: readonly Observation[],
): { acquisition: Acquisition; lengthscales: number[]; incumbent: Point | undefined } {
  const { encode, categorical } = encoder(space);
  const scored = observations.filter((o): o is Observation & { score: number } => o.score !== undefined);
  const warped = warp(scored.map((o) => o.score));
  const objective = fitGp(
    scored.map((o) => encode(o.point)),
    warped,
    categorical,
  );
  const feasibility = feasibilityModel(observations, encode, categorical);
  // The incumbent is the best feasible trial the feasibility model believes: a point measured
  // just inside a limit whose neighbours all broke it was probably lucky, and improving on a
  // lucky measurement means chasing noise. When the model believes none, every feasible trial counts.
  const feasibleAt = scored.flatMap((o, i) => (o.feasible ? [i] : []));
  const believed = feasibleAt.filter((i) => feasibility.probability(encode(scored[i]?.point ?? [])) >= 0.5);
  const pick = believed.length > 0 ? believed : feasibleAt;
  const top = pick.reduce<number | undefined>(
    (b, i) => (b === undefined || (warped[i] ?? 0) > (warped[b] ?? 0) ? i : b),
    undefined,
  );
  const incumbent = top === undefined ? undefined : warped[top];
  const incumbentPoint = top === undefined ? undefined : scored[top]?.point;
  const spread = Math.max(...warped) - Math.min(...warped) || 1;
  // A setting matters if it matters to any model: the shortest lengthscale shapes the trust region.
  const lengthscales = objective.lengthscales.map((l, d) =>
    Math.min(l, ...feasibility.models.map((m) => m.lengthscales[d] ?? l)),
  );
  const acquisition: Acquisition = (p) => {
    const x = encode(p);
    const f = feasibility.probability(x);
    if (incumbent === undefined) return f;
    const { mean, variance } = objective.predict(x);
    // xi: a little exploration, relative to the spread of scores seen.
    return expectedImprovement(mean, Math.sqrt(variance), incumbent + 0.01 * spread) * f;
  };
  return { acquisition, lengthscales, incumbent: incumbentPoint };
}

/**
 * SLACK_RANGE bounds the slacks the constraint models see (log ratios for positive limits: 0.5 is
 * a factor of 1.65, so a 50 ms limit is resolved from ~28 ms to ~86 ms). Beyond it, "how far"
 * stops mattering: a stationary model fitted to a queue's cliff (p90 from 50 ms to 10 s) would
 * smooth the boundary away, and the search only needs to know where the boundary is and which
 * side of it a point is on.
 */
const SLACK_RANGE = 0.5;

/**
 * feasibilityModel is the probability that a (encoded) point is feasible: the product of one
 * slack model per graded constraint and a classifier for the infeasible trials no slack explains.
 * It is 1 everywhere when nothing has been infeasible and no constraint is graded.
 *
 * A slack model is pessimistic: away from every trial it predicts the constraint broken (its prior
 * mean is -SLACK_RANGE), so the search moves out from the points known to be feasible instead of
 * betting on unexplored corners where the objective looks good (cheap settings that cannot keep
 * the SLO). Its probability is that of the true slack, without measurement noise: a point just
 * outside a limit does not become attractive because a noisy measurement might pass it.
 */
export function feasibilityModel(
  observations: readonly Observation[],
  encode: (p: Point) => number[],
  categorical: boolean[],
): { probability: (x: number[]) => number; models: GpModel[] } {
  const keys = [...new Set(observations.flatMap((o) => Object.keys(o.slacks ?? {})))].sort();
  const slackModels = keys.map((k) => {
    const seen = observations.filter((o) => o.slacks?.[k] !== undefined);
    return fitGp(
      seen.map((o) => encode(o.point)),
      seen.map((o) => Math.min(SLACK_RANGE, Math.max(-SLACK_RANGE, o.slacks?.[k] ?? 0))),
      categorical,
      { priorMean: -SLACK_RANGE },
    );
  });
  // An infeasible trial with a negative slack is explained by that slack's model.
  const explained = (o: Observation): boolean =>
    o.feasible || Object.values(o.slacks ?? {}).some((v) => v <= 0);
  const classifier: GpModel | undefined = observations.some((o) => !explained(o))
    ? fitGp(
        observations.map((o) => encode(o.point)),
        observations.map((o) => (explained(o) ? 1 : -1)),
        categorical,
      )
    : undefined;
  return {
    models: classifier ? [...slackModels, classifier] : slackModels,
    probability: (x) => {
      let p = classifier ? probabilityPositive(classifier, x) : 1;
      for (const m of slackModels) p *= probabilityPositive(m, x, false);
      return p;
    },
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

function probabilityPositive(model: GpModel, x: number[], withNoise = true): number {
  const { mean, variance } = model.predict(x);
  return normalCdf(mean / Math.sqrt(variance + (withNoise ? model.noiseVariance : 0)));
}

/** expectedImprovement is E[max(0, f - best)] for f ~ N(mean, sd²). */
export function expectedImprovement(mean: number, sd: number, best: number): number {
  if (sd <= 1e-12) return Math.max(0, mean - best);
  const z = (mean - best) / sd;
  return (mean - best) * normalCdf(z) + sd * normalPdf(z);
}

interface MaximiseOptions {
  tried: Set<string>;
  acquisition: Acquisition;
  rng: Rng;
  randomCandidates: number;
  region: TrustRegion | undefined;
}

/**
 * candidates are the untried points the acquisition scores first: random points in the trust
 * region and the neighbours of its centre; or, with no region, random points of the whole space
 * and the neighbours and perturbations of the best three trials.
 */
function candidates(space: SearchSpace, observations: readonly Observation[], o: MaximiseOptions): Point[] {
  const { tried, rng, randomCandidates, region } = o;
  const pool = new Map<string, Point>();
  const add = (p: Point): void => {
    const k = pointKey(p);
    if (!tried.has(k) && (!region || region.contains(p))) pool.set(k, p);
  };
  if (region) {
    for (let i = 0; i < randomCandidates; i++) add(region.sample(rng));
    for (const n of neighbours(space, region.centre)) add(n);
    return [...pool.values()];
  }
  for (let i = 0; i < randomCandidates; i++) add(randomPoint(space, rng));
  const ranked = observations
    .filter((ob) => ob.score !== undefined)
    .sort((a, b) => Number(b.feasible) - Number(a.feasible) || (b.score ?? 0) - (a.score ?? 0));
  for (const ob of ranked.slice(0, 3)) {
    for (const n of neighbours(space, ob.point)) add(n);
    for (let i = 0; i < 100; i++) add(perturb(space, ob.point, rng));
  }
  return [...pool.values()];
}

/**
 * maximise scores the candidates, then hill-climbs from the best few, one grid step at a time,
 * never landing on a tried point or leaving the trust region.
 */
function maximise(
  space: SearchSpace,
  observations: readonly Observation[],
  search: MaximiseOptions,
): Point | undefined {
  const { tried, acquisition, region } = search;
  const scored = candidates(space, observations, search)
    .map((p) => ({ p, a: acquisition(p) }))
    .sort((x, y) => y.a - x.a);
  let best = scored[0];
  for (const start of scored.slice(0, 5)) {
    let current = start;
    for (let step = 0; step < 50; step++) {
      let next = current;
      for (const n of neighbours(space, current.p)) {
        if (tried.has(pointKey(n)) || (region && !region.contains(n))) continue;
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
// Trust region

/** TrustRegion is a box around the best feasible trial that the model's proposals must stay in. */
export interface TrustRegion {
  centre: Point;
  /** length is the box's side in encoded units (each grid spans 1), before per-setting scaling. */
  length: number;
  contains(p: Point): boolean;
  sample(rng: Rng): Point;
}

/** Trust-region schedule (TuRBO's, for one proposal at a time). */
const REGION = { initial: 0.8, min: 0.5 ** 5, max: 1.6, successes: 3 } as const;

/**
 * regionLength replays the trials since the initial design: a trial that beats the best feasible
 * score so far is a success, anything else a failure; `successes` in a row double the length,
 * `failures` in a row halve it. Below the minimum the region collapses: undefined, one global
 * proposal, then it starts again at the initial length.
 */
export function regionLength(
  observations: readonly Observation[],
  start: number,
  failures: number,
): number | undefined {
  let best: number | undefined;
  let length: number = REGION.initial;
  let wins = 0;
  let losses = 0;
  let collapsed = false;
  observations.forEach((o, i) => {
    const improved =
      o.feasible &&
      o.score !== undefined &&
      (best === undefined || o.score > best + 1e-9 * Math.max(1, Math.abs(best)));
    if (i >= start) {
      if (collapsed) {
        length = REGION.initial;
        collapsed = false;
        wins = 0;
        losses = 0;
      } else if (improved) {
        wins++;
        losses = 0;
      } else {
        losses++;
        wins = 0;
      }
      if (wins >= REGION.successes) {
        length = Math.min(REGION.max, 2 * length);
        wins = 0;
      }
      if (losses >= failures) {
        length /= 2;
        losses = 0;
      }
      if (length < REGION.min) collapsed = true;
    }
    if (improved && o.score !== undefined) best = o.score;
  });
  return collapsed ? undefined : length;
}

/**
 * trustRegion is the box the next proposal must lie in, around the best feasible trial, or
 * undefined when there is no feasible trial yet (or the region just collapsed). Its side is
 * `length` scaled per setting by the models' lengthscales (relative to their geometric mean), so
 * a setting the models find smooth gets a wider range; an enum setting may change with a
 * probability that grows with the length.
 */
function trustRegion(
  space: SearchSpace,
  observations: readonly Observation[],
  initial: number,
  model: { lengthscales: readonly number[]; incumbent: Point | undefined },
): TrustRegion | undefined {
  const { lengthscales, incumbent: centre } = model;
  if (!centre) return undefined;
  const free = freeDimensions(space);
  const length = regionLength(observations, initial + 1, Math.max(4, free.length));
  if (length === undefined) return undefined;
  const logs = lengthscales.map((l) => Math.log(l));
  const geo = Math.exp(logs.reduce((a, v) => a + v, 0) / Math.max(1, logs.length));
  const bounds = new Map<number, { lo: number; hi: number; change: number }>();
  free.forEach((i, j) => {
    const d = space.dimensions[i];
    const weight = (lengthscales[j] ?? geo) / geo;
    if (d?.kind === "grid") {
      const at = gridIndex(d, centre[i] as number);
      // At least one grid step either way, so the region never shrinks to its centre.
      const half = Math.max(1, Math.round((length * weight * (d.count - 1)) / 2));
      bounds.set(i, { lo: Math.max(0, at - half), hi: Math.min(d.count - 1, at + half), change: 1 });
    } else if (d?.kind === "enum") {
      bounds.set(i, { lo: 0, hi: d.values.length - 1, change: Math.min(1, (length * weight) / 2) });
    }
  });
  return {
    centre,
    length,
    contains: (p) =>
      space.dimensions.every((d, i) => {
        const r = bounds.get(i);
        if (!r || d.kind !== "grid") return true;
        const at = gridIndex(d, p[i] as number);
        return at >= r.lo && at <= r.hi;
      }),
    sample: (rng) =>
      space.dimensions.map((d, i) => {
        const r = bounds.get(i);
        const v = centre[i] ?? d.baseline;
        if (!r) return v;
        if (d.kind === "grid") return gridValue(d, r.lo + randomInt(rng, r.hi - r.lo + 1));
        if (d.kind === "enum" && rng() < r.change) return d.values[randomInt(rng, d.values.length)] ?? v;
        return v;
      }),
  };
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
