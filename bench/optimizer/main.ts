/**
 * Optimizer benchmark: on each surface, over 20 seeds, how many trials each method needs before
 * it tries a point that is feasible and within 5% of the optimum. Methods: ours (the local
 * optimizer's search), random search over the grid, and Optuna's TPE sampler (Python, in a local
 * virtualenv created on first run under bench/optimizer/.venv). All three start from the baseline
 * and see the same noise model. Prints median and p90 per method per surface; a run that does not
 * get there within MAX_TRIALS counts as "more than MAX_TRIALS".
 *
 * A surface with a study (rps/cost under SLO, demo) reports metrics: each is measured with noise and
 * scored by the study's CEL objective and constraints, so feasibility is measured too. Ours sees
 * the constraint metrics through the constraints' slacks; Optuna gets the same information as
 * graded constraint values (relative violation, <= 0 when met).
 *
 * Run: npx tsx bench/optimizer/main.ts [--seeds N] [--max-trials N] [--no-optuna] [--surface TEXT]
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { spaceFromDescriptor } from "../../src/servo/optimizer/space.js";
import {
  axes,
  forEachPoint,
  optimum,
  ours,
  randomSearch,
  studyObjective,
  trialsToTarget,
  valuesOf,
  type Method,
} from "./methods.js";
import { SURFACES, type Surface } from "./surfaces.js";

const here = dirname(fileURLToPath(import.meta.url));
const OPTUNA_VERSION = "5.0.0";

interface Options {
  seeds: number;
  maxTrials: number;
  optuna: boolean;
  /** surface keeps only the surfaces whose name contains it. */
  surface: string;
}

function parseArgs(argv: string[]): Options {
  const opts: Options = { seeds: 20, maxTrials: 100, optuna: true, surface: "" };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--seeds") opts.seeds = Number(argv[++i]);
    else if (a === "--max-trials") opts.maxTrials = Number(argv[++i]);
    else if (a === "--no-optuna") opts.optuna = false;
    else if (a === "--surface") opts.surface = argv[++i] ?? "";
    else throw new Error(`unknown argument ${a}: use --seeds N, --max-trials N, --no-optuna, --surface TEXT`);
  }
  return opts;
}

/** Result is one method's trials-to-target per seed (undefined: not within maxTrials). */
type Result = (number | undefined)[];

function runMethod(
  method: Method,
  surface: Surface,
  best: number,
  opts: Options,
): { result: Result; ms: number } {
  const start = performance.now();
  const result: Result = [];
  for (let seed = 1; seed <= opts.seeds; seed++)
    result.push(trialsToTarget(surface, best, method, seed, opts.maxTrials));
  return { result, ms: performance.now() - start };
}

