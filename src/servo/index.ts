/**
 * Package servo tunes a workload through the Opsani servo protocol (seed 000, servo-k8slive, and
 * the servo-k8s main connector it depends on). A Servo takes commands from an optimizer — remote
 * over HTTP, or the local optimizer in-process — and runs them on its connectors: k8s (the main
 * Deployment), k8slive (the tuning pod) and a measure connector (Prometheus, jobs, or the
 * synthetic workload of the demo).
 */
export * from "./protocol.js";
export {
  loadServoConfig,
  parseServoConfig,
  settlementSeconds,
  type RemoteOptimizer,
  type ServoConfig,
} from "./config.js";
export { compileAdjustOn, adjustOnData } from "./expr.js";
export { Servo, type ServoOptions, type ServoRunSummary } from "./runner.js";
export { HttpTransport, InProcessTransport, optimizerUrl, type OptimizerTransport } from "./transport.js";
export { assembleServo, servoPodFromEnv, type AssembleOptions, type ServoParts } from "./assemble.js";
export { MainDeployment } from "./connectors/k8s.js";
export {
  TuningPod,
  TUNING_FOR_ANNOTATION,
  TUNING_ROLE_LABEL,
  LEGACY_TUNING_FOR_ANNOTATION,
} from "./connectors/k8slive.js";
export type { AdjustConnector, MeasureConnector, Measurement, ProgressCallback } from "./connectors/types.js";
export {
  LocalOptimizer,
  OptimizerError,
  TrialStore,
  compileObjective,
  optimizerConfigSchema,
  startOptimizerServer,
  writeReport,
  type OptimizerConfig,
  type OptimizerServer,
  type ReportFiles,
  type StudySummary,
} from "./optimizer/index.js";
export { checkEnvValue, checkRange, envDescription, rangeSetting } from "./connectors/resources.js";
export {
  cancelledError,
  throwIfCancelled,
  type AdjustOutcome,
  type ComponentDescription,
} from "./connectors/types.js";
export type { EnumEnvSetting, EnvSetting, RangeEnvSetting, RangeSpec } from "./config.js";
