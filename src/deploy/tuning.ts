import { ConfigError } from "../config/index.js";
import { OptimizerError, compileObjective, parseServoConfig } from "../servo/index.js";
import type { RawTuning } from "./tuning-schema.js";
import type { Issue, ServiceSpec } from "./spec.js";
import { childName } from "./names.js";
import { DeployError } from "./errors.js";

/**
 * Tuning: the `tuning:` block of a service spec, with defaults worked out and checked against
 * the service, and servoConfig, which turns it into the servo's configuration for the Deployment
 * that renderService produces: the `k8s` and `k8slive` sections of seed 000, the block's
 * `measure` section as written, and its `optimizer` section, or a default one that minimises the
 * cost of cpu and memory. The whole configuration is checked with the servo's own schema when
 * the spec is loaded, so `kubewise servo run -c` accepts what servo-config prints.
 */

/** ResourceSetting is a cpu (cores) or mem (GiB) range the servo may move within. */
export interface ResourceSetting {
  min: number;
  max: number;
  step: number;
  pinned?: boolean;
  selector?: "both" | "request" | "limit" | "request_min_limit";
  limitMin?: number;
}

export interface ReplicasSetting {
  min: number;
  max: number;
  step: number;
  pinned?: boolean;
}

export type EnvSetting =
  | {
      type: "range";
      min: number;
      max: number;
      step: number;
      default: number;
      unit?: string;
      pinned?: boolean;
    }
  | { type: "enum"; values: (string | number)[]; default: string | number; unit?: string; pinned?: boolean };

/** LiveSettings is the k8slive section with the seed's defaults filled in. */
export interface LiveSettings {
  deployTo: string;
  adjustOn?: string;
  component: string;
  podName: string;
  mainSection: string;
  settlement: number;
  onFail: "destroy" | "nop";
  cpuSelector: "both" | "limit" | "request";
  memSelector: "both" | "limit" | "request";
}

/** TuningSpec is a checked `tuning:` block. */
export interface TuningSpec {
  cpu?: ResourceSetting;
  mem?: ResourceSetting;
  replicas?: ReplicasSetting;
  env: Record<string, EnvSetting>;
  adjustOn?: string;
  settlement?: number;
  onFail?: "rollback" | "destroy" | "nop";
  live?: LiveSettings;
  /** measure is the servo's measure section, as written (checked by the servo's schema). */
  measure?: Record<string, unknown>;
  /** optimizer is the servo's optimizer section, as written (checked by the servo's schema). */
  optimizer?: Record<string, unknown>;
}

/** Servo defaults for cpu and mem ranges (servo-k8slive's guard rails: 0.125 to 4, step 0.125). */
const DEFAULT_RANGE = { min: 0.125, max: 4, step: 0.125 };
const GiB = 2 ** 30;
/** MAIN_ADJUST_ON gates the main Deployment's adjustments when a tuning pod takes the others (seed 000). */
export const MAIN_ADJUST_ON = 'data["control"]["userdata"]["deploy_to"] == "main"';

type RawRange = NonNullable<RawTuning["cpu"]>;

/**
 * normalizeTuning fills the block's defaults from the service (the current request, the replica
 * bounds) and reports, through `issue`, every range that excludes the value the service runs
 * with now, since the servo would start outside its own bounds.
 */
export function normalizeTuning(raw: RawTuning, spec: ServiceSpec, report: Issue): TuningSpec {
  let problems = 0;
  const issue: Issue = (path, message, value) => {
    problems++;
    report(path, message, value);
  };
  if (raw.cpu === undefined && raw.mem === undefined && raw.replicas === undefined && !raw.env) {
    issue(["tuning"], "names nothing to tune: add cpu, mem, replicas or env");
  }
  if (spec.persistentStorage.length > 0) {
    issue(["tuning"], "needs a Deployment, but persistent_storage makes this service a StatefulSet");
  }
  const tuning: TuningSpec = { env: {} };
  if (raw.cpu !== undefined) {
    tuning.cpu = resourceSetting(
      raw.cpu,
      spec.resources.requests.cpu,
      ["tuning", "cpu"],
      "the cpu request",
      issue,
    );
  }
  if (raw.mem !== undefined) {
    const current = spec.resources.requests.memory / GiB;
    tuning.mem = resourceSetting(raw.mem, current, ["tuning", "mem"], "the memory request", issue);
  }
  if (raw.replicas !== undefined) tuning.replicas = replicasSetting(raw.replicas, spec, issue);
  for (const [name, setting] of Object.entries(raw.env ?? {})) {
    tuning.env[name] = envSetting(name, setting, spec, issue);
  }
  const normalized: TuningSpec = {
    ...tuning,
    ...gating(raw, spec),
    ...(raw.measure === undefined ? {} : { measure: raw.measure }),
    ...(raw.optimizer === undefined ? {} : { optimizer: raw.optimizer }),
  };
  checkWithServo(spec.name, normalized, report, problems === 0);
  return normalized;
}

