/**
 * Package deploy runs a service from a short spec (seed 004). A service.yaml uses Opta's
 * k8s-service field names and forms, so an Opta module block works unchanged, and also takes
 * Kubernetes quantity strings and kubewise's additions (ports list, env from Secrets and
 * ConfigMaps, TLS, PodDisruptionBudget, rollout surge, ServiceAccount, a tuning block).
 * loadServiceSpec validates it into a ServiceSpec, reporting every problem with its field path;
 * renderService turns that into Deployment (or StatefulSet), Service, HorizontalPodAutoscaler,
 * PodDisruptionBudget, Ingress, ServiceAccount and CronJob objects as a pure function; and
 * servoConfig turns the tuning block into the servo's `k8s` and `k8slive` configuration.
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
  MAIN_ADJUST_ON,
  servoConfig,
  type EnvSetting,
  type LiveSettings,
  type ReplicasSetting,
  type ResourceSetting,
  type ServoComponent,
  type ServoConfig,
  type ServoRange,
  type TuningSpec,
} from "./tuning.js";
