/**
 * Package config reads `servo.yaml`: the seed's `k8s` section (the main component and its guard
 * rails), the seed's `k8slive` section (the tuning pod), and kubewise's own `measure` and
 * `optimizer` sections. The seed's example loads exactly as written (test/fixtures/servo/seed.yaml).
 *
 * Validation happens here, once, so that the connectors can trust what they get: ranges whose
 * step does not divide them, defaults outside their range, a main section with several
 * components or a `main_section` naming nothing all fail at load time, each problem naming the
 * file, the field, the value found and what is allowed.
 */
import { z } from "zod";
import { parseConfig, readYamlFile } from "../config/index.js";
import { compileAdjustOn, type AdjustOnExpression } from "./expr.js";
import { durationSchema } from "./protocol.js";
import { optimizerConfigSchema, type OptimizerConfig } from "./optimizer/config.js";

// ---------------------------------------------------------------------------------------------
// Internal configuration types (what the connectors use)

/** RangeSpec is a numeric grid: min, min+step, ..., max. */
export interface RangeSpec {
  min: number;
  max: number;
  step: number;
}

/**
 * Selector says which part of a container's resources a cpu or mem setting reads and writes
 * (servo-k8s): `both` sets request and limit; `request` sets the request and clears the limit;
 * `limit` sets the limit and clears the request; `request_min_limit` sets the request and a limit
 * of max(value, limitMin).
 */
export type Selector = "both" | "request" | "limit" | "request_min_limit";

/** ResourceSetting is a cpu (cores) or mem (GiB) setting of the main component. */
export interface ResourceSetting extends RangeSpec {
  /** pinned settings are reported but never changed. @default false */
  pinned: boolean;
  /** selector, @default "both". */
  selector: Selector;
  /** limitMin is the smallest limit written with selector `request_min_limit` (required there). */
  limitMin?: number;
}

/**
 * ReplicasSetting is the main component's replica count. min and max are absent when the
 * configuration leaves them out: servo-k8s then reports the current count as min, max and value.
 */
export interface ReplicasSetting {
  min?: number;
  max?: number;
  /** step, @default 1 */
  step: number;
  pinned: boolean;
}

/** RangeEnvSetting is a numeric environment variable on a grid. */
export interface RangeEnvSetting extends RangeSpec {
  type: "range";
  /** default is the value used when the container has no such variable yet. */
  default: number;
  unit?: string;
  pinned: boolean;
}

/** EnumEnvSetting is an environment variable taking one of a list of values (kept as strings, as env values are). */
export interface EnumEnvSetting {
  type: "enum";
  values: string[];
  /** default is the value used when the container has no such variable yet. */
  default: string;
  unit?: string;
  pinned: boolean;
}

/** EnvSetting is a range or enum environment variable setting. */
export type EnvSetting = RangeEnvSetting | EnumEnvSetting;

/** MainComponent is the sole component of the main section: one container of one Deployment. */
export interface MainComponent {
  /** key is the component key as written, `deployment/container` or `deployment`. */
  key: string;
  deployment: string;
  /** container is absent when the key names only the Deployment: its first container is meant. */
  container?: string;
  /** settings holds only what the configuration lists; servo-k8s reports nothing else. */
  settings: { cpu?: ResourceSetting; mem?: ResourceSetting; replicas?: ReplicasSetting };
  /** env settings, in the order written. */
  env: Record<string, EnvSetting>;
}

/** MainOnFail is what the main section does when a rollout or settlement fails. */
export type MainOnFail = "rollback" | "destroy" | "nop";

/** MainSection is the `k8s` section (or the one `k8slive.main_section` names). */
export interface MainSection {
  /** name is the section's key in the file, `k8s` by default. */
  name: string;
  /** namespace of the Deployment; absent means the caller's default (servo-k8s used the app id). */
  namespace?: string;
  /** adjustOn gates the main adjust; absent means always adjust. */
  adjustOn?: AdjustOnExpression;
  /** settlementSeconds after a rollout; absent means none (and lets k8slive's apply to the tuning pod). */
  settlementSeconds?: number;
  /** onFail, @default "rollback" */
  onFail: MainOnFail;
  component: MainComponent;
}