/**
 * checkWithServo validates the servo configuration the block makes with the servo's own schema
 * (and compiles the optimizer's CEL), reporting each problem at the tuning field it comes from.
 * Problems in the k8s and k8slive sections are reported only when the block had none of its own,
 * since they are mostly the same problems seen again.
 */
function checkWithServo(name: string, tuning: TuningSpec, issue: Issue, blockOk: boolean): void {
  try {
    const config = parseServoConfig(servoDocument(name, "default", tuning));
    if (config.optimizer) compileObjective(config.optimizer);
  } catch (err) {
    if (err instanceof OptimizerError) {
      const field = /constraint/i.test(err.message) ? "constraints" : "objective";
      issue(["tuning", "optimizer", field], err.message);
    } else if (err instanceof ConfigError) {
      for (const i of err.issues) {
        const at = tuningPath(i.path);
        const own = at[1] === "measure" || at[1] === "optimizer";
        if (own || blockOk) issue(at, i.message, own ? undefined : i.value);
      }
    } else throw err;
  }
}

/** tuningPath maps a path in the servo configuration to the tuning block field it comes from. */
function tuningPath(path: readonly (string | number)[]): (string | number)[] {
  const [section, ...rest] = path;
  if (section === "measure" || section === "optimizer") return ["tuning", section, ...rest];
  if (section === "k8slive") return ["tuning", "live", ...rest];
  if (section !== "k8s") return ["tuning"];
  if (rest[0] !== "application") return ["tuning", ...rest];
  // application.components.<key>.settings.<cpu|mem|replicas>... or .env.<NAME>...
  const [, , , kind, ...field] = rest;
  if (kind === "settings") return ["tuning", ...field];
  if (kind === "env") return ["tuning", "env", ...field];
  return ["tuning"];
}

function gating(
  raw: RawTuning,
  spec: ServiceSpec,
): Pick<TuningSpec, "adjustOn" | "settlement" | "onFail" | "live"> {
  return {
    ...(raw.adjust_on === undefined ? {} : { adjustOn: raw.adjust_on }),
    ...(raw.settlement === undefined ? {} : { settlement: raw.settlement }),
    ...(raw.on_fail === undefined ? {} : { onFail: raw.on_fail }),
    ...(raw.live === undefined || raw.live === false ? {} : { live: liveSettings(raw.live, spec) }),
  };
}

function resourceSetting(
  r: RawRange,
  current: number,
  at: string[],
  what: string,
  issue: Issue,
): ResourceSetting {
  // Defaults stretch to include the current value, so `cpu: true` works with any request.
  const setting: ResourceSetting = {
    min: r.min ?? Math.min(DEFAULT_RANGE.min, current),
    max: r.max ?? Math.max(DEFAULT_RANGE.max, current),
    step: r.step ?? DEFAULT_RANGE.step,
    ...(r.pinned === undefined ? {} : { pinned: r.pinned }),
    ...(r.selector === undefined ? {} : { selector: r.selector }),
    ...(r.limit_min === undefined ? {} : { limitMin: r.limit_min }),
  };
  fitDefaultsToGrid(setting, current, { min: r.min === undefined, max: r.max === undefined });
  checkRange(setting, at, issue);
  if (current < setting.min || current > setting.max) {
    issue(at, `range ${round(setting.min)}-${round(setting.max)} must include ${what} (${round(current)})`);
  }
  if (setting.selector === "request_min_limit" && setting.limitMin === undefined) {
    issue([...at, "limit_min"], "is required with selector request_min_limit");
  }
  return setting;
}

