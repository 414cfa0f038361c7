import type { RawTuning } from "./tuning-schema.js";
import type { Issue, ServiceSpec } from "./spec.js";
import { childName } from "./names.js";
import { DeployError } from "./errors.js";

/**
 * Tuning: the `tuning:` block of a service spec, with defaults worked out and checked against
 * the service, and servoConfig, which turns it into the servo's configuration (the `k8s` and
 * `k8slive` sections of seed 000) for the Deployment that renderService produces.
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
export function normalizeTuning(raw: RawTuning, spec: ServiceSpec, issue: Issue): TuningSpec {
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
  return { ...tuning, ...gating(raw, spec) };
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
  checkRange(setting, at, issue);
  if (current < setting.min || current > setting.max) {
    issue(at, `range ${round(setting.min)}-${round(setting.max)} must include ${what} (${round(current)})`);
  }
  if (setting.selector === "request_min_limit" && setting.limitMin === undefined) {
    issue([...at, "limit_min"], "is required with selector request_min_limit");
  }
  return setting;
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

/** ServoConfig is the servo configuration file: the seed's `k8s` and `k8slive` sections. */
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
      namespace: options.namespace ?? spec.namespace ?? "default",
      ...(tuning.settlement === undefined ? {} : { settlement: tuning.settlement }),
      ...(tuning.onFail === undefined ? {} : { on_fail: tuning.onFail }),
      application: { components: { [`${spec.name}/${spec.name}`]: component } },
    },
  };
  if (tuning.live) config.k8slive = liveSection(tuning.live);
  return config;
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
