import { createHash } from "node:crypto";

/** MAX_NAME is the length limit of a DNS-1123 label, which most object names must be. */
export const MAX_NAME = 63;

/**
 * shortHash is the first `length` hex digits of the SHA-256 of `text`: stable across runs and
 * machines, so names derived from it never change unless their input does.
 */
export function shortHash(text: string, length = 8): string {
  return createHash("sha256").update(text).digest("hex").slice(0, length);
}

/**
 * childName names an object derived from a service, `<parent>-<suffix>`. When that is longer
 * than `max`, the parent is cut and a hash of the full name is added, so two long parents that
 * share a prefix still get different names (the cdk8s `Names.toDnsLabel` approach). A CronJob
 * needs `max` 52, because its Jobs append 11 characters.
 */
export function childName(parent: string, suffix: string, max = MAX_NAME): string {
  const full = `${parent}-${suffix}`;
  if (full.length <= max) return full;
  const hash = shortHash(full);
  const room = max - suffix.length - hash.length - 2;
  const head = parent.slice(0, Math.max(room, 1)).replace(/-+$/, "");
  return `${head}-${suffix}-${hash}`.slice(0, max).replace(/-+$/, "");
}