/**
 * fitDefaultsToGrid: the servo needs max - min to be whole steps. A default bound stretched to
 * the current value (a 100m request below the 0.125 default minimum) breaks that, so move a
 * defaulted bound inwards to the nearest grid point that still includes the current value.
 */
function fitDefaultsToGrid(
  s: ResourceSetting,
  current: number,
  defaulted: { min: boolean; max: boolean },
): void {
  const steps = (s.max - s.min) / s.step;
  if (!(s.step > 0) || s.max <= s.min || Math.abs(steps - Math.round(steps)) < 1e-9) return;
  const whole = Math.floor(steps + 1e-9);
  if (defaulted.max && round(s.min + whole * s.step) >= current) s.max = round(s.min + whole * s.step);
  else if (defaulted.min && round(s.max - whole * s.step) <= current) s.min = round(s.max - whole * s.step);
}

function replicasSetting(
  r: NonNullable<RawTuning["replicas"]>,
  spec: ServiceSpec,
  issue: Issue,
): ReplicasSetting {
  const setting: ReplicasSetting = {
    min: r.min ?? spec.replicas.min,
    max: r.max ?? Math.max(spec.replicas.max, 1),
    step: r.step ?? 1,
    ...(r.pinned === undefined ? {} : { pinned: r.pinned }),
  };
  checkRange(setting, ["tuning", "replicas"], issue);
  if (spec.replicas.min !== spec.replicas.max) {
    spec.notes.push(
      "tuning.replicas: the HorizontalPodAutoscaler also sets the replica count, so a tuned count lasts only until it scales",
    );
  }
  return setting;
}

function checkRange(s: { min: number; max: number; step: number }, at: string[], issue: Issue): void {
  if (s.min > s.max) issue([...at, "min"], `must be at most max (${round(s.max)})`);
  if (s.max > s.min && s.step > s.max - s.min) {
    issue([...at, "step"], `must fit between min and max (${round(s.max - s.min)})`);
  }
}

function envSetting(
  name: string,
  raw: NonNullable<RawTuning["env"]>[string],
  spec: ServiceSpec,
  issue: Issue,
): EnvSetting {
  const at = ["tuning", "env", name];
  const current = spec.env.find((e) => e.name === name);
  if (current !== undefined && !("value" in current)) {
    issue(
      at,
      `${name} comes from a ${current.from === "secret" ? "Secret" : "ConfigMap"}; the servo tunes only plain values`,
    );
  }
  const value = current !== undefined && "value" in current ? current.value : undefined;
  if (raw.type === "range") checkEnvRange(raw, value, at, issue);
  else checkEnvEnum(raw, value, at, issue);
  return raw;
}

function checkEnvRange(
  raw: Extract<EnvSetting, { type: "range" }>,
  value: string | undefined,
  at: string[],
  issue: Issue,
): void {
  checkRange(raw, at, issue);
  if (raw.default < raw.min || raw.default > raw.max)
    issue([...at, "default"], `must be within ${raw.min}-${raw.max}`);
  const n = Number(value);
  if (value !== undefined && (!Number.isFinite(n) || n < raw.min || n > raw.max)) {
    issue(at, `range ${raw.min}-${raw.max} must include the value in env_vars`, value);
  }
}

function checkEnvEnum(
  raw: Extract<EnvSetting, { type: "enum" }>,
  value: string | undefined,
  at: string[],
  issue: Issue,
): void {
  const values = raw.values.map(String);
  if (!values.includes(String(raw.default))) issue([...at, "default"], "must be one of the values");
  if (value !== undefined && !values.includes(value))
    issue(at, "values must include the value in env_vars", value);
}

function liveSettings(raw: Exclude<NonNullable<RawTuning["live"]>, false>, spec: ServiceSpec): LiveSettings {
  return {
    deployTo: raw.deploy_to ?? "tuning",
    ...(raw.adjust_on === undefined ? {} : { adjustOn: raw.adjust_on }),
    component: raw.component ?? "opsani-tuning",
    // Named after the service rather than the seed's "opsani-tuning", so two tuned services can
    // share a namespace without fighting over one pod.
    podName: raw.pod_name ?? childName(spec.name, "tuning"),
    mainSection: raw.main_section ?? "k8s",
    settlement: raw.settlement ?? 0,
    onFail: raw.on_fail ?? "destroy",
    cpuSelector: raw.cpu_selector ?? "both",
    memSelector: raw.mem_selector ?? "both",
  };
}

