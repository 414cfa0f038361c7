import { z } from "zod";
import { parseCpu, parseMemory } from "../kube/index.js";

/**
 * Resource amounts in a service spec take two forms: Opta's plain numbers (cpu in millicores,
 * memory in MB, which Opta renders as "Mi") and Kubernetes quantity strings ("250m", "1.5",
 * "256Mi", "1Gi"). These schemas accept both and yield cores and bytes. They are transforms over
 * unknown input rather than unions, so each mistake gets its own message instead of "matches no
 * form".
 *
 * A whole-number string ("100") is read like the number: that is what Opta's `cpu: "{vars.cpu}"`
 * becomes once the placeholder is filled, and Opta pastes it in front of "m" (or "Mi"). Any other
 * string is a Kubernetes quantity; a plain decimal ("1.5") is cores, as Kubernetes reads it, since
 * Opta's millicores are whole and so cannot be meant.
 */

interface AmountRule {
  what: string;
  /** fromNumber converts a plain number in the field's Opta unit. */
  fromNumber: (n: number) => number;
  /** numberProblem says why a positive number is not an amount of this field, if it is not. */
  numberProblem?: (n: number) => string | undefined;
  /** wholeStrings reads a whole-number string ("100") as that number, in the Opta unit. */
  wholeStrings?: boolean;
  fromString: (s: string) => number;
  /** forms says what is accepted, for messages. */
  forms: string;
  /** unitless strings are refused with this hint, when set. */
  unitHint?: string;
}

/** amount builds a schema for a positive amount written as a number or a quantity string. */
export function amount(rule: AmountRule) {
  return z.unknown().transform((value, ctx): number => {
    const fail = (message: string): never => {
      ctx.issues.push({ code: "custom", message, input: value });
      return z.NEVER;
    };
    const fromNumber = (n: number): number => {
      if (!Number.isFinite(n) || n <= 0) return fail(`${rule.what} must be more than zero`);
      const problem = rule.numberProblem?.(n);
      return problem === undefined ? rule.fromNumber(n) : fail(problem);
    };
    if (typeof value === "number") return fromNumber(value);
    if (typeof value !== "string") return fail(`must be ${rule.forms}`);
    if (rule.wholeStrings && /^\s*\d+\s*$/.test(value)) return fromNumber(Number(value));
    if (rule.unitHint && /^\s*[\d.]+\s*$/.test(value)) return fail(rule.unitHint);
    let n: number;
    try {
      n = rule.fromString(value);
    } catch {
      return fail(`must be ${rule.forms}`);
    }
    return n > 0 ? n : fail(`${rule.what} must be more than zero`);
  });
}

const MiB = 2 ** 20;

/**
 * cpuQuantity is cpu in cores: a number or whole-number string is millicores (Opta: `cpu: 100`,
 * `cpu: "{vars.cpu}"`), any other string a Kubernetes quantity ("250m", "1.5" cores). A fraction
 * of a millicore is refused rather than rounded: `cpu: 0.5` almost always meant half a core.
 */
export const cpuQuantity = amount({
  what: "cpu",
  fromNumber: (milli) => milli / 1000,
  numberProblem: fractionalMillicores,
  wholeStrings: true,
  fromString: parseCpu,
  forms: 'a whole number of millicores (100) or a quantity ("250m", "1.5")',
});

function fractionalMillicores(n: number): string | undefined {
  if (Number.isInteger(n)) return undefined;
  const allowed = "must be a whole number of millicores (a number is millicores, as in Opta)";
  const milli = Math.round(n * 1e6) / 1e3;
  // Read as cores when that gives whole millicores (0.5 -> 500m), the likely intent.
  return Number.isInteger(milli) && n < 100
    ? `${allowed}: write ${milli} or "${milli}m" for ${n} cores`
    : `${allowed}: write ${Math.round(n)} or a quantity such as "${Math.round(n)}m"`;
}

/**
 * memoryQuantity is memory in bytes: a number or whole-number string is MiB (Opta: `memory: 128`
 * renders "128Mi"), any other string a quantity with a unit. A decimal string without a unit is
 * refused: "0.5" would be half a byte to Kubernetes, which is never what was meant.
 */
export const memoryQuantity = amount({
  what: "memory",
  fromNumber: (mib) => Math.round(mib * MiB),
  wholeStrings: true,
  fromString: parseMemory,
  forms: 'a number of MiB (128) or a quantity ("256Mi", "1Gi")',
  unitHint: 'needs a unit, e.g. "512Mi" (a whole number such as 128 is MiB)',
});

/**
 * storageQuantity is a volume size in bytes: a number or whole-number string is GiB (Opta's
 * `size: 10`), any other string a quantity with a unit.
 */
export const storageQuantity = amount({
  what: "size",
  fromNumber: (gib) => Math.round(gib * 2 ** 30),
  wholeStrings: true,
  fromString: parseMemory,
  forms: 'a number of GiB (10) or a quantity ("10Gi")',
  unitHint: 'needs a unit, e.g. "512Mi" (a whole number such as 10 is GiB)',
});

/**
 * optaUnitNote warns about a cpu or memory amount written as a whole-number string, which kubewise
 * reads in Opta's unit (millicores, MiB) while Kubernetes reads the same string as cores or bytes:
 * someone used to Kubernetes manifests who writes `cpu: "2"` gets 2m, not 2 cores. `field` is the
 * path shown (`resource_request.cpu`); it returns undefined for anything else.
 */
export function optaUnitNote(field: string, kind: "cpu" | "memory", value: unknown): string | undefined {
  if (typeof value !== "string" || !/^\s*\d+\s*$/.test(value)) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) return undefined;
  const written = `${field}: "${value.trim()}"`;
  return kind === "cpu"
    ? `${written} is read as ${plural(n, "millicore")} (Opta's unit), where Kubernetes reads ${plural(n, "core")}: for ${plural(n, "core")} write "${n * 1000}m"; write "${n}m" (or the number ${n}) to keep ${plural(n, "millicore")}`
    : `${written} is read as ${n} MiB (Opta's unit), where Kubernetes reads ${plural(n, "byte")}: write "${n}Mi" (or the number ${n}) to keep ${n} MiB, or give the unit you mean ("${n}Gi")`;
}

function plural(n: number, unit: string): string {
  return `${n} ${unit}${n === 1 ? "" : "s"}`;
}
