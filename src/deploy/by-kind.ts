import { z } from "zod";

/** Kind is the JSON kind of a parsed YAML value. */
export type Kind = "string" | "number" | "boolean" | "null" | "array" | "object";

function kindOf(value: unknown): Kind | undefined {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  const t = typeof value;
  return t === "string" || t === "number" || t === "boolean" || t === "object" ? t : undefined;
}

type Branches = Partial<Record<Kind, z.ZodType>>;
type BranchOutput<B extends Branches> = {
  [K in keyof B]: B[K] extends z.ZodType ? z.output<B[K]> : never;
}[keyof B];

/**
 * byKind validates a field that takes several forms (true or a map, a list or a map, a number or
 * a string) with the schema for the form actually written. A zod union would report "matches no
 * form" for a map with one bad key; this reports the bad key. `message` covers a value of a kind
 * no branch takes.
 */
export function byKind<B extends Branches>(branches: B, message: string) {
  return z.unknown().transform((value, ctx): BranchOutput<B> => {
    const kind = kindOf(value);
    const schema = kind === undefined ? undefined : branches[kind];
    if (schema === undefined) {
      ctx.issues.push({ code: "custom", message, input: value });
      return z.NEVER;
    }
    const result = schema.safeParse(value, { reportInput: true });
    if (result.success) return result.data as BranchOutput<B>;
    // Issues keep their paths, relative to this field; zod prefixes the field's own path.
    for (const issue of result.error.issues) ctx.issues.push(issue as never);
    return z.NEVER;
  });
}
