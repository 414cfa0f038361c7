/**
 * Package protocol holds the Opsani servo wire protocol (research/servo.md §1): the events a servo
 * POSTs as `{event, param}`, the commands an optimizer answers WHATS_NEXT with, the descriptor,
 * measurement and adjustment shapes, progress events and the status/reason vocabulary.
 *
 * Parsing accepts both the old servo shapes (no `status` on a successful MEASUREMENT/ADJUSTMENT,
 * settings without `type`, `past` for `delay`, progress `runtime` as an int) and the servox shapes.
 * The builders always emit servox shapes (`status`, `reason`, `cmd_uid`). Units on the wire: cpu
 * in cores (float), mem in GiB (float), replicas an integer.
 */
import { z } from "zod";
import { formatPath } from "../config/index.js";
import { KubewiseError } from "../errors.js";

// ---------------------------------------------------------------------------------------------
// Vocabulary

/** SERVO_EVENTS are the events a servo sends, in the order a session uses them. */
export const SERVO_EVENTS = [
  "HELLO",
  "WHATS_NEXT",
  "DESCRIPTION",
  "MEASUREMENT",
  "ADJUSTMENT",
  "GOODBYE",
] as const;
/** ServoEvent is one of SERVO_EVENTS. */
export type ServoEvent = (typeof SERVO_EVENTS)[number];

/** COMMAND_NAMES are the commands an optimizer returns in reply to WHATS_NEXT. */
export const COMMAND_NAMES = ["DESCRIBE", "MEASURE", "ADJUST", "SLEEP"] as const;
/** CommandName is one of COMMAND_NAMES. */
export type CommandName = (typeof COMMAND_NAMES)[number];

/** RESPONSE_EVENT maps a command to the event that carries its result (SLEEP has none). */
export const RESPONSE_EVENT = {
  DESCRIBE: "DESCRIPTION",
  MEASURE: "MEASUREMENT",
  ADJUST: "ADJUSTMENT",
} as const satisfies Record<Exclude<CommandName, "SLEEP">, ServoEvent>;

/**
 * SERVO_STATUSES are the statuses a servo reports for a command. `transient-failure` comes from
 * servo-k8s (app restarted or updated under us during settlement); `rejected` means the settings
 * were tried and do not work (the optimizer should not propose them again).
 */
export const SERVO_STATUSES = [
  "ok",
  "failed",
  "rejected",
  "aborted",
  "cancelled",
  "transient-failure",
] as const;
/** ServoStatus is one of SERVO_STATUSES. */
export type ServoStatus = (typeof SERVO_STATUSES)[number];

/** OPTIMIZER_STATUSES are the statuses an optimizer returns to event posts (progress included). */
export const OPTIMIZER_STATUSES = ["ok", "invalid", "unexpected-event", "cancel"] as const;
/** OptimizerStatus is one of OPTIMIZER_STATUSES. */
export type OptimizerStatus = (typeof OPTIMIZER_STATUSES)[number];

/**
 * KNOWN_REASONS are the reason words seen in the servo drivers and connectors. A reason on the
 * wire is any string; this list is what kubewise itself emits.
 */
export const KNOWN_REASONS = [
  "success",
  "unknown",
  "unstable",
  "start-failed",
  "adjust-failed",
  "unschedulable",
  "scheduling-failed",
  "image-pull-failed",
  "version-mismatch",
  "app-restart",
  "app-update",
  "ref-app-update",
  "ref-app-scale",
  "app-unavailable",
  "ref-app-unavailable",
  "overwritten",
  "unexpected cmd_uid",
] as const;
/** KnownReason is one of KNOWN_REASONS. */
export type KnownReason = (typeof KNOWN_REASONS)[number];

/** DEFAULT_SLEEP_SECONDS is the SLEEP duration when the optimizer leaves it out (both servos use 120 s). */
export const DEFAULT_SLEEP_SECONDS = 120;

// ---------------------------------------------------------------------------------------------
// Durations and control

const DURATION_PART = /(\d+(?:\.\d+)?)(ms|h|m|s)/g;

/**
 * parseDurationSeconds reads a duration as seconds: a number (seconds), a numeric string, or a
 * Go/servox-style string such as "90s", "5m" or "1h30m". Returns undefined when it cannot.
 */
