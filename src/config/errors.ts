import { KubewiseError } from "../errors.js";

/**
 * ConfigError is a configuration problem a user can fix: it names the file, the field path, the
 * value found and what is allowed. Reasons: `invalid` (schema), `unreadable` (I/O or YAML syntax).
 */
export class ConfigError extends KubewiseError {
  readonly file: string | undefined;
  readonly issues: readonly ConfigIssue[];

  constructor(reason: "invalid" | "unreadable", file: string | undefined, issues: readonly ConfigIssue[]) {
    super(reason, formatIssues(file, issues));
    this.file = file;
    this.issues = issues;
  }
}

/** ConfigIssue is one problem at one place in a configuration document. */
export interface ConfigIssue {
  /** path to the field, e.g. ["k8slive", "on_fail"]; empty for the document itself. */
  path: readonly (string | number)[];
  /** message says what is wrong and what is allowed, e.g. `must be one of "destroy", "nop"`. */
  message: string;
  /** value is the offending value as found, when there is one. */
  value?: unknown;
}

/** formatPath renders ["a", 0, "b"] as a.0.b, quoting keys that contain dots or spaces. */
export function formatPath(path: readonly (string | number)[]): string {
  if (path.length === 0) return "(document)";
  return path
    .map((p) => (typeof p === "string" && /[.\s"]/.test(p) ? JSON.stringify(p) : String(p)))
    .join(".");
}

function formatValue(value: unknown): string {
  if (value === undefined) return "";
  const text = typeof value === "string" ? JSON.stringify(value) : (JSON.stringify(value) ?? String(value));
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function formatIssues(file: string | undefined, issues: readonly ConfigIssue[]): string {
  const where = file ?? "configuration";
  const lines = issues.map((i) => {
    const value = i.value === undefined ? "" : ` (got ${formatValue(i.value)})`;
    return `  ${formatPath(i.path)}: ${i.message}${value}`;
  });
  const noun = issues.length === 1 ? "problem" : "problems";
  return `${where}: ${issues.length} ${noun}:\n${lines.join("\n")}`;
}