/** TuningSelector is a k8slive cpu_selector/mem_selector. */
export type TuningSelector = "both" | "limit" | "request";

/** TuningSection is the `k8slive` section with the seed's defaults filled in. */
export interface TuningSection {
  /** deployTo: adjust only when control.userdata.deploy_to equals it. @default "tuning" */
  deployTo: string;
  /** adjustOn gates the tuning adjust; the main section's adjust_on is not inherited. */
  adjustOn?: AdjustOnExpression;
  /** component is the name reported to the optimizer. @default "opsani-tuning" */
  component: string;
  /** podName is the tuning pod's name. @default "opsani-tuning" */
  podName: string;
  /** mainSection names the section holding the main component. @default "k8s" */
  mainSection: string;
  /** settlementSeconds, overridden by the main section's settlement. @default 0 */
  settlementSeconds: number;
  /** onFail, @default "destroy" */
  onFail: "destroy" | "nop";
  /** cpuSelector, @default "both" */
  cpuSelector: TuningSelector;
  /** memSelector, @default "both" */
  memSelector: TuningSelector;
  /** cpu guard rails: the main component's cpu min/max/step, else K8SLIVE_RESOURCE_DEFAULTS. */
  cpu: RangeSpec;
  /** mem guard rails: the main component's mem min/max/step, else K8SLIVE_RESOURCE_DEFAULTS. */
  mem: RangeSpec;
  /** replicas of the tuning pod: 0 (no pod) or 1. */
  replicas: RangeSpec;
}

/** PrometheusReduce turns a series into one number; absent means report the series itself. */
export type PrometheusReduce = "last" | "avg" | "max";

/** PrometheusMetric is one PromQL metric. */
export interface PrometheusMetric {
  query: string;
  /** unit reported with the reading. @default "" */
  unit: string;
  /** stepSeconds between points of the range query. @default 60 (servo-prom's period) */
  stepSeconds: number;
  /** reduce, when set, reports a scalar instead of time series. */
  reduce?: PrometheusReduce;
}

/** PrometheusMeasureConfig configures the Prometheus measure connector. */
export interface PrometheusMeasureConfig {
  connector: "prometheus";
  /** baseUrl of the Prometheus HTTP API. @default "http://localhost:9090" */
  baseUrl: string;
  /** timeoutSeconds per query. @default 30 */
  timeoutSeconds: number;
  metrics: Record<string, PrometheusMetric>;
}

/** SyntheticMeasureConfig configures the SIMULATED workload (demo and benchmark only). */
export interface SyntheticMeasureConfig {
  connector: "synthetic";
  /** seed of the noise. @default 1 */
  seed: number;
  /** noise is the relative standard deviation of each reading. @default 0.03 */
  noise: number;
  /** loadRps is the offered load in requests per second. @default 300 */
  loadRps: number;
  /** delayEnv names the env variable read as the commit delay in ms. @default "COMMIT_DELAY" */
  delayEnv: string;
  /** timeScale is the fraction of warmup+duration+delay actually waited. @default 0 */
  timeScale: number;
}

/** JobsMeasureConfig selects the jobs measure connector; its options are validated by src/jobs. */
export interface JobsMeasureConfig {
  connector: "jobs";
  options: Record<string, unknown>;
}

/** MeasureConfig is the `measure` section. */
export type MeasureConfig = PrometheusMeasureConfig | SyntheticMeasureConfig | JobsMeasureConfig;

/** ServoConfig is a loaded servo.yaml. */
export interface ServoConfig {
  /** file it was read from, when it was. */
  file?: string;
  main: MainSection;
  /** tuning is present when the file has a `k8slive` section. */
  tuning?: TuningSection;
  measure?: MeasureConfig;
  /** optimizer is the local optimizer's section (schema in src/servo/optimizer/config.ts). */
  optimizer?: OptimizerConfig;
  /** remote is the `remote` section: the optimizer `servo run` talks to instead of the local one. */
  remote?: RemoteOptimizer;
}

