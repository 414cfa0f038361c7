/**
 * diffObjects compares an object as it is with the object as it would be, field by field, the
 * way a person reads a plan: `spec.template.spec.containers[web].image` changed from one image
 * to another. It is a pure function over plain JSON.
 */

/** FieldChange is one field that an apply would add, remove or change. */
export interface FieldChange {
  /** path such as `spec.replicas`, `metadata.labels["app.kubernetes.io/name"]`, `containers[web].env[LOG].value`. */
  path: string;
  op: "added" | "removed" | "changed";
  before?: unknown;
  after?: unknown;
}

/**
 * IGNORED_METADATA are the metadata fields the server keeps for itself; a change to them is not
 * a change anyone asked for (an apply bumps generation and managedFields with every real change).
 */
const IGNORED_METADATA = new Set([
  "managedFields",
  "resourceVersion",
  "generation",
  "uid",
  "creationTimestamp",
  "selfLink",
]);

type Json = unknown;

function isObject(v: Json): v is Record<string, Json> {
  return v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof Date);
}

/** defined: the typed client objects carry every known field, absent ones as undefined keys. */
function defined(obj: Record<string, Json>): [string, Json][] {
  return Object.entries(obj).filter(([, v]) => v !== undefined);
}

const identifier = /^[A-Za-z_][A-Za-z0-9_]*$/;

function keyPath(base: string, key: string): string {
  if (identifier.test(key)) return base ? `${base}.${key}` : key;
  return `${base}[${JSON.stringify(key)}]`;
}

/**
 * namedItems: a list whose items are all objects with distinct string `name`s (containers, env,
 * ports, volumes) is compared by name, so inserting one env var is one addition, not a shift of
 * every later entry.
 */
function namedItems(list: Json[]): Map<string, Json> | undefined {
  const byName = new Map<string, Json>();
  for (const item of list) {
    const name = isObject(item) ? item.name : undefined;
    if (typeof name !== "string" || byName.has(name)) return undefined;
    byName.set(name, item);
  }
  return byName;
}

function diffLists(path: string, before: Json[], after: Json[], out: FieldChange[]): void {
  const a = namedItems(before);
  const b = namedItems(after);
  if (a && b && (a.size > 0 || b.size > 0)) {
    for (const [name, item] of a) {
      const itemPath = `${path}[${name}]`;
      if (!b.has(name)) out.push({ path: itemPath, op: "removed", before: item });
      else diffValues(itemPath, item, b.get(name), out);
    }
    for (const [name, item] of b) {
      if (!a.has(name)) out.push({ path: `${path}[${name}]`, op: "added", after: item });
    }
    return;
  }
  const length = Math.max(before.length, after.length);
  for (let i = 0; i < length; i++) {
    const itemPath = `${path}[${i}]`;
    if (i >= after.length) out.push({ path: itemPath, op: "removed", before: before[i] });
    else if (i >= before.length) out.push({ path: itemPath, op: "added", after: after[i] });
    else diffValues(itemPath, before[i], after[i], out);
  }
}

function diffValues(path: string, before: Json, after: Json, out: FieldChange[]): void {
  if (isObject(before) && isObject(after)) {
    for (const [key, value] of defined(before)) {
      const p = keyPath(path, key);
      if (after[key] === undefined) out.push({ path: p, op: "removed", before: value });
      else diffValues(p, value, after[key], out);
    }
    for (const [key, value] of defined(after)) {
      if (before[key] === undefined) out.push({ path: keyPath(path, key), op: "added", after: value });
    }
    return;
  }
  if (Array.isArray(before) && Array.isArray(after)) return diffLists(path, before, after, out);
  if (JSON.stringify(before) !== JSON.stringify(after)) out.push({ path, op: "changed", before, after });
}

/** comparable drops status and the server's own metadata fields. */
export function comparable(obj: object): Record<string, Json> {
  const { status: _status, metadata, ...rest } = obj as Record<string, Json>;
  const meta = isObject(metadata)
    ? Object.fromEntries(Object.entries(metadata).filter(([k]) => !IGNORED_METADATA.has(k)))
    : metadata;
  return { ...(meta === undefined ? {} : { metadata: meta }), ...rest };
}

/**
 * diffObjects lists the field changes from `live` to `desired`, ignoring status and the
 * metadata the server maintains. Equal objects give an empty list.
 */
export function diffObjects(live: object, desired: object): FieldChange[] {
  const out: FieldChange[] = [];
  diffValues("", comparable(live), comparable(desired), out);
  return out;
}

/** formatValue prints a value for one line of a plan, cut to `max` characters. */
export function formatValue(value: unknown, max = 72): string {
  const text = value === undefined ? "(none)" : JSON.stringify(value);
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** formatChange prints a change as `+ path: value`, `- path: value` or `~ path: before -> after`. */
export function formatChange(change: FieldChange): string {
  if (change.op === "added") return `+ ${change.path}: ${formatValue(change.after)}`;
  if (change.op === "removed") return `- ${change.path}: ${formatValue(change.before)}`;
  return `~ ${change.path}: ${formatValue(change.before, 40)} -> ${formatValue(change.after, 40)}`;
}
