import { z } from "zod";
import { parseCpu, parseMemoryGiB } from "../kube/index.js";
import { amount } from "./quantities.js";
import { byKind } from "./by-kind.js";

/**
 * The `tuning:` block of a service spec says what the servo may change and within which bounds.
 * Units are the servo's (research/servo.md): cpu in cores, memory in GiB, so a number here is
 * NOT read like `resource_request` (millicores, MiB). Quantity strings ("125m", "128Mi") are
 * accepted too and converted.
 */

const cores = amount({
  what: "cpu",
  fromNumber: (n) => n,
  fromString: parseCpu,
  forms: 'a number of cores (0.25) or a quantity ("250m")',
});
const gib = amount({
  what: "mem",
  fromNumber: (n) => n,
  fromString: parseMemoryGiB,
  forms: 'a number of GiB (0.5) or a quantity ("512Mi")',
  unitHint: 'needs a unit, e.g. "512Mi" (or the number 0.5 for GiB)',
});

const selector = z.enum(["both", "request", "limit", "request_min_limit"]);

function resourceRange(unit: typeof cores) {
  return z.strictObject({
    min: unit.optional(),
    max: unit.optional(),
    step: unit.optional(),
    pinned: z.boolean().optional(),
    selector: selector.optional(),
    limit_min: unit.optional(),
  });
}

const replicasRange = z.strictObject({
  min: z.number().int().min(0).optional(),
  max: z.number().int().min(1).optional(),
  step: z.number().int().min(1).optional(),
  pinned: z.boolean().optional(),
});

const envRange = z.strictObject({
  type: z.literal("range"),
  min: z.number(),
  max: z.number(),
  step: z.number().positive(),
  default: z.number(),
  unit: z.string().optional(),
  pinned: z.boolean().optional(),
});

const envEnum = z.strictObject({
  type: z.literal("enum"),
  values: z.array(z.union([z.string(), z.number()])).min(1, "needs at least one value"),
  default: z.union([z.string(), z.number()]),
  unit: z.string().optional(),
  pinned: z.boolean().optional(),
});

/** orDefaults accepts `true` as "all defaults" (an empty map) besides the map itself. */
function orDefaults<T extends z.ZodType>(schema: T) {
  return byKind(
    {
      boolean: z
        .boolean()
        .refine((b) => b, "must be true (the defaults) or {min, max, step}; leave it out to not tune it")
        .transform((): z.output<T> => ({}) as z.output<T>),
      object: schema,
    },
    "must be true or {min, max, step}",
  );
}

/** onFail is what servo-k8s does after a failed adjustment of the main Deployment. */
const onFailMain = z.enum(["rollback", "destroy", "nop"]);

/** liveSchema is the k8slive section: every key optional, the seed's defaults filled in later. */
const liveSchema = z.strictObject({
  deploy_to: z.string().min(1).optional(),
  adjust_on: z.string().min(1).optional(),
  component: z.string().min(1).optional(),
  pod_name: z
    .string()
    .max(63)
    .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, "must be a DNS-1123 label")
    .optional(),
  main_section: z.string().min(1).optional(),
  settlement: z.number().min(0).optional(),
  on_fail: z.enum(["destroy", "nop"]).optional(),
  cpu_selector: z.enum(["both", "limit", "request"]).optional(),
  mem_selector: z.enum(["both", "limit", "request"]).optional(),
});

/** tuningSchema validates the `tuning:` block as written. */
export const tuningSchema = z.strictObject({
  cpu: orDefaults(resourceRange(cores)).optional(),
  mem: orDefaults(resourceRange(gib)).optional(),
  replicas: orDefaults(replicasRange).optional(),
  env: z
    .record(
      z.string().regex(/^[-._a-zA-Z][-._a-zA-Z0-9]*$/, "is not a valid environment variable name"),
      z.discriminatedUnion("type", [envRange, envEnum], { error: 'needs type "range" or "enum"' }),
    )
    .optional(),
  adjust_on: z.string().min(1).optional(),
  settlement: z.number().min(0).optional(),
  on_fail: onFailMain.optional(),
  // The servo's own schemas validate these two (normalizeTuning), so they are kept as written here.
  measure: byKind(
    { object: z.record(z.string(), z.unknown()) },
    "must be the servo's measure section: {connector: prometheus | jobs | synthetic, ...}",
  ).optional(),
  optimizer: byKind(
    { object: z.record(z.string(), z.unknown()) },
    "must be the servo's optimizer section: {objective, direction, max_trials, ...}",
  ).optional(),
  live: byKind(
    {
      boolean: z.boolean().transform((on): z.output<typeof liveSchema> | false => (on ? {} : false)),
      object: liveSchema,
    },
    "must be true, false or the k8slive settings",
  ).optional(),
});

/** RawTuning is a validated `tuning:` block before defaults are worked out. */
export type RawTuning = z.output<typeof tuningSchema>;
