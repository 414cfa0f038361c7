/**
 * Package jobs measures batch jobs on Kubernetes (seed 001, servo-k8s-multijob) and applies tuned
 * settings to them. The watcher reports the run time and resources of every job pod that
 * finishes (a pod whose app id, found by the OPTUNE_APP_ID path, is non-empty) as a servo
 * MEASUREMENT to OPTUNE_URL, exactly once across restarts and endpoint outages: a durable outbox
 * keyed by pod uid, a reporter with backoff, and a pod annotation written after each 2xx. The
 * same runs feed the servo's `jobs` measure connector (duration statistics over a window), and
 * a mutating admission webhook applies the servo's latest cpu/mem/env for an app id to its new
 * job pods, from the settings ConfigMap of the pod's own namespace. watcher.ts, measure.ts,
 * settings-store.ts and install.ts are the parts that talk to the cluster (through src/kube): the
 * pod watch, the servo connector's run feed, the settings ConfigMaps (one per namespace, all
 * followed by one watch), and the webhook's registration; tune.ts is the servo adjust connector
 * that writes a namespace's ConfigMap (`kubewise jobs tune`).
 */
export { JobsError, type JobsErrorReason } from "./errors.js";
export {
  DEFAULT_APP_ID_PATH,
  appContainerIndex,
  describeAppIdPathError,
  jobAppId,
  parseAppIdPath,
  resolveAppId,
  type AppIdPath,
  type AppIdStep,
} from "./appid.js";
export {
  DEFAULT_NAMESPACES,
  DEFAULT_OPTUNE_URL,
  DEFAULT_OUTBOX,
  DEFAULT_WEBHOOK_LISTEN,
  JOBS_ENV,
  checkUrlTemplate,
  namespaceListProblem,
  parseNamespaces,
  resolveWatchConfig,
  resolveWebhookConfig,
  type Env,
  type JobsWatchConfig,
  type JobsWatchFlags,
  type JobsWebhookConfig,
  type JobsWebhookFlags,
  type ReportTarget,
} from "./config.js";
export {
  NEVER_RAN_REASONS,
  describeJobRun,
  isPodFinished,
  measurementEvent,
  measurementParam,
  type JobOutcome,
  type JobRun,
  type JobRunOptions,
  type MeasurementEvent,
  type MeasurementPayload,
  type NeverRanReason,
} from "./measurement.js";
export {
  Outbox,
  type EnqueueResult,
  type NewReport,
  type OutboxEntry,
  type OutboxOptions,
  type OutboxState,
} from "./outbox.js";
export {
  DEFAULT_BACKOFF,
  Reporter,
  backoffDelay,
  classifyStatus,
  defaultSleep,
  parseRetryAfter,
  reportUrl,
  type BackoffPolicy,
  type DeliveryOutcome,
  type MarkReported,
  type ReporterOptions,
  type ReporterStatus,
  type Sleep,
} from "./reporter.js";
export {
  REPORTED_ANNOTATION,
  JobPodReconciler,
  decideReport,
  holdsReport,
  releasable,
  reportedAnnotationPatch,
  type PodDecision,
  type ReconcileResult,
  type SkipReason,
} from "./reconcile.js";
export { JobsWatch, type JobPodSource, type JobsWatchOptions, type PodListener } from "./service.js";
export {
  durationStats,
  percentile,
  sampleOf,
  selectSamples,
  statsMetrics,
  type DurationStats,
  type JobSample,
  type StatsWindow,
} from "./stats.js";
export {
  JOBS_METRICS,
  JobsMeasureConnector,
  type Clock,
  type JobRunFeed,
  type JobsMeasureOptions,
} from "./connector.js";
export {
  SETTINGS_API_VERSION,
  SETTINGS_CONFIGMAP,
  SETTINGS_KEY,
  SETTINGS_KIND,
  NamespacedSettings,
  SettingsDocument,
  SettingsFile,
  parseSettingsDocument,
  renderSettingsDocument,
  type ResourceTarget,
  type SettingsByApp,
  type SettingsSource,
  type TunedSettings,
} from "./settings.js";
export {
  REPORT_FINALIZER,
  SETTINGS_ANNOTATION,
  admissionResponse,
  parseAdmissionReview,
  podPatch,
  podSettingsIdentity,
  reviewedJobAppId,
  settingsIdentity,
  type AdmissionReview,
  type AdmissionReviewResponse,
  type JsonPatchOperation,
} from "./mutation.js";
export { WebhookServer, MAX_REVIEW_BYTES, type WebhookServerOptions } from "./webhook-server.js";
export {
  checkServingPair,
  createServingCertificate,
  dnsLabelProblem,
  ipAddressProblem,
  webhookDnsNames,
  type ServingCertificate,
  type ServingCertificateOptions,
  type ServingPairFiles,
} from "./cert.js";
export {
  DEFAULT_START_TIMEOUT_MS,
  JobPodWatcher,
  JobRunWatch,
  releaseAllReportFinalizers,
  releaseReportFinalizer,
  type JobPodWatcherOptions,
  type JobRunWatchOptions,
} from "./watcher.js";
export { WatchedJobsMeasure, type WatchedJobsMeasureDeps } from "./measure.js";
export { ConfigMapSettings, saveTunedSettings, type ConfigMapSettingsOptions } from "./settings-store.js";
export {
  JOB_LABEL,
  SYSTEM_NAMESPACES,
  WEBHOOK_CONFIGURATION,
  WEBHOOK_NAME,
  WEBHOOK_TIMEOUT_RANGE,
  registerWebhook,
  unregisterWebhook,
  webhookConfiguration,
  webhookTimeoutProblem,
  webhookUrlProblem,
  type WebhookEndpoint,
  type WebhookRegistration,
} from "./install.js";
export {
  JobSettingsConnector,
  configMapSettingsStore,
  jobsTuneConnectors,
  loadJobsTuneConfig,
  parseJobsTuneConfig,
  type JobSettingsConnectorDeps,
  type JobsTuneConfig,
  type JobsTuneConnectors,
  type TunedRange,
  type TunedSettingsStore,
} from "./tune.js";