export function parseDurationSeconds(value: unknown): number | undefined {
  if (typeof value === "number") return Number.isFinite(value) && value >= 0 ? value : undefined;
  if (typeof value !== "string") return undefined;
  const text = value.trim();
  if (text === "") return undefined;
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text);
  if (text.replace(DURATION_PART, "") !== "") return undefined;
  const scale: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600 };
  let total = 0;
  for (const [, n, u] of text.matchAll(DURATION_PART)) total += Number(n) * (scale[u ?? "s"] ?? 1);
  return total;
}

/** durationSchema accepts seconds as a number or a duration string and yields seconds. */
export const durationSchema = z.union([z.number(), z.string()]).transform((v, ctx) => {
  const seconds = parseDurationSeconds(v);
  if (seconds === undefined) {
    ctx.addIssue({ code: "custom", message: 'must be seconds (a number >= 0) or a duration such as "30s"' });
    return z.NEVER;
  }
  return seconds;
});

/** userdataSchema is control.userdata: free-form, with `slo` and `deploy_to` commonly present. */
export const userdataSchema = z.looseObject({
  slo: z.unknown().optional(),
  deploy_to: z.string().optional(),
});

/**
 * controlSchema is a command's `control` object (servox `Control`). All durations are seconds.
 * `past` is the old name of `delay`; `timeout` is read by servo-k8s for rollouts. Unknown keys are
 * kept, since `adjust_on` expressions may look at them.
 */
export const controlSchema = z.preprocess(
  (raw) => {
    if (raw === null || raw === undefined) return {};
    if (typeof raw !== "object" || Array.isArray(raw)) return raw;
    const obj = raw as Record<string, unknown>;
    if (obj.delay === undefined && obj.past !== undefined) {
      const { past, ...rest } = obj;
      return { ...rest, delay: past };
    }
    return obj;
  },
  z.looseObject({
    /** duration of a measurement in seconds. @default 1 */
    duration: durationSchema.default(1),
    /** delay before a measurement window starts, in seconds. @default 0 */
    delay: durationSchema.default(0),
    /** warmup is discarded time at the start of a measurement, in seconds. @default 0 */
    warmup: durationSchema.default(0),
    /** settlement overrides the connector's settlement after an adjust, in seconds. */
    settlement: durationSchema.optional(),
    /** timeout bounds a rollout, in seconds (servo-k8s `control.timeout`). */
    timeout: durationSchema.optional(),
    load: z.record(z.string(), z.unknown()).optional(),
    userdata: userdataSchema.optional(),
    environment: z.record(z.string(), z.unknown()).optional(),
  }),
);
/** Control is a parsed `control` object with its defaults filled in. */
export type Control = z.output<typeof controlSchema>;

// ---------------------------------------------------------------------------------------------
// Descriptor

const settingValue = z.union([z.number(), z.string()]);

/** rangeSettingSchema is a numeric setting on a min/max/step grid. `value` is null when unknown. */
export const rangeSettingSchema = z.looseObject({
  type: z.literal("range"),
  unit: z.string().optional(),
  min: z.number(),
  max: z.number(),
  /** step of the grid from min; 0 or absent means continuous. */
  step: z.number().min(0).optional(),
  pinned: z.boolean().default(false),
  value: z.number().nullable().optional(),
});
/** RangeSetting is a parsed range setting. */
export type RangeSetting = z.output<typeof rangeSettingSchema>;

/** enumSettingSchema is a setting that takes one of a list of values. */
export const enumSettingSchema = z.looseObject({
  type: z.literal("enum"),
  unit: z.string().optional(),
  values: z.array(settingValue).min(1),
  pinned: z.boolean().default(false),
  value: settingValue.nullable().optional(),
});
/** EnumSetting is a parsed enum setting. */
export type EnumSetting = z.output<typeof enumSettingSchema>;

/**
 * settingSchema is a range or enum setting. Old drivers may leave `type` out: a setting with
 * `values` is then an enum, anything else a range; numeric strings in a range are read as numbers.
 */