/** RemoteOptimizer is the `remote` section: an optimizer's servo endpoint and its token. */
export interface RemoteOptimizer {
  /** url is the servo endpoint, e.g. https://HOST/accounts/ACCT/applications/APP/servo. */
  url: string;
  /** tokenFile holds the bearer token; without it OPTUNE_AUTH_TOKEN is used, if set. */
  tokenFile?: string;
}

const remoteSchema = z.strictObject({
  url: z.string().regex(/^https?:\/\/[^\s/]+/, "must be an http(s) URL of the optimizer's servo endpoint"),
  token_file: z.string().min(1, "must name the file holding the bearer token").optional(),
});

// ---------------------------------------------------------------------------------------------
// Defaults (servo-k8s and servo-k8slive, research/servo.md §2.2 and §3.1)

/** K8S_CPU_DEFAULTS are servo-k8s's cpu guard rails when a listed cpu setting leaves them out. */
export const K8S_CPU_DEFAULTS: Readonly<RangeSpec> = { min: 0.0125, max: 4, step: 0.0125 };
/** K8S_MEM_DEFAULTS are servo-k8s's mem guard rails (GiB) when a listed mem setting leaves them out. */
export const K8S_MEM_DEFAULTS: Readonly<RangeSpec> = { min: 0.125, max: 4, step: 0.125 };
/** K8SLIVE_RESOURCE_DEFAULTS are servo-k8slive's cpu and mem guard rails when the main component lists none. */
export const K8SLIVE_RESOURCE_DEFAULTS: Readonly<RangeSpec> = { min: 0.125, max: 4, step: 0.125 };
/** TUNING_REPLICAS: the tuning pod exists (1) or not (0). */
export const TUNING_REPLICAS: Readonly<RangeSpec> = { min: 0, max: 1, step: 1 };
/** DEFAULT_ADJUST_TIMEOUT_SECONDS bounds a rollout when control.timeout is absent (servo-k8s, servo-k8slive). */
export const DEFAULT_ADJUST_TIMEOUT_SECONDS = 630;

// ---------------------------------------------------------------------------------------------
// Exact decimal arithmetic for grids

/** Decimal is an exact decimal number: units × 10^-scale. */
interface Decimal {
  units: bigint;
  scale: number;
}

/**
 * toDecimal reads the shortest decimal that round-trips to `n` (what YAML's `0.125` or `0.1`
 * meant), so grid checks are exact: 0.3 - 0.1 is 0.2 here, not 0.19999999999999998.
 */
function toDecimal(n: number): Decimal {
  const match = /^(-?)(\d+)(?:\.(\d+))?(?:e([+-]?\d+))?$/.exec(String(n));
  if (!match) throw new RangeError(`not a finite number: ${n}`);
  const [, sign, whole = "", fraction = "", exponent = "0"] = match;
  let units = BigInt(`${sign}${whole}${fraction}`);
  let scale = fraction.length - Number(exponent);
  if (scale < 0) {
    units *= 10n ** BigInt(-scale);
    scale = 0;
  }
  return { units, scale };
}

function atScale(d: Decimal, scale: number): bigint {
  return d.units * 10n ** BigInt(scale - d.scale);
}

/**
 * stepsBetween returns how many steps of `step` lead from `from` to `to`, computed exactly, or
 * undefined when the distance is not a whole number of steps (or step is not positive).
 */
export function stepsBetween(from: number, to: number, step: number): number | undefined {
  const [a, b, s] = [toDecimal(from), toDecimal(to), toDecimal(step)];
  const scale = Math.max(a.scale, b.scale, s.scale);
  const distance = atScale(b, scale) - atScale(a, scale);
  const unit = atScale(s, scale);
  if (unit <= 0n || distance % unit !== 0n) return undefined;
  return Number(distance / unit);
}

/** isOnGrid tells whether `value` is min + k*step for a whole k >= 0, exactly. */
export function isOnGrid(value: number, grid: RangeSpec): boolean {
  if (value < grid.min || value > grid.max) return false;
  if (value === grid.min) return true;
  return stepsBetween(grid.min, value, grid.step) !== undefined;
}

