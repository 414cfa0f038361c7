import { parseQuantity } from "../kube/index.js";

/**
 * Quantities as the agent needs them: pod specs come from other people, so a value that does not
 * parse gives `undefined` (the caller records a problem) instead of throwing, and the resource's
 * name decides the unit (cpu in cores, everything else in base units: bytes, devices, ...).
 */

/** quantityValue parses a Kubernetes quantity into base units, or undefined if it is not one. */
export function quantityValue(value: string | number | undefined): number | undefined {
  if (value === undefined) return undefined;
  try {
    const n = parseQuantity(value);
    return Number.isFinite(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

/**
 * resourceValue parses the quantity of one resource: cpu is rounded to nanocores so "100m" is
 * exactly 0.1, byte-like resources to whole bytes, the rest (devices, counts) kept as parsed.
 * Negative values are not quantities of anything.
 */
export function resourceValue(resource: string, value: string | number | undefined): number | undefined {
  const n = quantityValue(value);
  if (n === undefined || n < 0) return undefined;
  if (resource === "cpu") return Math.round(n * 1e9) / 1e9;
  if (resource === "memory" || resource === "ephemeral-storage" || resource.startsWith("hugepages-")) {
    return Math.round(n);
  }
  return n;
}