export const settingSchema = z.preprocess(
  (raw) => {
    if (raw === null || typeof raw !== "object" || Array.isArray(raw)) return raw;
    const obj = { ...(raw as Record<string, unknown>) };
    if (obj.type === undefined) obj.type = Array.isArray(obj.values) ? "enum" : "range";
    if (obj.type === "range") {
      for (const k of ["min", "max", "step", "value"]) {
        const v = obj[k];
        if (typeof v === "string" && v.trim() !== "" && Number.isFinite(Number(v))) obj[k] = Number(v);
      }
    }
    return obj;
  },
  z.discriminatedUnion("type", [rangeSettingSchema, enumSettingSchema]),
);
/** Setting is a parsed range or enum setting. */
export type Setting = z.output<typeof settingSchema>;

/** componentSchema is one application component and its settings. */
export const componentSchema = z.looseObject({
  settings: z.record(z.string(), settingSchema).default({}),
});
/** Component is a parsed component. */
export type Component = z.output<typeof componentSchema>;

/** metricDescriptorSchema describes one metric a servo can measure. */
export const metricDescriptorSchema = z.looseObject({ unit: z.string().optional() });
/** MetricDescriptor is a parsed metric description. */
export type MetricDescriptor = z.output<typeof metricDescriptorSchema>;

/** applicationSchema holds the components, keyed by component name. */
export const applicationSchema = z.looseObject({
  components: z.record(z.string(), componentSchema),
});
/** Application is a parsed application. */
export type Application = z.output<typeof applicationSchema>;

/**
 * descriptorSchema is a DESCRIPTION's descriptor: the application's settings, the metrics that
 * can be measured and (old servo) `optimization.perf`.
 */
export const descriptorSchema = z.looseObject({
  application: applicationSchema,
  measurement: z
    .looseObject({ metrics: z.record(z.string(), metricDescriptorSchema).default({}) })
    .optional(),
  optimization: z.looseObject({ perf: z.string().optional() }).optional(),
});
/** Descriptor is a parsed descriptor. */
export type Descriptor = z.output<typeof descriptorSchema>;

// ---------------------------------------------------------------------------------------------
// Measurement readings

/** dataPointReadingSchema is a scalar reading `{value, unit}`; the value may be a numeric string. */
export const dataPointReadingSchema = z.looseObject({
  value: settingValue,
  unit: z.string().optional(),
  annotation: z.string().optional(),
});

/** timeSeriesSchema is one series of `[unix ts, value]` pairs; `id` names the series' labels. */
export const timeSeriesSchema = z.looseObject({
  id: z.string().default(""),
  data: z.array(z.tuple([z.number(), z.union([z.number(), z.string(), z.null()])])),
});
/** TimeSeries is a parsed series. */
export type TimeSeries = z.output<typeof timeSeriesSchema>;

/** timeSeriesReadingSchema is a time-series reading `{values:[{id,data}], unit}` (servo-prom). */
export const timeSeriesReadingSchema = z.looseObject({
  values: z.array(timeSeriesSchema),
  unit: z.string().optional(),
  annotation: z.string().optional(),
});

/** readingSchema is one metric's reading: a scalar or a set of time series. */
export const readingSchema = z.union([dataPointReadingSchema, timeSeriesReadingSchema]);
/** Reading is a parsed reading. */
export type Reading = z.output<typeof readingSchema>;

/**
 * readingValue reduces a reading to one number: the scalar itself, or the mean of every finite
 * point of every series (the optimizer's objective needs a number). Undefined when there is none.
 */
export function readingValue(reading: Reading): number | undefined {
  if ("value" in reading) {
    const n = typeof reading.value === "number" ? reading.value : Number(reading.value);
    return Number.isFinite(n) ? n : undefined;
  }
  let sum = 0;
  let count = 0;
  for (const series of reading.values) {
    for (const [, v] of series.data) {
      const n = typeof v === "number" ? v : v === null ? NaN : Number(v);
      if (Number.isFinite(n)) {
        sum += n;
        count++;
      }
    }
  }
  return count === 0 ? undefined : sum / count;
}

// ---------------------------------------------------------------------------------------------
// Commands (optimizer -> servo)

/** metricsRequestSchema is MEASURE's `metrics`: a list of names or a dict of name -> {unit}; both become a dict. */
export const metricsRequestSchema = z
  .union([z.array(z.string()), z.record(z.string(), metricDescriptorSchema.nullable())], {
    error: 'must be a list of metric names, e.g. ["throughput"], or a map of name -> {unit}',
  })
  .transform((m): Record<string, MetricDescriptor> => {
    if (Array.isArray(m)) return Object.fromEntries(m.map((name) => [name, {}]));
    return Object.fromEntries(Object.entries(m).map(([name, d]) => [name, d ?? {}]));
  });