/** ServoRange is a cpu, mem or replicas setting as the servo's YAML config writes it. */
export interface ServoRange {
  min: number;
  max: number;
  step: number;
  pinned?: boolean;
  selector?: string;
  limit_min?: number;
}

/** ServoComponent is one entry of `k8s.application.components`, keyed "<deployment>/<container>". */
export interface ServoComponent {
  settings: { cpu?: ServoRange; mem?: ServoRange; replicas?: ServoRange };
  env?: Record<string, EnvSetting>;
}

/**
 * ServoConfig is the servo configuration file: the seed's `k8s` and `k8slive` sections, and
 * kubewise's `measure` and `optimizer` sections.
 */
export interface ServoConfig {
  k8s: {
    adjust_on?: string;
    namespace: string;
    settlement?: number;
    on_fail?: "rollback" | "destroy" | "nop";
    application: { components: Record<string, ServoComponent> };
  };
  k8slive?: {
    deploy_to: string;
    adjust_on?: string;
    component: string;
    pod_name: string;
    main_section: string;
    settlement: number;
    on_fail: "destroy" | "nop";
    cpu_selector: string;
    mem_selector: string;
  };
  measure?: Record<string, unknown>;
  optimizer?: Record<string, unknown>;
}

/**
 * servoConfig turns a spec's tuning block into the servo's config for the Deployment that
 * renderService renders in `namespace`: one component "<name>/<name>" (the Deployment and its
 * container share the service name). With `live`, the main section is gated on
 * `deploy_to == "main"` unless the block sets its own adjust_on, as in the seed.
 */
export function servoConfig(spec: ServiceSpec, options: { namespace?: string } = {}): ServoConfig {
  const tuning = spec.tuning;
  if (tuning === undefined) {
    throw new DeployError(
      "notuning",
      `service ${spec.name} has no tuning: block to make a servo config from`,
    );
  }
  return servoDocument(spec.name, options.namespace ?? spec.namespace ?? "default", tuning);
}

function servoDocument(name: string, namespace: string, tuning: TuningSpec): ServoConfig {
  const settings: ServoComponent["settings"] = {};
  if (tuning.cpu) settings.cpu = servoRange(tuning.cpu);
  if (tuning.mem) settings.mem = servoRange(tuning.mem);
  if (tuning.replicas) settings.replicas = servoRange(tuning.replicas);
  const component: ServoComponent = { settings };
  if (Object.keys(tuning.env).length > 0) component.env = tuning.env;
  const adjustOn = tuning.adjustOn ?? (tuning.live ? MAIN_ADJUST_ON : undefined);
  const config: ServoConfig = {
    k8s: {
      ...(adjustOn === undefined ? {} : { adjust_on: adjustOn }),
      namespace,
      ...(tuning.settlement === undefined ? {} : { settlement: tuning.settlement }),
      ...(tuning.onFail === undefined ? {} : { on_fail: tuning.onFail }),
      application: { components: { [`${name}/${name}`]: component } },
    },
  };
  if (tuning.live) config.k8slive = liveSection(tuning.live);
  if (tuning.measure) config.measure = tuning.measure;
  const optimizer = tuning.optimizer ?? defaultOptimizer(name, tuning);
  if (optimizer) config.optimizer = optimizer;
  return config;
}

/**
 * MEM_COST weighs a GiB against a core in the default objective. Cloud list prices put a
 * GiB-hour at a tenth to a quarter of a vCPU-hour; the demo's 0.25 keeps memory from being free.
 */
const MEM_COST = 0.25;
/** DEFAULT_MAX_TRIALS keeps a default study short: a first answer in about an hour of 60 s trials. */
export const DEFAULT_MAX_TRIALS = 20;

/**
 * defaultOptimizer is the optimizer section used when the block has none: minimise the cost of
 * the tuning pod's cpu and memory (with `live`; only that component is searched and every
 * command is sent to it), else of the main component's tuned cpu, memory and replicas, keeping
 * its trials in .kubewise/<name>/optimizer.db. Undefined when nothing tuned has a cost (only env).
 */