function decimalText(n: number): string {
  const d = toDecimal(n);
  if (d.scale === 0) return d.units.toString();
  const negative = d.units < 0n;
  const digits = (negative ? -d.units : d.units).toString().padStart(d.scale + 1, "0");
  const text = `${digits.slice(0, -d.scale)}.${digits.slice(-d.scale)}`.replace(/\.?0+$/, "");
  return negative ? `-${text}` : text;
}

// ---------------------------------------------------------------------------------------------
// Schemas

type Ctx = z.core.$RefinementCtx;

const SECTIONS = ["k8slive", "measure", "optimizer", "remote"] as const;

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const ENV_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;

function nullAsEmpty(value: unknown): unknown {
  return value === null ? {} : value;
}

const dnsLabel = (what: string): z.ZodString =>
  z
    .string()
    .max(63, { error: `must be a ${what} of at most 63 characters` })
    .regex(DNS_LABEL, { error: `must be a ${what}: lower-case letters, digits and "-"` });

const adjustOnSchema = z.string().transform((source, ctx) => {
  try {
    return compileAdjustOn(source);
  } catch (err) {
    ctx.addIssue({ code: "custom", message: (err as Error).message, input: source });
    return z.NEVER;
  }
});

/**
 * checkRange reports min > max and a step that does not divide max - min, at the field to fix.
 * `defaulted` names the fields that took a default, so the message can say so.
 */
function checkRange(ctx: Ctx, grid: RangeSpec, defaulted: ReadonlySet<string> = new Set()): boolean {
  const note = (field: string): string => (defaulted.has(field) ? " (the default)" : "");
  if (grid.min > grid.max) {
    const field = defaulted.has("min") ? "max" : "min";
    const other = field === "min" ? "max" : "min";
    ctx.addIssue({
      code: "custom",
      path: [field],
      input: grid[field],
      message: `min must not exceed max: ${field} is ${decimalText(grid[field])}, ${other} is ${decimalText(grid[other])}${note(other)}`,
    });
    return false;
  }
  if (grid.max > grid.min && stepsBetween(grid.min, grid.max, grid.step) === undefined) {
    const field = defaulted.has("step") ? (defaulted.has("max") ? "min" : "max") : "step";
    ctx.addIssue({
      code: "custom",
      path: [field],
      input: grid[field],
      message: `step ${decimalText(grid.step)}${note("step")} must divide max - min (${decimalText(grid.max)} - ${decimalText(grid.min)}) into whole steps`,
    });
    return false;
  }
  return true;
}

const selectorSchema = z.enum(["both", "request", "limit", "request_min_limit"]);

/** resourceSettingSchema builds the cpu or mem setting schema with that resource's defaults. */
function resourceSettingSchema(defaults: Readonly<RangeSpec>) {
  return z.preprocess(
    nullAsEmpty,
    z
      .strictObject({
        min: z.number().positive().optional(),
        max: z.number().positive().optional(),
        step: z.number().positive().optional(),
        pinned: z.boolean().default(false),
        selector: selectorSchema.default("both"),
        limit_min: z.number().positive().optional(),
      })
      .transform((raw, ctx): ResourceSetting => {
        const defaulted = new Set((["min", "max", "step"] as const).filter((k) => raw[k] === undefined));
        const grid = {
          min: raw.min ?? defaults.min,
          max: raw.max ?? defaults.max,
          step: raw.step ?? defaults.step,
        };
        checkRange(ctx, grid, defaulted);
        if (raw.selector === "request_min_limit" && raw.limit_min === undefined) {
          ctx.addIssue({
            code: "custom",
            path: ["limit_min"],
            message: "is required with selector request_min_limit",
          });
        }
        if (raw.selector !== "request_min_limit" && raw.limit_min !== undefined) {
          ctx.addIssue({
            code: "custom",
            path: ["limit_min"],
            input: raw.limit_min,
            message: `is only used with selector request_min_limit, not ${raw.selector}`,
          });
        }
        const setting: ResourceSetting = { ...grid, pinned: raw.pinned, selector: raw.selector };
        if (raw.limit_min !== undefined) setting.limitMin = raw.limit_min;
        return setting;
      }),
  );
}