/** measureParamSchema is MEASURE's param. An empty metrics dict means "all you can measure". */
export const measureParamSchema = z.looseObject({
  metrics: metricsRequestSchema.default({}),
  control: controlSchema,
});
/** MeasureParam is a parsed MEASURE param. */
export type MeasureParam = z.output<typeof measureParamSchema>;

/** settingValueSchema is one requested setting value, `{value}`. */
export const settingValueSchema = z.looseObject({ value: settingValue });

/** adjustStateSchema is the requested state: components -> settings -> {value}. */
export const adjustStateSchema = z.looseObject({
  application: z.looseObject({
    components: z.record(
      z.string(),
      z.looseObject({ settings: z.record(z.string(), settingValueSchema).default({}) }),
    ),
  }),
});
/** AdjustState is a parsed requested state. */
export type AdjustState = z.output<typeof adjustStateSchema>;

/** adjustParamSchema is ADJUST's param. */
export const adjustParamSchema = z.looseObject({
  state: adjustStateSchema,
  control: controlSchema,
});
/** AdjustParam is a parsed ADJUST param. */
export type AdjustParam = z.output<typeof adjustParamSchema>;

/** sleepParamSchema is SLEEP's param; a missing param or duration means 120 s. */
export const sleepParamSchema = z.preprocess(
  (raw) => raw ?? {},
  z.looseObject({
    duration: durationSchema.default(DEFAULT_SLEEP_SECONDS),
    data: z.record(z.string(), z.unknown()).optional(),
  }),
);
/** SleepParam is a parsed SLEEP param. */
export type SleepParam = z.output<typeof sleepParamSchema>;

const cmdUid = z.string().optional();

/** commandSchema is an optimizer's reply to WHATS_NEXT. */
export const commandSchema = z.discriminatedUnion("cmd", [
  z.looseObject({ cmd: z.literal("DESCRIBE"), cmd_uid: cmdUid, param: z.unknown().optional() }),
  z.looseObject({ cmd: z.literal("MEASURE"), cmd_uid: cmdUid, param: measureParamSchema }),
  z.looseObject({ cmd: z.literal("ADJUST"), cmd_uid: cmdUid, param: adjustParamSchema }),
  z.looseObject({ cmd: z.literal("SLEEP"), cmd_uid: cmdUid, param: sleepParamSchema }),
]);
/** Command is a parsed command. */
export type Command = z.output<typeof commandSchema>;
/** DescribeCommand, MeasureCommand, AdjustCommand and SleepCommand are the variants of Command. */
export type DescribeCommand = Extract<Command, { cmd: "DESCRIBE" }>;
export type MeasureCommand = Extract<Command, { cmd: "MEASURE" }>;
export type AdjustCommand = Extract<Command, { cmd: "ADJUST" }>;
export type SleepCommand = Extract<Command, { cmd: "SLEEP" }>;

// ---------------------------------------------------------------------------------------------
// Events (servo -> optimizer)

const statusFields = {
  /** status is absent on an old servo's successful MEASUREMENT/ADJUSTMENT; read it as "ok". */
  status: z.string().optional(),
  reason: z.string().optional(),
  message: z.string().optional(),
  cmd_uid: cmdUid,
};

/** helloParamSchema is HELLO's param. */
export const helloParamSchema = z.looseObject({
  agent: z.string().default("unknown"),
  telemetry: z.record(z.string(), z.unknown()).optional(),
});

/** goodbyeParamSchema is GOODBYE's param, e.g. `{reason:"exit"}` or `{reason:"SIGTERM"}`. */
export const goodbyeParamSchema = z.preprocess(
  (raw) => raw ?? {},
  z.looseObject({ reason: z.string().optional() }),
);

/** descriptionParamSchema is DESCRIPTION's param. */
export const descriptionParamSchema = z.looseObject({
  ...statusFields,
  descriptor: descriptorSchema.optional(),
});
/** DescriptionParam is a parsed DESCRIPTION param. */
export type DescriptionParam = z.output<typeof descriptionParamSchema>;

