import type { ConfigIssue } from "../config/index.js";

/**
 * Opta fills `{parent.domain}`, `{parent[domain]}`, `{vars.x}`, `{env}`, `{layer_name}` and
 * `{module_name}` into any string of a module block, so real k8s-service blocks contain them
 * (most often `public_uri: "app.{parent.domain}"`). interpolateVariables does the same with the
 * variables it is given, so such a block works unchanged once the values are supplied.
 */
const placeholder = /\{([A-Za-z_][\w-]*(?:(?:\.[A-Za-z_][\w-]*)|(?:\[[A-Za-z_][\w-]*\]))*)\}/g;

/** InterpolationResult is the document with every known placeholder replaced, and the unknown ones. */
export interface InterpolationResult {
  value: unknown;
  issues: ConfigIssue[];
}

/**
 * interpolateVariables replaces `{name}` placeholders in every string of `doc` (keys are left
 * alone). `parent[domain]` is read as `parent.domain`. Each unknown placeholder becomes an issue
 * naming the field and the flag that supplies it; the document is not changed in place.
 */
export function interpolateVariables(
  doc: unknown,
  variables: Readonly<Record<string, string>>,
): InterpolationResult {
  const issues: ConfigIssue[] = [];
  const visit = (value: unknown, path: (string | number)[]): unknown => {
    if (typeof value === "string") return replaceIn(value, path, variables, issues);
    if (Array.isArray(value)) return value.map((v, i) => visit(v, [...path, i]));
    if (value !== null && typeof value === "object") {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, visit(v, [...path, k])]));
    }
    return value;
  };
  return { value: visit(doc, []), issues };
}

function replaceIn(
  text: string,
  path: (string | number)[],
  variables: Readonly<Record<string, string>>,
  issues: ConfigIssue[],
): string {
  if (!text.includes("{")) return text;
  return text.replace(placeholder, (match, name: string) => {
    const key = name.replace(/\[([^\]]+)\]/g, ".$1");
    const found = variables[key];
    if (found !== undefined) return found;
    issues.push({ path, message: `no value for {${key}}: pass --var ${key}=VALUE`, value: text });
    return match;
  });
}