const replicasSchema = z.preprocess(
  nullAsEmpty,
  z
    .strictObject({
      min: z.int().min(0).optional(),
      max: z.int().min(0).optional(),
      step: z.int().positive().default(1),
      pinned: z.boolean().default(false),
    })
    .transform((raw, ctx): ReplicasSetting => {
      if ((raw.min === undefined) !== (raw.max === undefined)) {
        const missing = raw.min === undefined ? "min" : "max";
        ctx.addIssue({
          code: "custom",
          path: [missing],
          message:
            "is required when the other bound is set (leave both out to use the current replica count)",
        });
      } else if (raw.min !== undefined && raw.max !== undefined) {
        checkRange(ctx, { min: raw.min, max: raw.max, step: raw.step });
      }
      const setting: ReplicasSetting = { step: raw.step, pinned: raw.pinned };
      if (raw.min !== undefined) setting.min = raw.min;
      if (raw.max !== undefined) setting.max = raw.max;
      return setting;
    }),
);

const defaultError = (kind: string) => (issue: { input?: unknown }) =>
  issue.input === undefined
    ? `is required: the value used when the container has no such variable yet (${kind})`
    : `must be ${kind}`;

const rangeEnvSchema = z
  .strictObject({
    type: z.literal("range"),
    min: z.number(),
    max: z.number(),
    /** step, @default 1 */
    step: z.number().positive().optional(),
    default: z.number({ error: defaultError("a number") }),
    unit: z.string().optional(),
    pinned: z.boolean().default(false),
  })
  .transform((raw, ctx): RangeEnvSetting => {
    const grid = { min: raw.min, max: raw.max, step: raw.step ?? 1 };
    const defaulted = new Set(raw.step === undefined ? ["step"] : []);
    if (checkRange(ctx, grid, defaulted) && !isOnGrid(raw.default, grid)) {
      ctx.addIssue({
        code: "custom",
        path: ["default"],
        input: raw.default,
        message: `must be within [${decimalText(grid.min)}, ${decimalText(grid.max)}] and on the grid min + k*${decimalText(grid.step)}`,
      });
    }
    const setting: RangeEnvSetting = { type: "range", ...grid, default: raw.default, pinned: raw.pinned };
    if (raw.unit !== undefined) setting.unit = raw.unit;
    return setting;
  });

const envValue = z.union([z.string(), z.number(), z.boolean()]).transform(String);

const enumEnvSchema = z
  .strictObject({
    type: z.literal("enum"),
    values: z.array(envValue).min(1, { error: "must list at least one value" }),
    default: z.union([z.string(), z.number(), z.boolean()], { error: defaultError("one of the values") }),
    unit: z.string().optional(),
    pinned: z.boolean().default(false),
  })
  .transform((raw, ctx): EnumEnvSetting => {
    const dflt = String(raw.default);
    const duplicate = raw.values.find((v, i) => raw.values.indexOf(v) !== i);
    if (duplicate !== undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["values"],
        input: raw.values,
        message: `lists "${duplicate}" twice`,
      });
    } else if (!raw.values.includes(dflt)) {
      ctx.addIssue({
        code: "custom",
        path: ["default"],
        input: raw.default,
        message: `must be one of ${raw.values.map((v) => JSON.stringify(v)).join(", ")}`,
      });
    }
    const setting: EnumEnvSetting = { type: "enum", values: raw.values, default: dflt, pinned: raw.pinned };
    if (raw.unit !== undefined) setting.unit = raw.unit;
    return setting;
  });

// The `type` check comes first so a bad type reads `must be one of "range", "enum"` at `type`.
const envSettingSchema = z
  .looseObject({ type: z.enum(["range", "enum"]) })
  .pipe(z.discriminatedUnion("type", [rangeEnvSchema, enumEnvSchema]));

