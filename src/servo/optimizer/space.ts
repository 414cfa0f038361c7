/**
 * The search space: one dimension per setting of a DESCRIPTION's descriptor. Ranges become grids
 * (min + k*step up to max), enums keep their values, pinned settings keep their current value and
 * are never proposed or adjusted. A point holds one value per dimension, in dimension order.
 */
import type { Descriptor, SettingValues } from "../protocol.js";

interface DimensionBase {
  component: string;
  setting: string;
  unit?: string;
}

/** GridDimension is a range setting: `count` values `min + i*step`. */
export interface GridDimension extends DimensionBase {
  kind: "grid";
  min: number;
  step: number;
  count: number;
  /** baseline is the current value (it may be off the grid; it is measured as it is). */
  baseline: number;
}

/** EnumDimension is an enum setting; values are unordered. */
export interface EnumDimension extends DimensionBase {
  kind: "enum";
  values: (number | string)[];
  baseline: number | string;
}

/** PinnedDimension is a setting the optimizer must not change. */
export interface PinnedDimension extends DimensionBase {
  kind: "pinned";
  baseline: number | string;
}

/** Dimension is one setting of the space. */
export type Dimension = GridDimension | EnumDimension | PinnedDimension;

/** SearchSpace is the settings of every component, in descriptor order. */
export interface SearchSpace {
  dimensions: Dimension[];
}

/** Point holds one value per dimension of a SearchSpace, in the same order. */
export type Point = (number | string)[];

/** CONTINUOUS_LEVELS is how many grid values a range without a step gets. */
export const CONTINUOUS_LEVELS = 65;

/**
 * spaceFromDescriptor builds the search space of a descriptor's application settings. When `tune`
 * lists components, only their settings are searched; every other component is held at its
 * current values, as if pinned (the tuning pod is tuned while the main Deployment stays put).
 */
export function spaceFromDescriptor(descriptor: Descriptor, tune: readonly string[] = []): SearchSpace {
  const dimensions: Dimension[] = [];
  for (const [component, c] of Object.entries(descriptor.application.components)) {
    const held = tune.length > 0 && !tune.includes(component);
    for (const [setting, s] of Object.entries(c.settings)) {
      const base = s.unit === undefined ? { component, setting } : { component, setting, unit: s.unit };
      if (s.type === "enum") {
        const current = s.value ?? s.values[0] ?? "";
        if (held || s.pinned || s.values.length < 2)
          dimensions.push({ ...base, kind: "pinned", baseline: current });
        else dimensions.push({ ...base, kind: "enum", values: [...s.values], baseline: current });
        continue;
      }
      const grid = gridOf(s.min, s.max, s.step);
      const current = s.value ?? gridValue(grid, Math.floor((grid.count - 1) / 2));
      if (held || s.pinned || grid.count < 2) dimensions.push({ ...base, kind: "pinned", baseline: current });
      else dimensions.push({ ...base, kind: "grid", ...grid, baseline: current });
    }
  }
  return { dimensions };
}

function gridOf(
  min: number,
  max: number,
  step: number | undefined,
): { min: number; step: number; count: number } {
  const lo = Math.min(min, max);
  const hi = Math.max(min, max);
  if (hi === lo) return { min: lo, step: 1, count: 1 };
  const s = step !== undefined && step > 0 ? step : (hi - lo) / (CONTINUOUS_LEVELS - 1);
  // The epsilon keeps max itself on the grid when (max-min)/step is 31.999999 in floating point.
  return { min: lo, step: s, count: Math.floor((hi - lo) / s + 1e-9) + 1 };
}

/** gridValue is the i-th value of a grid, rounded so 0.1 + 0.2 prints as 0.3. */
export function gridValue(grid: { min: number; step: number }, i: number): number {
  return Number((grid.min + i * grid.step).toPrecision(12));
}

/** gridMax is the largest value on a grid. */
export function gridMax(dim: GridDimension): number {
  return gridValue(dim, dim.count - 1);
}

/** gridIndex is the nearest grid index of a value. */
export function gridIndex(dim: GridDimension, value: number): number {
  return Math.max(0, Math.min(dim.count - 1, Math.round((value - dim.min) / dim.step)));
}

/** baselinePoint is the current value of every setting. */
export function baselinePoint(space: SearchSpace): Point {
  return space.dimensions.map((d) => d.baseline);
}

/** freeDimensions are the indices of dimensions the search may change. */
export function freeDimensions(space: SearchSpace): number[] {
  return space.dimensions.flatMap((d, i) => (d.kind === "pinned" ? [] : [i]));
}

/** spaceSize is the number of distinct points (Infinity past 2^53). */
export function spaceSize(space: SearchSpace): number {
  let n = 1;
  for (const d of space.dimensions)
    n *= d.kind === "grid" ? d.count : d.kind === "enum" ? d.values.length : 1;
  return n;
}

/** pointKey identifies a point, for "already tried" checks. */
export function pointKey(point: Point): string {
  return JSON.stringify(point);
}

/**
 * toSettingValues turns a point into component -> setting -> value. Pinned settings are left out
 * unless `withPinned` (an ADJUST never sends them; a stored trial keeps them for the objective).
 */
export function toSettingValues(space: SearchSpace, point: Point, withPinned = false): SettingValues {
  const out: SettingValues = {};
  space.dimensions.forEach((d, i) => {
    const v = point[i];
    if ((d.kind === "pinned" && !withPinned) || v === undefined) return;
    (out[d.component] ??= {})[d.setting] = v;
  });
  return out;
}

/**
 * fromSettingValues reads a point back from stored setting values; a free setting missing from
 * them takes its baseline. Returns undefined when an enum value is not (or no longer) allowed.
 */
export function fromSettingValues(space: SearchSpace, values: SettingValues): Point | undefined {
  const point: Point = [];
  for (const d of space.dimensions) {
    const v = values[d.component]?.[d.setting] ?? d.baseline;
    if (d.kind === "enum" && !d.values.includes(v)) return undefined;
    if (d.kind === "grid" && typeof v !== "number") return undefined;
    point.push(d.kind === "pinned" ? d.baseline : v);
  }
  return point;
}

/** differsFrom tells whether applying `point` would change any free setting of `current`. */
export function differsFrom(space: SearchSpace, point: Point, current: SettingValues): boolean {
  return space.dimensions.some(
    (d, i) => d.kind !== "pinned" && current[d.component]?.[d.setting] !== point[i],
  );
}
