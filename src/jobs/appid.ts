/**
 * The app-id path syntax of servo-k8s-multijob (OPTUNE_APP_ID), parsed once and then applied to
 * any pod object: the typed objects of @kubernetes/client-node and the raw JSON of an admission
 * request alike, since both use the API's camelCase field names.
 *
 * A path is `/`-separated. Each element is one of:
 * - `name`: a map key (digits are a map key too when the value at that point is a map);
 * - `3`: an array index (digits only);
 * - `[KEY]`: search an array of `{"name": KEY, "value": …}` maps (the shape of a container's env)
 *   and descend into the `value` of the match;
 * - `[KEY,keyField,valueField]`: the same search with other field names, e.g.
 *   `[http,name,containerPort]` over a container's ports.
 */
import { JobsError } from "./errors.js";

/** DEFAULT_APP_ID_PATH is the seed's OPTUNE_APP_ID default: the JOBID env var of container 0. */
export const DEFAULT_APP_ID_PATH = "spec/containers/0/env/[JOBID]";

/** AppIdStep is one parsed element of an app-id path. */
export type AppIdStep =
  | { kind: "key"; key: string }
  | { kind: "index"; index: number; key: string }
  | { kind: "search"; key: string; keyField: string; valueField: string };

/** AppIdPath is a parsed app-id path: the source text and its steps. */
export interface AppIdPath {
  readonly source: string;
  readonly steps: readonly AppIdStep[];
}

/**
 * parseAppIdPath parses the path syntax described at the top of this file. It throws a JobsError
 * (reason `invalid-app-id-path`) naming the element and what is wrong: an empty path, an empty
 * element (`a//b`, a leading or trailing `/`), unbalanced brackets, or a bracket element that
 * does not have 1 or 3 non-empty comma-separated parts.
 */
export function parseAppIdPath(source: string): AppIdPath {
  if (source.trim() === "") throw pathError(source, "the path is empty");
  const steps = splitPath(source).map((element, i) => parseStep(source, element, i + 1));
  return { source, steps };
}

/** describeAppIdPathError returns the parse error's message for a path, or undefined if it parses. */
export function describeAppIdPathError(source: string): string | undefined {
  try {
    parseAppIdPath(source);
    return undefined;
  } catch (err) {
    if (err instanceof JobsError) return err.message;
    throw err;
  }
}

/**
 * resolveAppId follows a parsed path through an object and returns the string found there, or
 * undefined when any step is missing or the value is not a string. A `[KEY]` search takes the
 * last matching entry, because for env the kubelet lets a later duplicate override an earlier
 * one, so the last entry is the value the container actually sees.
 */
export function resolveAppId(path: AppIdPath, object: unknown): string | undefined {
  let current: unknown = object;
  for (const step of path.steps) {
    current = applyStep(step, current);
    if (current === undefined) return undefined;
  }
  return typeof current === "string" ? current : undefined;
}

/**
 * jobAppId returns the pod's app id when it resolves to a non-empty string, which is what makes
 * a pod a job pod (Issue 5); otherwise undefined.
 */
export function jobAppId(path: AppIdPath, pod: unknown): string | undefined {
  const id = resolveAppId(path, pod);
  return id === undefined || id === "" ? undefined : id;
}

/**
 * appContainerIndex says which container is the job's application container: the container the
 * app-id path points into (`spec/containers/N/...`), since that is where the job's own identity
 * lives; container 0 (the original's choice) when the path points elsewhere.
 */
export function appContainerIndex(path: AppIdPath): number {
  const [spec, containers, index] = path.steps;
  if (spec?.kind === "key" && spec.key === "spec" && containers?.kind === "key" && index?.kind === "index") {
    if (containers.key === "containers") return index.index;
  }
  return 0;
}

function applyStep(step: AppIdStep, current: unknown): unknown {
  if (step.kind === "search") return search(step, current);
  if (Array.isArray(current)) return step.kind === "index" ? current[step.index] : undefined;
  if (current !== null && typeof current === "object" && Object.hasOwn(current, step.key)) {
    return (current as Record<string, unknown>)[step.key];
  }
  return undefined;
}

function search(step: Extract<AppIdStep, { kind: "search" }>, current: unknown): unknown {
  if (!Array.isArray(current)) return undefined;
  let found: unknown = undefined;
  for (const item of current as unknown[]) {
    if (item === null || typeof item !== "object") continue;
    const entry = item as Record<string, unknown>;
    if (entry[step.keyField] === step.key) found = entry[step.valueField];
  }
  return found;
}

// splitPath splits on "/" outside brackets, so a search key may itself contain a "/".
function splitPath(source: string): string[] {
  const elements: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < source.length; i++) {
    const c = source[i];
    if (c === "[") depth++;
    else if (c === "]") depth--;
    if (depth < 0 || depth > 1) throw pathError(source, `unbalanced "${c}" at character ${i + 1}`);
    if (c === "/" && depth === 0) {
      elements.push(source.slice(start, i));
      start = i + 1;
    }
  }
  if (depth !== 0) throw pathError(source, `a "[" is not closed`);
  elements.push(source.slice(start));
  return elements;
}

function parseStep(source: string, element: string, position: number): AppIdStep {
  const where = `element ${position}`;
  if (element === "") {
    throw pathError(source, `${where} is empty (a leading, trailing or doubled "/")`);
  }
  if (!element.includes("[") && !element.includes("]")) {
    return /^\d+$/.test(element)
      ? { kind: "index", index: Number(element), key: element }
      : { kind: "key", key: element };
  }
  if (!element.startsWith("[") || !element.endsWith("]")) {
    throw pathError(source, `${where} "${element}" mixes brackets with other text; write [KEY] alone`);
  }
  const parts = element
    .slice(1, -1)
    .split(",")
    .map((p) => p.trim());
  if (parts.some((p) => p === "")) {
    throw pathError(
      source,
      `${where} "${element}" has an empty part; write [KEY] or [KEY,keyField,valueField]`,
    );
  }
  const [key, keyField, valueField] = parts;
  if (parts.length === 1 && key !== undefined)
    return { kind: "search", key, keyField: "name", valueField: "value" };
  if (parts.length === 3 && key !== undefined && keyField !== undefined && valueField !== undefined) {
    return { kind: "search", key, keyField, valueField };
  }
  throw pathError(
    source,
    `${where} "${element}" has ${parts.length} parts; write [KEY] or [KEY,keyField,valueField]`,
  );
}

function pathError(source: string, problem: string): JobsError {
  return new JobsError("invalid-app-id-path", `app-id path ${JSON.stringify(source)}: ${problem}`);
}