const componentSchema = z.strictObject({
  settings: z
    .preprocess(
      nullAsEmpty,
      z.strictObject({
        cpu: resourceSettingSchema(K8S_CPU_DEFAULTS).optional(),
        mem: resourceSettingSchema(K8S_MEM_DEFAULTS).optional(),
        replicas: replicasSchema.optional(),
      }),
    )
    .default({}),
  env: z.preprocess(nullAsEmpty, z.record(z.string(), envSettingSchema)).default({}),
});

/** parseComponentKey splits `deployment/container`; undefined when the key is not of that form. */
export function parseComponentKey(key: string): { deployment: string; container?: string } | undefined {
  const [deployment = "", container, ...rest] = key.split("/");
  if (rest.length > 0 || deployment.length > 253 || !DNS_SUBDOMAIN.test(deployment)) return undefined;
  if (container === undefined) return { deployment };
  if (container.length > 63 || !DNS_LABEL.test(container)) return undefined;
  return { deployment, container };
}

/**
 * soleComponent reports a components map that does not hold exactly one entry. It runs even when
 * the entries have problems of their own (`when`), so the count is reported together with them.
 */
function soleComponent(value: unknown, ctx: Ctx): void {
  if (!isRecord(value) || Object.keys(value).length === 1) return;
  ctx.addIssue({
    code: "custom",
    input: Object.keys(value),
    message:
      "must hold exactly one component, the main Deployment's container (k8slive derives the tuning pod from it)",
  });
}

const mainSectionSchema = z
  .strictObject({
    namespace: dnsLabel("namespace name").optional(),
    adjust_on: adjustOnSchema.optional(),
    settlement: durationSchema.optional(),
    on_fail: z.enum(["rollback", "destroy", "nop"]).default("rollback"),
    application: z.strictObject({
      components: z.record(z.string(), componentSchema).superRefine(soleComponent, { when: () => true }),
    }),
  })
  .transform((raw, ctx) => {
    const entries = Object.entries(raw.application.components);
    const path = ["application", "components"];
    // The count was reported by soleComponent; nothing more to say.
    if (entries.length !== 1) return z.NEVER;
    const [key, component] = entries[0] as [string, z.output<typeof componentSchema>];
    for (const name of Object.keys(component.env)) {
      if (!ENV_NAME.test(name)) {
        ctx.addIssue({
          code: "custom",
          path: [...path, key, "env", name],
          input: name,
          message:
            'is not a valid environment variable name: letters, digits, "_", "-" and ".", not starting with a digit',
        });
      }
    }
    const parsed = parseComponentKey(key);
    if (!parsed) {
      ctx.addIssue({
        code: "custom",
        path: [...path, key],
        input: key,
        message: `component key must be "deployment" or "deployment/container" (Kubernetes names)`,
      });
      return z.NEVER;
    }
    return { raw, component: { key, ...parsed, settings: component.settings, env: component.env } };
  });

const tuningSectionSchema = z.preprocess(
  nullAsEmpty,
  z.strictObject({
    deploy_to: z.string().min(1).default("tuning"),
    adjust_on: adjustOnSchema.optional(),
    component: z.string().min(1).default("opsani-tuning"),
    pod_name: z
      .string()
      .max(253)
      .regex(DNS_SUBDOMAIN, { error: 'must be a pod name: lower-case letters, digits, "-" and "."' })
      .default("opsani-tuning"),
    main_section: z
      .string()
      .min(1)
      .refine((n) => !(SECTIONS as readonly string[]).includes(n), {
        error: `must name the main section, not one of ${SECTIONS.map((n) => JSON.stringify(n)).join(", ")}`,
      })
      .default("k8s"),
    settlement: durationSchema.default(0),
    on_fail: z.enum(["destroy", "nop"]).default("destroy"),
    cpu_selector: z.enum(["both", "limit", "request"]).default("both"),
    mem_selector: z.enum(["both", "limit", "request"]).default("both"),
  }),
);

const positiveDuration = durationSchema.refine((s) => s > 0, { error: "must be more than 0 seconds" });

