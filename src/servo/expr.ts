/**
 * Package expr compiles and evaluates `adjust_on` conditions. The original servo-k8s evaluated
 * them as Python (`eval(expr, {"__builtins__": None}, {"data": data})`); kubewise uses CEL, which
 * is safe to run on user input and accepts the seed's expressions verbatim, for example
 * `data["control"]["userdata"]["deploy_to"] == "main"`.
 *
 * Syntax and type errors are found when the configuration loads; a key missing at run time (an
 * ADJUST without `userdata`) makes the condition not match, with the reason, as servo-k8s did
 * when its `eval` raised.
 */
import { Environment, EvaluationError, type ParseResult } from "@marcbachmann/cel-js";
import { ServoError } from "./protocol.js";

/** AdjustOnResult says whether an adjust should run and, when it should not, why. */
export type AdjustOnResult = { matched: true } | { matched: false; reason: string };

/** AdjustOnExpression is a compiled `adjust_on` condition. */
export interface AdjustOnExpression {
  /** source is the expression as written in the configuration. */
  readonly source: string;
  /**
   * matches evaluates the condition over `{data}`. It never throws: a missing key, a type error
   * at run time or a non-boolean result all mean "do not adjust", with the reason.
   */
  matches(data: unknown): AdjustOnResult;
}

// One environment for every expression: building one is the expensive part (library README).
const environment = new Environment().registerVariable("data", "map");

/**
 * compileAdjustOn parses and type-checks an `adjust_on` expression over the variable `data`
 * (a map). It throws a ServoError with reason `invalid-expression` and a one-line message
 * naming the problem and its column when the expression is not valid CEL, uses a variable other
 * than `data`, or cannot yield a bool.
 */
export function compileAdjustOn(source: string): AdjustOnExpression {
  let program: ParseResult;
  try {
    program = environment.parse(source);
  } catch (err) {
    throw invalidExpression(err);
  }
  const check = program.check();
  if (!check.valid) throw invalidExpression(check.error);
  // `dyn` is what indexing into `data` yields; it may well be a bool at run time.
  if (check.type !== "bool" && check.type !== "dyn") {
    throw new ServoError("invalid-expression", `must be a condition (a bool), but it yields ${check.type}`);
  }
  return {
    source,
    matches: (data) => evaluate(program, source, data),
  };
}

function evaluate(program: ParseResult, source: string, data: unknown): AdjustOnResult {
  let value: unknown;
  try {
    value = program({ data: toCelValue(data) });
  } catch (err) {
    const why =
      err instanceof EvaluationError ? err.summary : err instanceof Error ? err.message : String(err);
    return { matched: false, reason: `adjust_on could not be evaluated (${why}): ${source}` };
  }
  if (value === true) return { matched: true };
  if (value === false) return { matched: false, reason: `adjust_on is false: ${source}` };
  return { matched: false, reason: `adjust_on yielded ${describeValue(value)}, not a bool: ${source}` };
}

/**
 * adjustOnData builds the `data` an adjust_on expression sees from an ADJUST param. It is the
 * param itself (`state`, `control`) plus the old servo's view, where the driver read `param.state`
 * with `control` added, so both `data["control"]` and `data["application"]` work.
 */
export function adjustOnData(param: { state?: unknown; control?: unknown }): Record<string, unknown> {
  const state = param.state !== null && typeof param.state === "object" ? param.state : {};
  return { ...state, ...param, control: param.control ?? {} };
}

// The evaluator wants plain maps, lists and scalars; a JSON round trip drops undefined fields,
// class instances and functions that an ADJUST param parsed by zod could otherwise carry.
function toCelValue(data: unknown): unknown {
  if (data === undefined) return {};
  return JSON.parse(JSON.stringify(data)) as unknown;
}

function describeValue(value: unknown): string {
  if (typeof value === "bigint") return `${value} (int)`;
  if (typeof value === "string") return `${JSON.stringify(value)} (string)`;
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  return typeof value === "object" ? "a map" : `${String(value)} (${typeof value})`;
}

function invalidExpression(err: unknown): ServoError {
  const e = err as { summary?: unknown; range?: { start?: number } } | undefined;
  const summary =
    typeof e?.summary === "string" ? e.summary : err instanceof Error ? err.message : String(err);
  const column = typeof e?.range?.start === "number" ? ` at column ${e.range.start + 1}` : "";
  return new ServoError("invalid-expression", `is not a valid CEL expression: ${summary}${column}`, {
    cause: err,
  });
}
