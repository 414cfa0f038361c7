/**
 * Tuning batch jobs through the servo (`kubewise jobs tune`): the servo's ADJUST writes an app
 * id's cpu, mem and env to the settings ConfigMap (settings.ts, settings-store.ts), the admission
 * webhook applies them to the next job pods of that app id, and the `jobs` measure connector
 * (measure.ts) measures those pods' runs. There is nothing to roll out, so an adjust returns as
 * soon as the ConfigMap is written. A measurement counts only the runs whose pods the webhook
 * stamped with the settings of the last adjust (jobsTuneConnectors), so a Job created just
 * before an adjust, which still runs with the old settings, does not blur the new trial.
 *
 * The configuration file:
 *
 * ```yaml
 * namespace: batch          # where the job pods run and the settings ConfigMap lives
 * app_id: render-video      # the JOBID whose runs are tuned; also the component name reported
 * settings:
 *   cpu: {min: 0.25, max: 4, step: 0.25, default: 1}   # cores; default = value before any adjust
 *   mem: {min: 0.25, max: 8, step: 0.25, default: 1}   # GiB
 * env:
 *   THREADS: {type: range, min: 1, max: 16, step: 1, default: 4}
 *   MODE: {type: enum, values: [fast, safe], default: safe}
 * resources: both           # both | requests | limits
 * measure: {count: 5}       # the jobs measure connector's options; app_id defaults to the one above
 * optimizer: {...}          # the local optimizer (optimizerConfigSchema); unused with --optimizer
 * ```
 */
import { z } from "zod";
import { loadConfigFile, parseConfig } from "../config/index.js";
import { ignoreNotFound, toKubeError, type ApplyResult, type KubeClient } from "../kube/index.js";
import type { Logger } from "../log.js";
import { silentLogger } from "../log.js";
import {
  ServoError,
  checkEnvValue,
  checkRange,
  envDescription,
  optimizerConfigSchema,
  rangeSetting,
  throwIfCancelled,
  type AdjustConnector,
  type AdjustOutcome,
  type AdjustParam,
  type ComponentDescription,
  type EnvSetting,
  type OptimizerConfig,
  type ProgressCallback,
  type RangeSpec,
  type Setting,
} from "../servo/index.js";
import {
  SETTINGS_CONFIGMAP,
  SETTINGS_KEY,
  parseSettingsDocument,
  type ResourceTarget,
  type TunedSettings,
} from "./settings.js";
import { saveTunedSettings } from "./settings-store.js";
import { WatchedJobsMeasure } from "./measure.js";
import { settingsIdentity } from "./mutation.js";

type Ctx = z.core.$RefinementCtx;

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const ENV_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;

/** RESOURCE_UNITS are the settings backed by container resources, with their units. */
const RESOURCE_UNITS = { cpu: "cores", mem: "GiB" } as const;

/** TunedRange is a numeric setting on a grid, with the value it has before any adjust. */
export interface TunedRange extends RangeSpec {
  default: number;
}

// onGrid tells whether value is min + k*step for a whole k, allowing for floating point.
function onGrid(value: number, grid: RangeSpec): boolean {
  if (value < grid.min - 1e-9 || value > grid.max + 1e-9) return false;
  const k = (value - grid.min) / grid.step;
  return Math.abs(k - Math.round(k)) < 1e-6;
}

function gridText(grid: RangeSpec): string {
  return `${grid.min}..${grid.max} in steps of ${grid.step}`;
}

// checkGrid reports min > max, a step that does not divide max - min, and a default off the grid.
function checkGrid(ctx: Ctx, grid: RangeSpec & { default: number }): void {
  if (grid.min > grid.max) {
    ctx.addIssue({
      code: "custom",
      path: ["min"],
      input: grid.min,
      message: `must not exceed max (${grid.max})`,
    });
    return;
  }
  if (!onGrid(grid.max, grid)) {
    ctx.addIssue({
      code: "custom",
      path: ["step"],
      input: grid.step,
      message: `must divide max - min (${grid.max} - ${grid.min}) into whole steps`,
    });
    return;
  }
  if (!onGrid(grid.default, grid)) {
    ctx.addIssue({
      code: "custom",
      path: ["default"],
      input: grid.default,
      message: `must be on the grid ${gridText(grid)}`,
    });
  }
}

const resourceSchema = z
  .strictObject({
    min: z.number().positive(),
    max: z.number().positive(),
    step: z.number().positive(),
    default: z.number({ error: "is required: the value the job pods have before any adjust" }).positive(),
  })
  .superRefine((grid, ctx) => checkGrid(ctx, grid));