const prometheusSchema = z.strictObject({
  connector: z.literal("prometheus"),
  base_url: z.url({ protocol: /^https?$/, error: "must be an http(s) URL" }).default("http://localhost:9090"),
  timeout: positiveDuration.default(30),
  metrics: z
    .record(
      z.string().min(1),
      z.strictObject({
        query: z.string().trim().min(1, { error: "must be a PromQL query" }),
        unit: z.string().default(""),
        step: positiveDuration.default(60),
        reduce: z.enum(["last", "avg", "max"]).optional(),
      }),
    )
    .refine((m) => Object.keys(m).length > 0, { error: "must define at least one metric" }),
});

const syntheticSchema = z.strictObject({
  connector: z.literal("synthetic"),
  seed: z.int().default(1),
  noise: z.number().min(0).max(0.5).default(0.03),
  load_rps: z.number().positive().default(300),
  delay_env: z
    .string()
    .regex(ENV_NAME, { error: "must be an environment variable name" })
    .default("COMMIT_DELAY"),
  time_scale: z.number().min(0).max(1).default(0),
});

// The jobs connector's options belong to src/jobs, which validates them when it starts.
const jobsSchema = z.looseObject({ connector: z.literal("jobs") });

const measureSchema = z
  .looseObject({ connector: z.enum(["prometheus", "synthetic", "jobs"]) })
  .pipe(z.discriminatedUnion("connector", [prometheusSchema, syntheticSchema, jobsSchema]));

