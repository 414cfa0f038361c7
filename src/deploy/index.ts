/**
 * Package deploy runs a service from a short spec (seed 004). A service.yaml uses Opta's
 * k8s-service field names and forms, so an Opta module block works unchanged, and also takes
 * Kubernetes quantity strings and kubewise's additions (ports list, env from Secrets and
 * ConfigMaps, TLS, PodDisruptionBudget, rollout surge, ServiceAccount, a tuning block).
 * loadServiceSpec validates it into a ServiceSpec, reporting every problem with its field path;
 * renderService turns that into Deployment (or StatefulSet), Service, HorizontalPodAutoscaler,
 * PodDisruptionBudget, Ingress, ServiceAccount and CronJob objects as a pure function; and
 * servoConfig turns the tuning block into a servo configuration `kubewise servo run` accepts:
 * the `k8s` and `k8slive` sections, the block's `measure`, and its `optimizer` or a default one.
 *
 * The cluster half: planService dry-runs every rendered object server-side and diffs it with the
 * live one; applyService applies what differs (reporting created/updated/unchanged per object),
 * prunes the service's objects the spec dropped (only ones kubewise applied) and waits for the
 * rollout, rolling a Deployment back on request; serviceStatus and deleteService look at and
 * remove a service. pushImageArchive pushes an OCI or `docker save` archive to a registry over
 * the Registry HTTP API v2, for `image: AUTO` services.
 */
export { DeployError, type DeployReason } from "./errors.js";
export { LOCAL_REGISTRY, parseImageRef, resolveImage, type ImageOptions, type ImageRef } from "./image.js";
export { ingressName } from "./ingress.js";
export { childName, shortHash, MAX_NAME } from "./names.js";
export { MANAGED_BY, renderService, type Manifest, type RenderOptions, type RenderResult } from "./render.js";
export { toYaml, toYamlDocument } from "./yaml.js";
export {
  loadServiceSpec,
  parsePublicUri,
  parseServiceSpec,
  serviceSchema,
  type EnvSource,
  type EnvVar,
  type IngressSpec,
  type PortSpec,
  type Probe,
  type ProbeSpec,
  type PublicUri,
  type ServiceSpec,
  type SpecOptions,
  type Toleration,
} from "./spec.js";
export {
  DEFAULT_MAX_TRIALS,
  MAIN_ADJUST_ON,
  defaultOptimizer,
  servoConfig,
  servoConfigNotes,
  type EnvSetting,
  type LiveSettings,
  type ReplicasSetting,
  type ResourceSetting,
  type ServoComponent,
  type ServoConfig,
  type ServoRange,
  type TuningSpec,
} from "./tuning.js";
export {
  applyService,
  workloadOf,
  DEFAULT_TIMEOUT_MS,
  type AppliedObject,
  type ApplyReport,
  type ApplyServiceOptions,
  type ObjectResult,
} from "./apply.js";
export { diffObjects, formatChange, type FieldChange } from "./diff.js";
export { podReports, type PodHealthReason, type PodReport } from "./health.js";
export {
  SERVICE_KINDS,
  appliedByKubewise,
  belongsTo,
  listServiceObjects,
  type ObjectRef,
  type ServiceKind,
} from "./inventory.js";
export {
  planService,
  type DeployTarget,
  type KeptObject,
  type ObjectAction,
  type ObjectPlan,
  type Plan,
  type PlanOptions,
} from "./plan.js";
export { deleteService, type DeleteOptions, type DeleteReport } from "./prune.js";
export {
  pushImageArchive,
  pushRecordPath,
  readPushRecord,
  writePushRecord,
  type PushOptions,
  type PushRecord,
  type PushResult,
} from "./push.js";
export { MEDIA_TYPES, openImageArchive, sha256, type ImageArchive } from "./archive.js";
export { RegistryClient, RegistryError, type RegistryOptions, type RegistryReason } from "./registry.js";
export { formatApplied, formatDeleted, formatPlan, formatRollout, formatStatus } from "./report.js";
export { awaitRollout, type RollbackOutcome, type RolloutOutcome, type Workload } from "./rollout.js";
export {
  serviceStatus,
  type AutoscalerStatus,
  type MetricStatus,
  type ObjectStatus,
  type ServiceStatus,
  type WorkloadStatus,
} from "./status.js";
export { writeTar, type TarInput } from "./tar.js";