const envValue = z.union([z.string(), z.number(), z.boolean()]).transform(String);

const rangeEnvSchema = z
  .strictObject({
    type: z.literal("range"),
    min: z.number(),
    max: z.number(),
    step: z.number().positive().default(1),
    default: z.number({ error: "is required: the value the job pods have before any adjust" }),
    unit: z.string().optional(),
  })
  .superRefine((grid, ctx) => checkGrid(ctx, grid))
  .transform((raw): EnvSetting => {
    const setting: EnvSetting = { ...raw, pinned: false };
    if (raw.unit === undefined) delete setting.unit;
    return setting;
  });

const enumEnvSchema = z
  .strictObject({
    type: z.literal("enum"),
    values: z.array(envValue).min(1, "must list at least one value"),
    default: envValue,
    unit: z.string().optional(),
  })
  .superRefine((raw, ctx) => {
    const duplicate = raw.values.find((v, i) => raw.values.indexOf(v) !== i);
    if (duplicate !== undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["values"],
        input: raw.values,
        message: `lists "${duplicate}" twice`,
      });
    } else if (!raw.values.includes(raw.default)) {
      const allowed = raw.values.map((v) => JSON.stringify(v)).join(", ");
      ctx.addIssue({
        code: "custom",
        path: ["default"],
        input: raw.default,
        message: `must be one of ${allowed}`,
      });
    }
  })
  .transform((raw): EnvSetting => {
    const setting: EnvSetting = { ...raw, pinned: false };
    if (raw.unit === undefined) delete setting.unit;
    return setting;
  });

const envSettingSchema = z
  .looseObject({ type: z.enum(["range", "enum"]) })
  .pipe(z.discriminatedUnion("type", [rangeEnvSchema, enumEnvSchema]));

const tuneConfigSchema = z
  .strictObject({
    namespace: z.string().regex(DNS_LABEL, "must be a namespace name: lower-case letters, digits and '-'"),
    app_id: z.string().min(1, "must name the app id (JOBID) whose jobs are tuned"),
    settings: z.strictObject({ cpu: resourceSchema.optional(), mem: resourceSchema.optional() }).default({}),
    env: z.record(z.string(), envSettingSchema).default({}),
    resources: z.enum(["both", "requests", "limits"]).default("both"),
    measure: z.record(z.string(), z.unknown()).default({}),
    optimizer: optimizerConfigSchema.optional(),
  })
  .superRefine((config, ctx) => {
    for (const name of Object.keys(config.env)) {
      if (!ENV_NAME.test(name)) {
        ctx.addIssue({
          code: "custom",
          path: ["env", name],
          input: name,
          message:
            "must be an environment variable name (letters, digits, '_', '-', '.'; not starting with a digit)",
        });
      } else if (name in RESOURCE_UNITS) {
        ctx.addIssue({
          code: "custom",
          path: ["env", name],
          input: name,
          message: `is the name of a resource setting; call the variable something else`,
        });
      }
    }
    const tuned = [...Object.keys(config.settings), ...Object.keys(config.env)];
    if (tuned.length === 0) {
      ctx.addIssue({
        code: "custom",
        path: ["settings"],
        input: config.settings,
        message: "nothing to tune: list settings.cpu, settings.mem or an env variable",
      });
    }
    const measured = config.measure.app_id;
    if (measured !== undefined && measured !== config.app_id) {
      ctx.addIssue({
        code: "custom",
        path: ["measure", "app_id"],
        input: measured,
        message: `must be the tuned app_id ${JSON.stringify(config.app_id)} (or left out)`,
      });
    }
  })
  .transform((config) => ({ ...config, measure: { ...config.measure, app_id: config.app_id } }));

/** JobsTuneConfig is a parsed `jobs tune` configuration; see the top of this file. */
export interface JobsTuneConfig {
  namespace: string;
  app_id: string;
  settings: { cpu?: TunedRange; mem?: TunedRange };
  env: Record<string, EnvSetting>;
  resources: ResourceTarget;
  /** measure are the jobs measure connector's options, with app_id filled in. */
  measure: Record<string, unknown>;
  optimizer?: OptimizerConfig;
}

/**
 * parseJobsTuneConfig validates a `jobs tune` configuration, throwing a ConfigError naming the
 * file (`source`), the field, the value and what is allowed.
 */
export function parseJobsTuneConfig(data: unknown, source?: string): JobsTuneConfig {
  return parseConfig(tuneConfigSchema, data, source);
}