/** ensureOptuna creates bench/optimizer/.venv with Optuna unless it is already there; returns its python. */
function ensureOptuna(): string {
  const venv = join(here, ".venv");
  const python = join(venv, "bin", "python");
  const check = (): boolean =>
    existsSync(python) && spawnSync(python, ["-c", "import optuna"], { stdio: "ignore" }).status === 0;
  if (check()) return python;
  process.stderr.write(`creating ${venv} and installing optuna==${OPTUNA_VERSION} from PyPI...\n`);
  const steps: [string, string[]][] = [
    ["python3", ["-m", "venv", venv]],
    [python, ["-m", "pip", "install", "--quiet", "--disable-pip-version-check", `optuna==${OPTUNA_VERSION}`]],
  ];
  for (const [cmd, args] of steps) {
    const r = spawnSync(cmd, args, { stdio: ["ignore", "inherit", "inherit"] });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (exit ${r.status ?? r.signal})`);
  }
  if (!check()) throw new Error("optuna installed but cannot be imported");
  return python;
}

/** exportSurface writes a surface as its grid and a table of true outcomes, for the Python runner. */
function exportSurface(surface: Surface, best: number, opts: Options): Record<string, unknown> {
  const space = spaceFromDescriptor(surface.descriptor);
  const ax = axes(space);
  const dims = space.dimensions.map((d, i) => ({
    name: d.setting,
    kind: d.kind,
    values: ax[i],
    baseline: Math.max(0, (ax[i] ?? []).indexOf(d.baseline)),
    step: d.kind === "grid" ? d.step : 1,
    integer: d.kind === "grid" && Number.isInteger(d.min) && Number.isInteger(d.step),
  }));
  const objective: number[] = [];
  const feasible: boolean[] = [];
  // A study's constraints are all metric bounds here; their metrics are exported so the runner
  // can measure them with noise and grade them.
  const compiled = studyObjective(surface);
  const bounds = compiled?.bounds ?? [];
  if (compiled && bounds.length !== compiled.spec.constraints.length)
    throw new Error(`${surface.name}: the Optuna runner needs every constraint to bound a metric`);
  const metrics: Record<string, number[]> = Object.fromEntries(bounds.map((b) => [b.metric, []]));
  forEachPoint(space, (p) => {
    const values = valuesOf(space, p);
    const o = surface.evaluate(values);
    objective.push(o.objective);
    feasible.push(o.feasible);
    if (!surface.study || !compiled) return;
    const m = surface.study.metrics(values);
    for (const b of bounds) metrics[b.metric]?.push(m[b.metric] ?? NaN);
  });
  // The runner adds noise to the bound metrics and, when the objective reads metrics, to the
  // objective as a whole (an objective of settings alone is exact, as in the demo).
  const objectiveNoise = surface.study && !/metrics/.test(surface.study.objective) ? 0 : surface.noise;
  return {
    name: surface.name,
    direction: surface.direction,
    noise: objectiveNoise,
    metric_noise: surface.study ? surface.noise : 0,
    bounds: bounds.map((b) => ({ metric: b.metric, upper: b.upper, limit: b.limit })),
    metrics,
    optimum: best,
    constrained: feasible.some((f) => !f),
    max_trials: opts.maxTrials,
    dims,
    objective,
    feasible,
  };
}

function runOptuna(
  surfaces: { surface: Surface; best: number }[],
  opts: Options,
): { results: Record<string, Result>; ms: number } {
  const python = ensureOptuna();
  const spec = {
    seeds: Array.from({ length: opts.seeds }, (_, i) => i + 1),
    surfaces: surfaces.map(({ surface, best }) => exportSurface(surface, best, opts)),
  };
  const start = performance.now();
  const r = spawnSync(python, [join(here, "optuna_tpe.py")], {
    input: JSON.stringify(spec),
    stdio: ["pipe", "pipe", "inherit"],
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.status !== 0) throw new Error(`optuna runner failed (exit ${r.status ?? r.signal})`);
  const raw = JSON.parse(r.stdout.toString("utf8")) as Record<string, (number | null)[]>;
  const results = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, v.map((x) => x ?? undefined)]));
  return { results, ms: performance.now() - start };
}

function quantile(result: Result, q: number, maxTrials: number): string {
  const sorted = result.map((x) => x ?? Infinity).sort((a, b) => a - b);
  // Nearest-rank quantile: the smallest value with at least q of the runs at or below it.
  const v = sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)] ?? Infinity;
  return Number.isFinite(v) ? String(v) : `>${maxTrials}`;
}

function main(): void {
  const opts = parseArgs(process.argv.slice(2));
  const surfaces = SURFACES.filter((s) => s.name.includes(opts.surface)).map((surface) => ({
    surface,
    best: optimum(surface),
  }));
  const rows: string[][] = [];
  const timings: Record<string, number> = { ours: 0, random: 0, "optuna-tpe": 0 };
  const all: Record<string, Record<string, Result>> = {};
  for (const { surface, best } of surfaces) {
    const mine = runMethod(ours, surface, best, opts);
    const random = runMethod(randomSearch, surface, best, opts);
    timings.ours = (timings.ours ?? 0) + mine.ms;
    timings.random = (timings.random ?? 0) + random.ms;
    all[surface.name] = { ours: mine.result, random: random.result };
    process.stderr.write(
      `${surface.name}: ours ${(mine.ms / 1000).toFixed(1)} s, random ${(random.ms / 1000).toFixed(1)} s\n`,
    );
  }
  if (opts.optuna) {
    const tpe = runOptuna(surfaces, opts);
    timings["optuna-tpe"] = tpe.ms;
    for (const { surface } of surfaces)
      (all[surface.name] ??= {})["optuna-tpe"] = tpe.results[surface.name] ?? [];
  }
  for (const { surface } of surfaces) {
    for (const [method, result] of Object.entries(all[surface.name] ?? {})) {
      const hits = result.filter((x) => x !== undefined).length;
      rows.push([
        surface.name,
        method,
        quantile(result, 0.5, opts.maxTrials),
        quantile(result, 0.9, opts.maxTrials),
        `${hits}/${result.length}`,
      ]);
    }
  }
  const header = ["surface", "method", "median", "p90", "reached"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]): string => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join("  ");
  console.log(
    `trials to reach a feasible point within 5% of the optimum (${opts.seeds} seeds, at most ${opts.maxTrials} trials)`,
  );
  for (const { surface, best } of surfaces)
    console.log(`  ${surface.name}: ${surface.summary}; optimum ${best.toPrecision(5)}`);
  console.log(line(header));
  for (const r of rows) console.log(line(r));
  console.log(
    `time: ${Object.entries(timings)
      .map(([k, v]) => `${k} ${(v / 1000).toFixed(1)} s`)
      .join(", ")}`,
  );
}

main();