/** measurementParamSchema is MEASUREMENT's param (the final result, not progress). */
export const measurementParamSchema = z.looseObject({
  ...statusFields,
  metrics: z.record(z.string(), readingSchema).optional(),
  annotations: z.record(z.string(), z.unknown()).optional(),
});
/** MeasurementParam is a parsed MEASUREMENT param. */
export type MeasurementParam = z.output<typeof measurementParamSchema>;

/** adjustmentParamSchema is ADJUSTMENT's param; servox's `state` is the post-adjust description. */
export const adjustmentParamSchema = z.looseObject({
  ...statusFields,
  state: z.record(z.string(), z.unknown()).optional(),
});
/** AdjustmentParam is a parsed ADJUSTMENT param. */
export type AdjustmentParam = z.output<typeof adjustmentParamSchema>;

/**
 * progressParamSchema is a progress report, posted under the in-flight command's event while it
 * runs. Old servos send `progress` null early on and `runtime` as whole seconds.
 */
export const progressParamSchema = z.looseObject({
  progress: z.number().min(0).max(100).nullable(),
  runtime: z.number().min(0).default(0),
  cmd_uid: cmdUid,
  message: z.string().optional(),
  time_remain: z.number().optional(),
  log: z.array(z.string()).optional(),
});
/** ProgressParam is a parsed progress report. */
export type ProgressParam = z.output<typeof progressParamSchema>;

/** EventRequest is the body a servo POSTs: `{event, param, servo_uid?}`. */
export interface EventRequest {
  event: ServoEvent;
  param: unknown;
  servo_uid?: string;
}

/** eventRequestSchema validates the envelope only; parseEvent reads the param. */
export const eventRequestSchema = z.looseObject({
  event: z.enum(SERVO_EVENTS),
  param: z.unknown().optional(),
  servo_uid: z.string().optional(),
});

/** ServoEventMessage is a parsed event: its name and its typed param. */
export type ServoEventMessage =
  | { event: "HELLO"; param: z.output<typeof helloParamSchema> }
  | { event: "WHATS_NEXT"; param: null }
  | { event: "DESCRIPTION"; param: DescriptionParam }
  | { event: "MEASUREMENT"; param: MeasurementParam }
  | { event: "ADJUSTMENT"; param: AdjustmentParam }
  | { event: "MEASUREMENT" | "ADJUSTMENT"; progress: true; param: ProgressParam }
  | { event: "GOODBYE"; param: z.output<typeof goodbyeParamSchema> };

/**
 * isProgressParam tells a progress report from a final result posted under the same event: it has
 * `progress` and none of `status`, `metrics`, `state` (an old servo's final result has no status).
 */
export function isProgressParam(param: unknown): boolean {
  if (param === null || typeof param !== "object") return false;
  const p = param as Record<string, unknown>;
  return "progress" in p && !("status" in p) && !("metrics" in p) && !("state" in p);
}

/** optimizerReplySchema is what an optimizer answers to any event but WHATS_NEXT. */
export const optimizerReplySchema = z.looseObject({
  status: z.string().default("ok"),
  reason: z.string().optional(),
  message: z.string().optional(),
});
/** OptimizerReply is a parsed optimizer reply. */
export type OptimizerReply = z.output<typeof optimizerReplySchema>;

// ---------------------------------------------------------------------------------------------
// Parsing with readable errors

/** ServoError is a servo protocol or servo run problem. `reason` is a servo reason word or `invalid-message`. */
export class ServoError extends KubewiseError {
  /** status is the servo status to report for this error, when it ends a command. */
  readonly status: ServoStatus;

  constructor(reason: string, message: string, options?: { cause?: unknown; status?: ServoStatus }) {
    super(reason, message, options);
    this.status = options?.status ?? "failed";
  }
}

function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 6)
    .map((i) => `${formatPath(i.path.map((p) => (typeof p === "symbol" ? String(p) : p)))}: ${i.message}`)
    .join("; ");
}

/** parseWith validates `value` against `schema`, throwing a ServoError (invalid-message) that names `what`. */
export function parseWith<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const result = schema.safeParse(value);
  if (!result.success) {
    throw new ServoError("invalid-message", `invalid ${what}: ${describeIssues(result.error)}`);
  }
  return result.data;
}