/** loadJobsTuneConfig reads and validates a `jobs tune` configuration file. */
export function loadJobsTuneConfig(file: string): JobsTuneConfig {
  return loadConfigFile(tuneConfigSchema, file);
}

/** TunedSettingsStore reads and writes one namespace's tuned settings, by app id. */
export interface TunedSettingsStore {
  /** where names the store in messages, e.g. `configmap batch/kubewise-jobs-settings`. */
  readonly where: string;
  read(appId: string): Promise<TunedSettings | undefined>;
  write(appId: string, settings: TunedSettings): Promise<ApplyResult>;
}

/**
 * configMapSettingsStore is the TunedSettingsStore of the settings ConfigMap in `namespace`, the
 * one the admission webhook follows. read() throws a ConfigError when the document there is
 * malformed and a KubeError when the API refuses.
 */
export function configMapSettingsStore(
  client: KubeClient,
  namespace: string,
  name: string = SETTINGS_CONFIGMAP,
): TunedSettingsStore {
  const where = `configmap ${namespace}/${name}`;
  return {
    where,
    async read(appId) {
      let text: string | undefined;
      try {
        const cm = await ignoreNotFound(client.core.readNamespacedConfigMap({ namespace, name }));
        text = cm?.data?.[SETTINGS_KEY];
      } catch (err) {
        throw toKubeError(err, `read ${where}`);
      }
      return text === undefined ? undefined : parseSettingsDocument(text, where).get(appId);
    },
    write: (appId, settings) => saveTunedSettings(client, namespace, appId, settings, { name }),
  };
}

/** JobSettingsConnectorDeps are what a JobSettingsConnector needs besides its configuration. */
export interface JobSettingsConnectorDeps {
  /** store holds the tuned settings; the usual one is configMapSettingsStore. */
  store: TunedSettingsStore;
  log?: Logger;
  /** now stamps each adjust's version. @default () => new Date() */
  now?: () => Date;
}

/**
 * JobSettingsConnector is the servo's adjust connector for batch jobs: it describes one component,
 * named by the app id, whose settings are cpu, mem and the env variables of the configuration,
 * with the values last written to the settings store (or the configured defaults before any
 * adjust), and an adjust writes the requested values there for the webhook to apply to new pods.
 */
export class JobSettingsConnector implements AdjustConnector {
  readonly name = "jobs-settings";
  private readonly config: Pick<JobsTuneConfig, "app_id" | "settings" | "env" | "resources">;
  private readonly store: TunedSettingsStore;
  private readonly log: Logger;
  private readonly now: () => Date;

  constructor(
    config: Pick<JobsTuneConfig, "app_id" | "settings" | "env" | "resources">,
    deps: JobSettingsConnectorDeps,
  ) {
    this.config = config;
    this.store = deps.store;
    this.log = deps.log ?? silentLogger;
    this.now = deps.now ?? (() => new Date());
  }

  async describe(signal?: AbortSignal): Promise<Record<string, ComponentDescription>> {
    throwIfCancelled("describe", signal);
    const values = this.values(await this.readStored("describe"));
    const settings: Record<string, Setting> = {};
    for (const name of ["cpu", "mem"] as const) {
      const spec = this.config.settings[name];
      if (spec) settings[name] = rangeSetting(spec, values[name] as number, RESOURCE_UNITS[name]);
    }
    for (const [name, setting] of Object.entries(this.config.env)) {
      settings[name] = envDescription(setting, values[name] as number | string);
    }
    return { [this.config.app_id]: { settings } };
  }

  async adjust(param: AdjustParam, progress: ProgressCallback, signal?: AbortSignal): Promise<AdjustOutcome> {
    throwIfCancelled("adjust", signal);
    const appId = this.config.app_id;
    const requested = param.state.application.components[appId];
    if (requested === undefined) return { adjusted: false, reason: `no component ${appId} in the request` };
    const checked = this.check(requested.settings);
    const current = await this.readStored("adjust");
    const values = { ...this.values(current), ...checked };
    const settings: TunedSettings = {
      resources: this.config.resources,
      version: `adjust-${this.now().toISOString()}`,
    };
    if (this.config.settings.cpu) settings.cpu = values.cpu as number;
    if (this.config.settings.mem) settings.mem = values.mem as number;
    const envNames = Object.keys(this.config.env);
    if (envNames.length > 0) settings.env = Object.fromEntries(envNames.map((n) => [n, String(values[n])]));
    throwIfCancelled("adjust", signal);
    let result: ApplyResult;
    try {
      result = await this.store.write(appId, settings);
    } catch (err) {
      throw new ServoError(
        "adjust-failed",
        `app ${appId}: cannot write ${this.store.where}: ${(err as Error).message}`,
        {
          status: "failed",
          cause: err,
        },
      );
    }
    progress(100, `settings of ${appId} written to ${this.store.where}`);
    this.log.info({ app_id: appId, where: this.store.where, result, settings }, "tuned settings written");
    return { adjusted: true, reason: "success" };
  }

