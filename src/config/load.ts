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
  const issues: ConfigIssue[] = result.error.issues.map((issue) => toConfigIssue(issue, data, schema));
  throw new ConfigError("invalid", file, issues);
}

/**
 * readYamlFile reads the one YAML document of a file; syntax errors name the line and column.
 * A file with more than one non-empty document is an error rather than its first document: each
 * of these files describes one thing, and silently dropping the rest would hide a mistake. Empty
 * documents (a trailing `---`, a comment-only one) do not count.
 */
export function readYamlFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    const message = (err as NodeJS.ErrnoException).code === "ENOENT" ? "file not found" : String(err);
    throw new ConfigError("unreadable", file, [{ path: [], message }]);
  }
  return parseYamlDocument(text, file) ?? {};
}

/**
 * parseYamlDocument parses text that must hold at most one non-empty YAML document and returns it,
 * or undefined when there is none (an empty text, a trailing `---`, only comments). More than one
 * is a ConfigError naming `file`.
 */
export function parseYamlDocument(text: string, file?: string): unknown {
  const docs = parseYamlText(text, file).filter((d) => d !== null && d !== undefined);
  if (docs.length > 1) {
    throw new ConfigError("invalid", file, [
      { path: [], message: `holds ${docs.length} YAML documents (separated by "---"); expected one` },
    ]);
  }
  return docs[0];
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

function toConfigIssue(issue: z.core.$ZodIssue, root: unknown, schema: z.ZodType): ConfigIssue {
  const path = issue.path.filter((p): p is string | number => typeof p !== "symbol");
  let message = issue.message;
  if (issue.code === "unrecognized_keys") {
    message = `unknown key${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => JSON.stringify(k)).join(", ")}`;
    const known = keysAt(schema, path);
    if (known !== undefined && known.length > 0) message += ` (known keys: ${known.join(", ")})`;
    return { path, message };
  }
  if (issue.code === "invalid_value") {
    message = `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}`;
  }
  // zod's own words for an empty required string ("Too small: expected string to have >=1
  // characters"); a schema's own message is kept.
  if (
    issue.code === "too_small" &&
    issue.origin === "string" &&
    Number(issue.minimum) === 1 &&
    message.startsWith("Too small")
  ) {
    message = "must not be empty";
  }
  const value = "input" in issue && issue.input !== undefined ? issue.input : valueAt(root, path);
  return value === undefined ? { path, message } : { path, message, value };
}

type SchemaDef = {
  type?: string;
  innerType?: z.ZodType;
  in?: z.ZodType;
  out?: z.ZodType;
  shape?: Record<string, z.ZodType>;
  valueType?: z.ZodType;
  element?: z.ZodType;
  options?: z.ZodType[];
};

function defOf(schema: z.ZodType): SchemaDef {
  return (schema as unknown as { _zod: { def: SchemaDef } })._zod.def;
}

// unwrap looks through optional, nullable, default, catch and pipe (its input side, or the
// output side of a preprocess) to the schema that holds the shape.
function unwrap(schema: z.ZodType): z.ZodType {
  let current = schema;
  for (let i = 0; i < 16; i++) {
    const def = defOf(current);
    let next = def.innerType;
    if (def.type === "pipe") {
      // A preprocess is a pipe from a transform: the shape is on its output side.
      next = def.in !== undefined && defOf(def.in).type !== "transform" ? def.in : def.out;
    }
    if (next === undefined) return current;
    current = next;
  }
  return current;
}

/**
 * keysAt lists the keys an object schema allows at `path`, looking through wrappers, records,
 * arrays and (for union members that are objects) unions; undefined when it cannot tell.
 */
export function keysAt(schema: z.ZodType, path: readonly (string | number)[]): string[] | undefined {
  let current: z.ZodType | undefined = unwrap(schema);
  for (const key of path) {
    if (current === undefined) return undefined;
    const def = defOf(current);
    if (def.type === "object") current = def.shape?.[String(key)];
    else if (def.type === "record") current = def.valueType;
    else if (def.type === "array") current = def.element;
    else return undefined;
    current = current === undefined ? undefined : unwrap(current);
  }
  if (current === undefined) return undefined;
  const def = defOf(current);
  if (def.type === "object") return Object.keys(def.shape ?? {});
  if (def.type === "union") {
    const keys = (def.options ?? []).flatMap((o) => keysAt(o, []) ?? []);
    return keys.length > 0 ? [...new Set(keys)] : undefined;
  }
  return undefined;
}

function valueAt(root: unknown, path: readonly (string | number)[]): unknown {
  let current: unknown = root;
  for (const key of path) {
    if (current === null || typeof current !== "object") return undefined;
    current = (current as Record<string | number, unknown>)[key];
  }
  return current;
}
