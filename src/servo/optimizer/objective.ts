/**
 * The objective and constraints of a study, as CEL expressions over a trial's measured metrics
 * and its settings, e.g. `metrics.throughput / (settings.cpu * 0.03 + settings.mem * 0.004)` and
 * `metrics.p90 < 200.0`. Variables:
 *
 * - `metrics`: metric name -> number (a time series is reduced to its mean);
 * - `settings`: setting name -> value, for names that appear in one component only;
 * - `components`: component name -> setting name -> value, for everything.
 *
 * Numbers are doubles; int literals mix with them (`settings.replicas * 2`) because plain CEL
 * would reject `double * int` and users should not have to write `2.0`.
 */
import { Environment, type ParseResult } from "@marcbachmann/cel-js";
import type { SettingValues } from "../protocol.js";
import { OptimizerError } from "./errors.js";

/** Direction says whether the objective is to be made large or small. */
export type Direction = "maximize" | "minimize";

/** ConstraintSpec is one SLO: a CEL condition that a feasible trial satisfies. */
export interface ConstraintSpec {
  /** name labels the constraint in reports; by default the expression itself. */
  name?: string;
  expression: string;
}

/** ObjectiveSpec is what a study optimises. */
export interface ObjectiveSpec {
  objective: string;
  direction: Direction;
  constraints: ConstraintSpec[];
}

/** TrialData is what an expression sees of one trial. */
export interface TrialData {
  metrics: Record<string, number>;
  settings: SettingValues;
}

/**
 * Evaluation is a scored trial. `score` is the objective oriented so that larger is better; it is
 * undefined, with `error` set, when the objective could not be computed or is not a finite number.
 */
export interface Evaluation {
  objective: number | undefined;
  score: number | undefined;
  feasible: boolean;
  /** violated names the constraints the trial broke (or could not be evaluated on). */
  violated: string[];
  /**
   * slacks grade the constraints that compare a metric with a constant (CompiledObjective.bounds),
   * keyed by ConstraintBound.key: how far the measured metric is inside (positive) or outside
   * (negative) its limit. Present when the study has such constraints and the trial measured
   * their metrics; the search models them to tell "just over the SLO" from "far over it".
   */
  slacks?: Record<string, number>;
  error?: string;
}

/** CompiledObjective evaluates trials. */
export interface CompiledObjective {
  readonly spec: ObjectiveSpec;
  /** bounds are the constraints (or `&&` parts of them) that compare one metric with a constant. */
  readonly bounds: readonly ConstraintBound[];
  evaluate(trial: TrialData): Evaluation;
}

/**
 * ConstraintBound is a constraint, or one `&&` part of it, of the form `metrics.NAME <= LIMIT`
 * (or `<`, `>=`, `>`, either side, `metrics["NAME"]` too). Such a constraint says more than
 * met / broken: a p90 of 55 ms against a 50 ms SLO is nearly met, 1200 ms is far from it.
 */
export interface ConstraintBound {
  /** key identifies the bound in Evaluation.slacks: the constraint's name, `#part` for `&&` parts. */
  key: string;
  metric: string;
  /** upper is true for `metric <= limit` (or `<`), false for `metric >= limit` (or `>`). */
  upper: boolean;
  limit: number;
}

const environment = buildEnvironment();

function buildEnvironment(): Environment {
  const env = new Environment()
    .registerVariable("metrics", "map<string, double>")
    .registerVariable("settings", "map<string, dyn>")
    .registerVariable("components", "map<string, map<string, dyn>>");
  const ops: Record<string, (a: number, b: number) => number> = {
    "+": (a, b) => a + b,
    "-": (a, b) => a - b,
    "*": (a, b) => a * b,
    "/": (a, b) => a / b,
  };
  for (const [op, f] of Object.entries(ops)) {
    env.registerOperator(`double ${op} int`, (a: number, b: bigint) => f(a, Number(b)));
    env.registerOperator(`int ${op} double`, (a: bigint, b: number) => f(Number(a), b));
  }
  return env;
}

function summary(err: unknown): string {
  const e = err as { summary?: unknown } | undefined;
  if (typeof e?.summary === "string") return e.summary;
  return err instanceof Error ? (err.message.split("\n")[0] ?? err.message) : String(err);
}

