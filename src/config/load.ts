import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";
import type { z } from "zod";
import { ConfigError, type ConfigIssue } from "./errors.js";

/**
 * parseConfig validates plain data against a zod schema and returns the typed result, or throws
 * a ConfigError listing every problem with its field path, the value found and what is allowed.
 * `file` only labels the messages.
 */
export function parseConfig<S extends z.ZodType>(schema: S, data: unknown, file?: string): z.output<S> {
  const result = schema.safeParse(data, { reportInput: true });
  if (result.success) return result.data;
  const issues: ConfigIssue[] = result.error.issues.map((issue) => toConfigIssue(issue, data));
  throw new ConfigError("invalid", file, issues);
}

/** readYamlFile reads one YAML document from a file; syntax errors name the line and column. */
export function readYamlFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    const message = (err as NodeJS.ErrnoException).code === "ENOENT" ? "file not found" : String(err);
    throw new ConfigError("unreadable", file, [{ path: [], message }]);
  }
  return parseYamlText(text, file)[0] ?? {};
}

/** parseYamlText parses one or more YAML documents, throwing ConfigError on syntax errors. */
export function parseYamlText(text: string, file?: string): unknown[] {
  const docs = parseAllDocuments(text, { prettyErrors: true, uniqueKeys: true });
  if (!Array.isArray(docs)) return [];
  const issues: ConfigIssue[] = [];
  for (const doc of docs) {
    for (const e of doc.errors) {
      const pos = e.linePos?.[0];
      const at = pos ? `line ${pos.line}, column ${pos.col}: ` : "";
      issues.push({ path: [], message: `${at}${e.message.split("\n")[0] ?? e.message}` });
    }
  }
  if (issues.length > 0) throw new ConfigError("unreadable", file, issues);
  return docs.map((d) => d.toJS() as unknown);
}

/** loadConfigFile reads a YAML file and validates it against a schema. */
export function loadConfigFile<S extends z.ZodType>(schema: S, file: string): z.output<S> {
  return parseConfig(schema, readYamlFile(file), file);
}

function toConfigIssue(issue: z.core.$ZodIssue, root: unknown): ConfigIssue {
  const path = issue.path.filter((p): p is string | number => typeof p !== "symbol");
  let message = issue.message;
  if (issue.code === "unrecognized_keys") {
    message = `unknown key${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => JSON.stringify(k)).join(", ")}`;
    return { path, message };
  }
  if (issue.code === "invalid_value") {
    message = `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}`;
  }
  const value = "input" in issue && issue.input !== undefined ? issue.input : valueAt(root, path);
  return value === undefined ? { path, message } : { path, message, value };
}

function valueAt(root: unknown, path: readonly (string | number)[]): unknown {
  let current: unknown = root;
  for (const key of path) {
    if (current === null || typeof current !== "object") return undefined;
    current = (current as Record<string | number, unknown>)[key];
  }
  return current;
}