  /** check validates the requested values, returning them as the settings take them. */
  private check(requested: Record<string, { value: unknown }>): Record<string, number | string> {
    const appId = this.config.app_id;
    const out: Record<string, number | string> = {};
    for (const [name, { value }] of Object.entries(requested)) {
      if (typeof value !== "number" && typeof value !== "string") {
        throw new ServoError(
          "adjust-failed",
          `component ${appId} setting ${name}: ${JSON.stringify(value)} is not a value`,
          {
            status: "failed",
          },
        );
      }
      const resource = name === "cpu" || name === "mem" ? this.config.settings[name] : undefined;
      const env = this.config.env[name];
      if (resource) {
        out[name] = checkStep(appId, name, checkRange(appId, name, value, resource), resource);
      } else if (env) {
        const checked = checkEnvValue(appId, name, value, env);
        out[name] = env.type === "range" ? checkStep(appId, name, Number(checked), env) : checked;
      } else {
        const known = [...Object.keys(this.config.settings), ...Object.keys(this.config.env)];
        throw new ServoError(
          "adjust-failed",
          `component ${appId} has no setting ${name} (its settings: ${known.join(", ")})`,
          { status: "failed" },
        );
      }
    }
    return out;
  }

  /** values are the current value of every setting: the stored ones, else the defaults. */
  private values(stored: TunedSettings | undefined): Record<string, number | string> {
    const out: Record<string, number | string> = {};
    for (const name of ["cpu", "mem"] as const) {
      const spec = this.config.settings[name];
      if (spec) out[name] = stored?.[name] ?? spec.default;
    }
    for (const [name, setting] of Object.entries(this.config.env)) {
      const raw = stored?.env?.[name];
      if (raw === undefined) out[name] = setting.default;
      else if (setting.type === "enum") out[name] = raw;
      else out[name] = Number.isFinite(Number(raw)) && raw.trim() !== "" ? Number(raw) : setting.default;
    }
    return out;
  }

  private async readStored(what: "describe" | "adjust"): Promise<TunedSettings | undefined> {
    try {
      return await this.store.read(this.config.app_id);
    } catch (err) {
      const message = `app ${this.config.app_id}: cannot read ${this.store.where}: ${(err as Error).message}`;
      if (what === "adjust") throw new ServoError("adjust-failed", message, { status: "failed", cause: err });
      throw new ServoError("unknown", message, { status: "failed", cause: err });
    }
  }
}

function checkStep(component: string, setting: string, value: number, grid: RangeSpec): number {
  if (!onGrid(value, grid)) {
    throw new ServoError(
      "adjust-failed",
      `component ${component} setting ${setting}: ${value} is not on the grid ${gridText(grid)}`,
      { status: "failed" },
    );
  }
  return value;
}

/** JobsTuneConnectors are the servo's connectors for one `jobs tune` configuration. */
export interface JobsTuneConnectors {
  /** store is the settings ConfigMap of the configuration's namespace. */
  store: TunedSettingsStore;
  adjuster: JobSettingsConnector;
  /** measurer measures the runs made with the settings the store holds when a measurement starts. */
  measurer: WatchedJobsMeasure;
}

/**
 * jobsTuneConnectors builds the adjust and measure connectors of a `jobs tune` configuration over
 * one settings store, so that each measurement keeps only the runs made with the settings the
 * last adjust wrote (see settingsIdentity).
 */
export function jobsTuneConnectors(
  client: KubeClient,
  config: JobsTuneConfig,
  deps: { log?: Logger } = {},
): JobsTuneConnectors {
  const store = configMapSettingsStore(client, config.namespace);
  const adjuster = new JobSettingsConnector(config, { store, log: deps.log });
  const measurer = new WatchedJobsMeasure(config.measure, {
    client,
    namespace: config.namespace,
    log: deps.log,
    currentSettings: async () => settingsIdentity(await store.read(config.app_id)),
  });
  return { store, adjuster, measurer };
}