/** parseCommand reads an optimizer's reply to WHATS_NEXT. */
export function parseCommand(body: unknown): Command {
  return parseWith(commandSchema, body, "command");
}

/** parseDescriptor reads a descriptor (a DESCRIPTION's `descriptor`). */
export function parseDescriptor(body: unknown): Descriptor {
  return parseWith(descriptorSchema, body, "descriptor");
}

/** parseOptimizerReply reads an optimizer's reply to an event other than WHATS_NEXT. */
export function parseOptimizerReply(body: unknown): OptimizerReply {
  return parseWith(optimizerReplySchema, body ?? {}, "optimizer reply");
}

/** parseEvent reads an event a servo POSTed, telling progress reports from final results. */
export function parseEvent(body: unknown): ServoEventMessage {
  const { event, param } = parseWith(eventRequestSchema, body, "event");
  const what = `${event} param`;
  switch (event) {
    case "HELLO":
      return { event, param: parseWith(helloParamSchema, param ?? {}, what) };
    case "WHATS_NEXT":
      return { event, param: null };
    case "DESCRIPTION":
      return { event, param: parseWith(descriptionParamSchema, param ?? {}, what) };
    case "MEASUREMENT":
      if (isProgressParam(param))
        return { event, progress: true, param: parseWith(progressParamSchema, param, what) };
      return { event, param: parseWith(measurementParamSchema, param ?? {}, what) };
    case "ADJUSTMENT":
      if (isProgressParam(param))
        return { event, progress: true, param: parseWith(progressParamSchema, param, what) };
      return { event, param: parseWith(adjustmentParamSchema, param ?? {}, what) };
    case "GOODBYE":
      return { event, param: parseWith(goodbyeParamSchema, param, what) };
  }
}

/** resultStatus is the status of a command result: an old servo's successful result has none, so "ok". */
export function resultStatus(param: { status?: string }): string {
  return param.status ?? "ok";
}

// ---------------------------------------------------------------------------------------------
// Builders (what kubewise emits)

/** eventRequest builds the body a servo POSTs. */
export function eventRequest(event: ServoEvent, param: unknown, servoUid?: string): EventRequest {
  return servoUid === undefined
    ? { event, param: param ?? null }
    : { event, param: param ?? null, servo_uid: servoUid };
}

/** helloParam builds HELLO's param. */
export function helloParam(agent: string, telemetry?: Record<string, unknown>): Record<string, unknown> {
  return telemetry === undefined ? { agent } : { agent, telemetry };
}

function withUid<T extends object>(body: T, uid: string | undefined): T & { cmd_uid?: string } {
  return uid === undefined ? body : { ...body, cmd_uid: uid };
}

/** DescriptorOut is a descriptor as kubewise emits it (settings always carry `type` and `pinned`). */
export interface DescriptorOut {
  application: { components: Record<string, { settings: Record<string, Setting> }> };
  measurement?: { metrics: Record<string, MetricDescriptor> };
}

/** descriptionReply builds a successful DESCRIPTION param. */
export function descriptionReply(descriptor: DescriptorOut, uid?: string): Record<string, unknown> {
  return withUid({ status: "ok", reason: "success", descriptor: serializeDescriptor(descriptor) }, uid);
}

/** serializeDescriptor drops absent fields, as servox does, so the JSON carries no nulls it did not mean. */
export function serializeDescriptor(descriptor: DescriptorOut): DescriptorOut {
  const components = Object.fromEntries(
    Object.entries(descriptor.application.components).map(([name, c]) => [
      name,
      { settings: Object.fromEntries(Object.entries(c.settings).map(([s, v]) => [s, dropUndefined(v)])) },
    ]),
  );
  const out: DescriptorOut = { application: { components } };
  if (descriptor.measurement) out.measurement = descriptor.measurement;
  return out;
}

function dropUndefined<T extends object>(obj: T): T {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined)) as T;
}

/** ScalarMetric is one measured value as kubewise emits it. */
export interface ScalarMetric {
  value: number;
  unit?: string;
}

/** measurementReply builds a successful MEASUREMENT param. */
export function measurementReply(
  metrics: Record<string, ScalarMetric | { values: TimeSeries[]; unit?: string }>,
  annotations: Record<string, string> = {},
  uid?: string,
): Record<string, unknown> {
  return withUid({ status: "ok", reason: "success", metrics, annotations }, uid);
}