function compile(what: string, source: string, want: "number" | "bool"): ParseResult {
  let program: ParseResult;
  try {
    program = environment.parse(source);
  } catch (err) {
    throw new OptimizerError(
      "invalid-expression",
      `${what} ${JSON.stringify(source)} is not valid CEL: ${summary(err)}`,
      {
        cause: err,
      },
    );
  }
  const check = program.check();
  if (!check.valid) {
    throw new OptimizerError(
      "invalid-expression",
      `${what} ${JSON.stringify(source)} does not type-check: ${summary(check.error)}`,
    );
  }
  const ok = want === "bool" ? ["bool", "dyn"] : ["double", "int", "uint", "dyn"];
  const type = check.type ?? "dyn";
  if (!ok.includes(type)) {
    const noun = want === "bool" ? "a condition (bool)" : "a number";
    throw new OptimizerError(
      "invalid-expression",
      `${what} ${JSON.stringify(source)} must yield ${noun}, but yields ${type}`,
    );
  }
  return program;
}

/**
 * expressionProblem says why an objective (`want` "number") or constraint ("bool") expression
 * cannot be used, or undefined when it compiles: config validation reports it at its field.
 */
export function expressionProblem(source: string, want: "number" | "bool"): string | undefined {
  try {
    compile(want === "number" ? "objective" : "constraint", source, want);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/**
 * compileObjective parses and type-checks the objective and every constraint, throwing an
 * OptimizerError (invalid-expression) that quotes the expression at fault.
 */
export function compileObjective(spec: ObjectiveSpec): CompiledObjective {
  const objective = compile("objective", spec.objective, "number");
  const constraints = spec.constraints.map((c) => ({
    name: c.name ?? c.expression,
    program: compile(`constraint`, c.expression, "bool"),
    source: c.expression,
  }));
  const bounds = constraints.flatMap((c) => boundsOf(c.name, c.program.ast));
  return {
    spec,
    bounds,
    evaluate(trial) {
      const context = celContext(trial);
      const violated: string[] = [];
      const errors: string[] = [];
      for (const c of constraints) {
        try {
          if (c.program(context) !== true) violated.push(c.name);
        } catch (err) {
          violated.push(c.name);
          errors.push(`constraint ${JSON.stringify(c.source)} failed: ${summary(err)}`);
        }
      }
      let value: number | undefined;
      try {
        value = toNumber(objective(context));
        if (value === undefined)
          errors.push(`objective ${JSON.stringify(spec.objective)} is not a finite number`);
      } catch (err) {
        errors.push(`objective ${JSON.stringify(spec.objective)} failed: ${summary(err)}`);
      }
      const score = value === undefined ? undefined : spec.direction === "maximize" ? value : -value;
      const out: Evaluation = {
        objective: value,
        score,
        feasible: score !== undefined && violated.length === 0,
        violated,
      };
      const slacks = slacksOf(bounds, trial.metrics);
      if (slacks) out.slacks = slacks;
      if (errors.length > 0)
        out.error = `${errors.join("; ")} (metrics: ${Object.keys(trial.metrics).join(", ") || "none"})`;
      return out;
    },
  };
}

/** AstNode is the part of a cel-js AST node that boundsOf reads. */
interface AstNode {
  op: string;
  args: unknown;
}

function isNode(v: unknown): v is AstNode {
  return typeof v === "object" && v !== null && "op" in v && "args" in v;
}

/** metricOf reads `metrics.NAME` or `metrics["NAME"]`. */
function metricOf(node: unknown): string | undefined {
  if (!isNode(node) || !Array.isArray(node.args)) return undefined;
  const [target, field] = node.args as unknown[];
  if (!isNode(target) || target.op !== "id" || target.args !== "metrics") return undefined;
  if (node.op === "." && typeof field === "string") return field;
  if (node.op === "[]" && isNode(field) && field.op === "value" && typeof field.args === "string")
    return field.args;
  return undefined;
}

/** constantOf reads a number literal, possibly negated. */
function constantOf(node: unknown): number | undefined {
  if (!isNode(node)) return undefined;
  if (node.op === "-_") {
    const v = constantOf(node.args);
    return v === undefined ? undefined : -v;
  }
  if (node.op !== "value") return undefined;
  const v = typeof node.args === "bigint" ? Number(node.args) : node.args;
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
}

const FLIPPED: Record<string, string> = { "<": ">", "<=": ">=", ">": "<", ">=": "<=" };

/** boundsOf finds the metric-vs-constant comparisons a constraint is a conjunction of. */
function boundsOf(name: string, ast: unknown): ConstraintBound[] {
  const parts: unknown[] = [];
  const split = (node: unknown): void => {
    if (isNode(node) && node.op === "&&" && Array.isArray(node.args)) for (const a of node.args) split(a);
    else parts.push(node);
  };
  split(ast);
  return parts.flatMap((node, i): ConstraintBound[] => {
    if (!isNode(node) || !(node.op in FLIPPED) || !Array.isArray(node.args)) return [];
    const [l, r] = node.args as unknown[];
    let metric = metricOf(l);
    let limit = constantOf(r);
    let op = node.op;
    if (metric === undefined || limit === undefined) {
      metric = metricOf(r);
      limit = constantOf(l);
      op = FLIPPED[op] ?? op;
    }
    if (metric === undefined || limit === undefined) return [];
    const key = parts.length > 1 ? `${name}#${i + 1}` : name;
    return [{ key, metric, upper: op.startsWith("<"), limit }];
  });
}

/** slacksOf grades every bound whose metric was measured; undefined when none was. */
function slacksOf(
  bounds: readonly ConstraintBound[],
  metrics: Record<string, number>,
): Record<string, number> | undefined {
  const slacks: Record<string, number> = {};
  for (const b of bounds) {
    const v = metrics[b.metric];
    if (typeof v === "number" && Number.isFinite(v)) slacks[b.key] = constraintSlack(b, v);
  }
  return Object.keys(slacks).length > 0 ? slacks : undefined;
}

/**
 * constraintSlack is how far `value` is inside the bound (positive) or outside it (negative),
 * relative to the limit. For a positive limit it is a log ratio, with a tenth of the limit added
 * to both sides so a zero reading (no errors) stays finite: latency and error rates vary over
 * orders of magnitude, and a miss by 10% should weigh the same at 50 ms as at 5 s. Otherwise it is
 * the difference, divided by the limit's magnitude unless that is 0.
 */
export function constraintSlack(bound: ConstraintBound, value: number): number {
  const { limit, upper } = bound;
  if (limit > 0) {
    const c = limit / 10;
    const gap = Math.log(limit + c) - Math.log(Math.max(0, value) + c);
    return upper ? gap : -gap;
  }
  const gap = (limit - value) / (limit === 0 ? 1 : Math.abs(limit));
  return upper ? gap : -gap;
}

function toNumber(v: unknown): number | undefined {
  const n = typeof v === "bigint" ? Number(v) : typeof v === "number" ? v : NaN;
  return Number.isFinite(n) ? n : undefined;
}

/** celContext builds the variables an expression sees; setting names shared by components are left out of `settings`. */
export function celContext(trial: TrialData): Record<string, unknown> {
  const settings: Record<string, number | string> = {};
  const seen = new Map<string, number>();
  for (const values of Object.values(trial.settings)) {
    for (const [name, v] of Object.entries(values)) {
      seen.set(name, (seen.get(name) ?? 0) + 1);
      settings[name] = v;
    }
  }
  for (const [name, count] of seen) if (count > 1) delete settings[name];
  return { metrics: { ...trial.metrics }, settings, components: trial.settings };
}

/**
 * penalisedScores ranks every trial on one scale for reports and "best so far": feasible trials
 * keep their score; infeasible ones are placed below the worst feasible score by the spread of
 * scores (and by their own score), so no infeasible trial outranks a feasible one; trials with no
 * score stay undefined.
 */
export function penalisedScores(evaluations: readonly Evaluation[]): (number | undefined)[] {
  const scores = evaluations.flatMap((e) => (e.score === undefined ? [] : [e.score]));
  if (scores.length === 0) return evaluations.map(() => undefined);
  const feasible = evaluations.flatMap((e) => (e.feasible && e.score !== undefined ? [e.score] : []));
  const floor = feasible.length > 0 ? Math.min(...feasible) : Math.min(...scores);
  const top = Math.max(...scores);
  const spread = top - Math.min(...scores) || Math.abs(floor) || 1;
  return evaluations.map((e) => {
    if (e.score === undefined) return undefined;
    if (e.feasible) return e.score;
    return floor - spread - (top - e.score);
  });
}
