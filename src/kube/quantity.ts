import { KubewiseError } from "../errors.js";

/**
 * Quantities: Kubernetes resource strings <-> numbers. CPU is handled in cores ("250m" <-> 0.25),
 * memory in bytes or GiB ("512Mi" <-> 0.5 GiB). Values are converted through exact integer
 * arithmetic (millicores, bytes) so a value on a step grid such as 0.125 GiB round-trips exactly.
 */
export class QuantityError extends KubewiseError {
  constructor(message: string) {
    super("invalid", message);
  }
}

const binary: Record<string, number> = {
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};
const decimal: Record<string, number> = {
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  "": 1,
  k: 1e3,
  K: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
};
const pattern = /^([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|K|M|G|T|P|E))?$/;
const GiB = 2 ** 30;

/**
 * parseQuantity parses any Kubernetes quantity ("1.5", "250m", "1Gi", "1G", "1e3") into a plain
 * number in base units. Garbage throws a QuantityError naming the value and the accepted forms.
 */
export function parseQuantity(value: string | number, what = "quantity"): number {
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new QuantityError(`${what}: ${value} is not a finite number`);
    return value;
  }
  const match = pattern.exec(value.trim());
  if (!match) {
    throw new QuantityError(
      `${what}: "${value}" is not a Kubernetes quantity (examples: "0.5", "250m", "512Mi", "1Gi", "1G")`,
    );
  }
  const [, num = "0", exp, suffix = ""] = match;
  const n = Number(num);
  if (exp) return n * 10 ** Number(exp.slice(1));
  return n * (binary[suffix] ?? decimal[suffix] ?? 1);
}

/** parseCpu returns cores: "250m" -> 0.25, "1.5" -> 1.5, 2 -> 2. Negative values are rejected. */
export function parseCpu(value: string | number): number {
  const cores = parseQuantity(value, "cpu");
  if (cores < 0) throw new QuantityError(`cpu: "${value}" is negative`);
  return Math.round(cores * 1e9) / 1e9;
}

/**
 * formatCpu renders cores the way kubectl shows them: whole cores as "2", otherwise millicores
 * "250m". Fractions of a millicore are rounded up to 1m, the API server's own resolution.
 */
export function formatCpu(cores: number): string {
  if (!Number.isFinite(cores) || cores < 0)
    throw new QuantityError(`cpu: ${cores} is not a valid number of cores`);
  const milli = Math.ceil(Math.round(cores * 1e6) / 1e3);
  return milli % 1000 === 0 ? String(milli / 1000) : `${milli}m`;
}

/** parseMemory returns bytes: "512Mi" -> 536870912, "1G" -> 1e9. */
export function parseMemory(value: string | number): number {
  const bytes = parseQuantity(value, "memory");
  if (bytes < 0) throw new QuantityError(`memory: "${value}" is negative`);
  return Math.round(bytes);
}

/** parseMemoryGiB returns GiB as a float: "512Mi" -> 0.5. */
export function parseMemoryGiB(value: string | number): number {
  return parseMemory(value) / GiB;
}

/**
 * formatMemory renders bytes with the largest binary suffix that divides them exactly
 * (536870912 -> "512Mi", 1.5 GiB -> "1536Mi"), else plain bytes.
 */
export function formatMemory(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) throw new QuantityError(`memory: ${bytes} is not a valid size`);
  const whole = Math.round(bytes);
  for (const suffix of ["Ei", "Pi", "Ti", "Gi", "Mi", "Ki"]) {
    const unit = binary[suffix] as number;
    if (whole >= unit && whole % unit === 0) return `${whole / unit}${suffix}`;
  }
  return String(whole);
}

/** formatMemoryGiB renders GiB as a quantity: 0.5 -> "512Mi", 0.125 -> "128Mi", 2 -> "2Gi". */
export function formatMemoryGiB(gib: number): string {
  if (!Number.isFinite(gib) || gib < 0) throw new QuantityError(`memory: ${gib} GiB is not a valid size`);
  return formatMemory(Math.round(gib * GiB));
}