/** adjustmentReply builds a successful ADJUSTMENT param; `state` is the post-adjust description. */
export function adjustmentReply(state: Record<string, unknown>, uid?: string): Record<string, unknown> {
  return withUid({ status: "ok", reason: "success", state }, uid);
}

/** failureReply builds a failed result for any command: `{status, reason, message, cmd_uid}`. */
export function failureReply(
  status: Exclude<ServoStatus, "ok">,
  reason: string,
  message: string,
  uid?: string,
): Record<string, unknown> {
  return withUid({ status, reason, message }, uid);
}

/** failureFromError builds a failed result from a thrown error, keeping a ServoError's status and reason. */
export function failureFromError(err: unknown, uid?: string): Record<string, unknown> {
  if (err instanceof ServoError)
    return failureReply(err.status === "ok" ? "failed" : err.status, err.reason, err.message, uid);
  if (err instanceof KubewiseError) return failureReply("failed", err.reason, err.message, uid);
  return failureReply("failed", "unknown", err instanceof Error ? err.message : String(err), uid);
}

/** progressParam builds a progress report (servox shape: float progress and runtime). */
export function progressParam(
  progress: number,
  runtimeSeconds: number,
  uid?: string,
  message?: string,
): ProgressParam {
  const body: ProgressParam = { progress: Math.max(0, Math.min(100, progress)), runtime: runtimeSeconds };
  if (uid !== undefined) body.cmd_uid = uid;
  if (message !== undefined) body.message = message;
  return body;
}

/** describeCommand builds a DESCRIBE command (optimizer side). */
export function describeCommand(uid?: string): Record<string, unknown> {
  return withUid({ cmd: "DESCRIBE", param: {} }, uid);
}

/** ControlOut is a control object as an optimizer emits it; omitted fields take the servo's defaults. */
export interface ControlOut {
  duration?: number;
  delay?: number;
  warmup?: number;
  settlement?: number;
  userdata?: Record<string, unknown>;
}

/** measureCommand builds a MEASURE command with metrics as a dict of name -> {unit}. */
export function measureCommand(
  metrics: Record<string, MetricDescriptor>,
  control: ControlOut = {},
  uid?: string,
): Record<string, unknown> {
  return withUid({ cmd: "MEASURE", param: { metrics, control } }, uid);
}

/** SettingValues maps component name -> setting name -> value. */
export type SettingValues = Record<string, Record<string, number | string>>;

/** adjustState builds the ADJUST `state` from component -> setting -> value. */
export function adjustState(values: SettingValues): AdjustState {
  const components = Object.fromEntries(
    Object.entries(values).map(([comp, settings]) => [
      comp,
      { settings: Object.fromEntries(Object.entries(settings).map(([s, value]) => [s, { value }])) },
    ]),
  );
  return { application: { components } };
}

/** stateValues reads component -> setting -> value out of an ADJUST state. */
export function stateValues(state: AdjustState): SettingValues {
  return Object.fromEntries(
    Object.entries(state.application.components).map(([comp, c]) => [
      comp,
      Object.fromEntries(Object.entries(c.settings).map(([s, v]) => [s, v.value])),
    ]),
  );
}

/** adjustCommand builds an ADJUST command. */
export function adjustCommand(
  values: SettingValues,
  control: ControlOut = {},
  uid?: string,
): Record<string, unknown> {
  return withUid({ cmd: "ADJUST", param: { state: adjustState(values), control } }, uid);
}

/** sleepCommand builds a SLEEP command; `reason` goes in `data.reason` as the Opsani backend does. */
export function sleepCommand(
  durationSeconds: number,
  reason?: string,
  uid?: string,
): Record<string, unknown> {
  const param =
    reason === undefined ? { duration: durationSeconds } : { duration: durationSeconds, data: { reason } };
  return withUid({ cmd: "SLEEP", param }, uid);
}

/** optimizerReply builds an optimizer's reply to an event: `{status, reason?, message?}`. */
export function optimizerReply(status: OptimizerStatus, reason?: string, message?: string): OptimizerReply {
  const body: OptimizerReply = { status };
  if (reason !== undefined) body.reason = reason;
  if (message !== undefined) body.message = message;
  return body;
}
