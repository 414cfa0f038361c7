import { z } from "zod";
import { parseCpu, parseMemory } from "../kube/quantity.js";

/**
 * Resource amounts in a service spec take two forms: Opta's plain numbers (cpu in millicores,
 * memory in MB, which Opta renders as "Mi") and Kubernetes quantity strings ("250m", "0.5",
 * "256Mi", "1Gi"). These schemas accept both and yield cores and bytes. They are transforms over
 * unknown input rather than unions, so each mistake gets its own message instead of "matches no
 * form".
 */

interface AmountRule {
  what: string;
  /** fromNumber converts a plain number in the field's Opta unit. */
  fromNumber: (n: number) => number;
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
    if (typeof value === "number") {
      if (!Number.isFinite(value) || value <= 0) return fail(`${rule.what} must be more than zero`);
      return rule.fromNumber(value);
    }
    if (typeof value !== "string") return fail(`must be ${rule.forms}`);
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

/** cpuQuantity is cpu in cores: a number is millicores (Opta: `cpu: 100`), a string a quantity. */
export const cpuQuantity = amount({
  what: "cpu",
  fromNumber: (milli) => milli / 1000,
  fromString: parseCpu,
  forms: 'a number of millicores (100) or a quantity ("250m", "0.5")',
});

/**
 * memoryQuantity is memory in bytes: a number is MiB (Opta: `memory: 128` renders "128Mi"), a
 * string a quantity with a unit. A unitless string is refused: "128" would be 128 bytes, which
 * is never what was meant.
 */
export const memoryQuantity = amount({
  what: "memory",
  fromNumber: (mib) => Math.round(mib * MiB),
  fromString: parseMemory,
  forms: 'a number of MiB (128) or a quantity ("256Mi", "1Gi")',
  unitHint: 'needs a unit, e.g. "128Mi" (or the number 128 for MiB)',
});

/** storageQuantity is a volume size in bytes: a number is GiB (Opta's `size: 10`), a string a quantity. */
export const storageQuantity = amount({
  what: "size",
  fromNumber: (gib) => Math.round(gib * 2 ** 30),
  fromString: parseMemory,
  forms: 'a number of GiB (10) or a quantity ("10Gi")',
  unitHint: 'needs a unit, e.g. "10Gi" (or the number 10 for GiB)',
});
