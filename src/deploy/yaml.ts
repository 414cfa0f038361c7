/**
 * A YAML printer for API objects (plain maps, lists, strings, numbers, booleans, null), written
 * for two reasons. kubectl reads YAML 1.1, where `yes`, `on`, `n` and `1:20` are not strings, so
 * a 1.2 printer that leaves them plain changes an env var's value into a boolean; this printer
 * quotes every string that is not plainly a string under both versions. And it is fast: the
 * general `yaml` library spends milliseconds per service on what is here a walk over the object.
 */

/** plainWord: starts with a letter, "/" or "_", and holds no character YAML gives a meaning. */
const plainWord = /^[A-Za-z_/][A-Za-z0-9_./@%+=,:$()*-]*$/;
/** quantity: "100m", "128Mi", "1.5Gi", "25%": digit-first strings that no YAML version reads as numbers. */
const quantity = /^\d+(\.\d+)?(m|k|[KMGTPE]i?|%)$/;
/** notStrings are the words YAML 1.1 or 1.2 reads as booleans or null. */
const notStrings = new Set(
  "y Y yes Yes YES n N no No NO true True TRUE false False FALSE on On ON off Off OFF null Null NULL".split(
    " ",
  ),
);

/** exponentOnly: the `yaml` library's YAML 1.1 schema reads "E0" or "e+5" as a float. */
const exponentOnly = /^[eE][-+]?[0-9_]+$/;

/** scalar prints a string plain when that is unambiguous, else as a JSON (= YAML double-quoted) string. */
function scalar(value: string): string {
  const plain =
    (plainWord.test(value) || quantity.test(value)) &&
    !value.endsWith(":") &&
    !notStrings.has(value) &&
    !exponentOnly.test(value);
  return plain ? value : JSON.stringify(value);
}

function leaf(value: unknown): string | undefined {
  if (value === null || value === undefined) return "null";
  if (typeof value === "string") return scalar(value);
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new TypeError(`cannot print ${value} as YAML for the API`);
    return String(value);
  }
  if (typeof value === "boolean") return String(value);
  if (Array.isArray(value)) return value.length === 0 ? "[]" : undefined;
  if (typeof value === "object") return Object.keys(value).length === 0 ? "{}" : undefined;
  throw new TypeError(`cannot print a ${typeof value} as YAML`);
}

function mapLines(map: Record<string, unknown>, indent: string, out: string[], first?: string): void {
  let prefix = first ?? indent;
  for (const [key, value] of Object.entries(map)) {
    if (value === undefined) continue;
    const simple = leaf(value);
    if (simple !== undefined) out.push(`${prefix}${scalar(key)}: ${simple}\n`);
    else {
      out.push(`${prefix}${scalar(key)}:\n`);
      block(value, `${indent}  `, out);
    }
    prefix = indent;
  }
}

function seqLines(seq: unknown[], indent: string, out: string[]): void {
  for (const item of seq) {
    const simple = leaf(item);
    if (simple !== undefined) out.push(`${indent}- ${simple}\n`);
    else if (Array.isArray(item)) {
      out.push(`${indent}-\n`);
      seqLines(item, `${indent}  `, out);
    } else mapLines(item as Record<string, unknown>, `${indent}  `, out, `${indent}- `);
  }
}

function block(value: unknown, indent: string, out: string[]): void {
  if (Array.isArray(value)) seqLines(value, indent, out);
  else mapLines(value as Record<string, unknown>, indent, out);
}

/** toYamlDocument prints one object as a YAML block document (no leading "---"). */
export function toYamlDocument(value: object): string {
  const simple = leaf(value);
  if (simple !== undefined) return `${simple}\n`;
  const out: string[] = [];
  block(value, "", out);
  return out.join("");
}

/** toYaml prints manifests as one multi-document YAML stream, as kubectl reads it. */
export function toYaml(manifests: readonly object[]): string {
  return manifests.map(toYamlDocument).join("---\n");
}