function toMeasureConfig(raw: z.output<typeof measureSchema>): MeasureConfig {
  switch (raw.connector) {
    case "prometheus": {
      const p = raw as z.output<typeof prometheusSchema>;
      const metrics: Record<string, PrometheusMetric> = {};
      for (const [name, m] of Object.entries(p.metrics)) {
        metrics[name] = { query: m.query, unit: m.unit, stepSeconds: m.step };
        if (m.reduce !== undefined) metrics[name].reduce = m.reduce;
      }
      return { connector: "prometheus", baseUrl: p.base_url, timeoutSeconds: p.timeout, metrics };
    }
    case "synthetic": {
      const s = raw as z.output<typeof syntheticSchema>;
      return {
        connector: "synthetic",
        seed: s.seed,
        noise: s.noise,
        loadRps: s.load_rps,
        delayEnv: s.delay_env,
        timeScale: s.time_scale,
      };
    }
    case "jobs": {
      const { connector: _connector, ...options } = raw as Record<string, unknown>;
      return { connector: "jobs", options };
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The document

function mainSectionName(data: unknown): string {
  const tuning = isRecord(data) ? data.k8slive : undefined;
  const name = isRecord(tuning) ? tuning.main_section : undefined;
  // A main_section that is not a usable name is reported by the k8slive schema; use "k8s" meanwhile.
  const reserved = (SECTIONS as readonly unknown[]).includes(name);
  return typeof name === "string" && name !== "" && !reserved ? name : "k8s";
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/**
 * servoConfigSchema builds the schema of a servo.yaml whose main section is called `mainName`:
 * the top-level keys are exactly that section, `k8slive`, `measure`, `optimizer` and `remote`.
 */
function servoConfigSchema(mainName: string, keysInFile: readonly string[]) {
  const shape: Record<string, z.ZodType> = {
    [mainName]: mainSectionSchema.optional(),
    k8slive: tuningSectionSchema.optional(),
    measure: measureSchema.optional(),
    optimizer: optimizerConfigSchema.optional(),
    remote: remoteSchema.optional(),
  };
  return z.strictObject(shape).transform((doc: Record<string, unknown>, ctx): ServoConfig => {
    const main = doc[mainName] as z.output<typeof mainSectionSchema> | undefined;
    const tuning = doc.k8slive as z.output<typeof tuningSectionSchema> | undefined;
    const measure = doc.measure as z.output<typeof measureSchema> | undefined;
    if (main === undefined) {
      const listed = keysInFile.length === 0 ? "none" : keysInFile.map((k) => JSON.stringify(k)).join(", ");
      ctx.addIssue(
        tuning === undefined
          ? { code: "custom", path: [], message: `needs a "${mainName}" section with the main component` }
          : {
              code: "custom",
              path: ["k8slive", "main_section"],
              input: mainName,
              message: `must name a section of this file holding the main component; sections present: ${listed}`,
            },
      );
      return z.NEVER;
    }
    const config: ServoConfig = { main: toMainSection(mainName, main) };
    if (tuning !== undefined && tuning.component === config.main.component.key) {
      ctx.addIssue({
        code: "custom",
        path: ["k8slive", "component"],
        input: tuning.component,
        message: `must differ from the main component's name (${mainName}.application.components); the tuning pod is reported as a component of its own`,
      });
      return z.NEVER;
    }
    if (tuning !== undefined) config.tuning = toTuningSection(tuning, config.main.component);
    if (measure !== undefined) config.measure = toMeasureConfig(measure);
    if (doc.optimizer !== undefined) config.optimizer = doc.optimizer as OptimizerConfig;
    const remote = doc.remote as z.output<typeof remoteSchema> | undefined;
    if (remote !== undefined) {
      config.remote = { url: remote.url };
      if (remote.token_file !== undefined) config.remote.tokenFile = remote.token_file;
    }
    return config;
  });
}

function toMainSection(name: string, parsed: z.output<typeof mainSectionSchema>): MainSection {
  const { raw, component } = parsed;
  const section: MainSection = { name, onFail: raw.on_fail, component };
  if (raw.namespace !== undefined) section.namespace = raw.namespace;
  if (raw.adjust_on !== undefined) section.adjustOn = raw.adjust_on;
  if (raw.settlement !== undefined) section.settlementSeconds = raw.settlement;
  return section;
}

function toTuningSection(raw: z.output<typeof tuningSectionSchema>, main: MainComponent): TuningSection {
  const rails = (s: ResourceSetting | undefined): RangeSpec =>
    s === undefined ? { ...K8SLIVE_RESOURCE_DEFAULTS } : { min: s.min, max: s.max, step: s.step };
  const section: TuningSection = {
    deployTo: raw.deploy_to,
    component: raw.component,
    podName: raw.pod_name,
    mainSection: raw.main_section,
    settlementSeconds: raw.settlement,
    onFail: raw.on_fail,
    cpuSelector: raw.cpu_selector,
    memSelector: raw.mem_selector,
    cpu: rails(main.settings.cpu),
    mem: rails(main.settings.mem),
    replicas: { ...TUNING_REPLICAS },
  };
  if (raw.adjust_on !== undefined) section.adjustOn = raw.adjust_on;
  return section;
}

/**
 * parseServoConfig validates a servo.yaml document already read as data. `file` labels the
 * messages. Throws ConfigError listing every problem.
 */
export function parseServoConfig(data: unknown, file?: string): ServoConfig {
  const keys = isRecord(data) ? Object.keys(data) : [];
  const config = parseConfig(servoConfigSchema(mainSectionName(data), keys), data ?? {}, file);
  if (file !== undefined) config.file = file;
  return config;
}

/** loadServoConfig reads and validates a servo.yaml file. Throws ConfigError. */
export function loadServoConfig(file: string): ServoConfig {
  return parseServoConfig(readYamlFile(file), file);
}

/** SettlementControl is the part of a command's control that can override settlement. */
export interface SettlementControl {
  settlement?: number | undefined;
}

/**
 * settlementSeconds is how long to watch after an adjust, for the main Deployment or the tuning
 * pod. The command's control.settlement wins; then the main section's settlement (which the seed
 * says overrides k8slive's); then, for the tuning pod only, k8slive's settlement; else 0.
 */
export function settlementSeconds(
  config: Pick<ServoConfig, "main" | "tuning">,
  target: "main" | "tuning",
  control?: SettlementControl,
): number {
  if (control?.settlement !== undefined) return control.settlement;
  if (config.main.settlementSeconds !== undefined) return config.main.settlementSeconds;
  return target === "tuning" ? (config.tuning?.settlementSeconds ?? 0) : 0;
}
