/**
 * compareWorkerNames orders worker names the way a person reads pod names: runs of digits compare
 * as numbers, so `swarm-worker-2` comes before `swarm-worker-10`. StatefulSet pods are named
 * `<set>-<ordinal>`, so this is ordinal order. Names that differ only in leading zeros fall back to
 * code-unit order, which keeps this a total order (needed for deterministic results).
 */
export function compareWorkerNames(a: string, b: string): number {
  if (a === b) return 0;
  const pa = splitDigits(a);
  const pb = splitDigits(b);
  const n = Math.min(pa.length, pb.length);
  for (let i = 0; i < n; i++) {
    const c = compareChunk(pa[i] as string, pb[i] as string);
    if (c !== 0) return c;
  }
  if (pa.length !== pb.length) return pa.length - pb.length;
  return a < b ? -1 : 1;
}

/** compareJobNames is plain code-unit order: cheap enough to sort a million job names. */
export function compareJobNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function splitDigits(name: string): string[] {
  return name.match(/\d+|\D+/g) ?? [];
}

function compareChunk(a: string, b: string): number {
  const da = isDigits(a);
  const db = isDigits(b);
  if (da && db) {
    // Compare as numbers without parsing, so ordinals of any length stay exact.
    const ta = a.replace(/^0+(?=\d)/, "");
    const tb = b.replace(/^0+(?=\d)/, "");
    if (ta.length !== tb.length) return ta.length - tb.length;
    return ta < tb ? -1 : ta > tb ? 1 : 0;
  }
  return a < b ? -1 : a > b ? 1 : 0;
}

function isDigits(s: string): boolean {
  const c = s.charCodeAt(0);
  return c >= 48 && c <= 57;
}