export function defaultOptimizer(name: string, tuning: TuningSpec): Record<string, unknown> | undefined {
  const objective = costObjective(name, tuning);
  if (objective === undefined) return undefined;
  return {
    study: name,
    db: `.kubewise/${name}/optimizer.db`,
    objective,
    direction: "minimize",
    max_trials: DEFAULT_MAX_TRIALS,
    ...(tuning.live ? { tune: [tuning.live.component], userdata: { deploy_to: tuning.live.deployTo } } : {}),
  };
}

function costObjective(name: string, tuning: TuningSpec): string | undefined {
  const of = (component: string) => `components[${JSON.stringify(component)}]`;
  if (tuning.live) {
    // The tuning pod always reports cpu and mem, whatever the main component lists.
    const c = of(tuning.live.component);
    return `${c}.cpu + ${MEM_COST} * ${c}.mem`;
  }
  const c = of(`${name}/${name}`);
  const perPod = [
    ...(tuning.cpu ? [`${c}.cpu`] : []),
    ...(tuning.mem ? [`${MEM_COST} * ${c}.mem`] : []),
  ].join(" + ");
  if (tuning.replicas) return perPod === "" ? `${c}.replicas` : `(${perPod}) * ${c}.replicas`;
  return perPod === "" ? undefined : perPod;
}

/**
 * servoConfigNotes says what the printed servo configuration still needs before
 * `kubewise servo run -c FILE` can run it, and what a default section means.
 */
export function servoConfigNotes(spec: ServiceSpec): string[] {
  const tuning = spec.tuning;
  if (tuning === undefined) return [];
  const notes: string[] = [];
  if (tuning.measure === undefined) {
    notes.push(
      "tuning.measure: missing, and no measure can be assumed for a real service: add a measure section to the tuning block (connector: prometheus with queries for this service's latency and errors, or connector: jobs) before `kubewise servo run -c FILE`, which cannot measure a trial without it",
    );
  }
  if (tuning.optimizer === undefined) {
    notes.push(
      defaultOptimizer(spec.name, tuning)
        ? `tuning.optimizer: none given, so the printed one minimises the cost of cpu and memory over ${DEFAULT_MAX_TRIALS} trials with no SLO; add tuning.optimizer with constraints over your measure's metrics (e.g. metrics.latency_p90 <= 50.0), or the study settles on the smallest settings`
        : "tuning.optimizer: missing, and with only env settings tuned there is no cost to minimise by default: add an optimizer section (objective, direction, constraints, max_trials) to the tuning block, or run the servo with --optimizer URL",
    );
  }
  const userdata = tuning.optimizer?.userdata as Record<string, unknown> | undefined;
  if (tuning.live && tuning.optimizer && userdata?.deploy_to === undefined) {
    notes.push(
      `tuning.optimizer: has no userdata.deploy_to, and with live the tuning pod is adjusted only for deploy_to "${tuning.live.deployTo}" and the Deployment only for "main": add userdata: {deploy_to: ${tuning.live.deployTo}}`,
    );
  }
  return notes;
}

function liveSection(live: LiveSettings): NonNullable<ServoConfig["k8slive"]> {
  return {
    deploy_to: live.deployTo,
    ...(live.adjustOn === undefined ? {} : { adjust_on: live.adjustOn }),
    component: live.component,
    pod_name: live.podName,
    main_section: live.mainSection,
    settlement: live.settlement,
    on_fail: live.onFail,
    cpu_selector: live.cpuSelector,
    mem_selector: live.memSelector,
  };
}

function servoRange(s: ResourceSetting | ReplicasSetting): ServoRange {
  const out: ServoRange = { min: round(s.min), max: round(s.max), step: round(s.step) };
  if (s.pinned !== undefined) out.pinned = s.pinned;
  if ("selector" in s && s.selector !== undefined) out.selector = s.selector;
  if ("limitMin" in s && s.limitMin !== undefined) out.limit_min = round(s.limitMin);
  return out;
}

/** round drops binary noise (0.1 + 0.2) so configs print as people wrote them. */
function round(n: number): number {
  return Math.round(n * 1e9) / 1e9;
}
