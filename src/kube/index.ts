/**
 * Package kube is the only door to the Kubernetes API server. It makes clients from a kubeconfig
 * or the in-cluster account, converts resource quantities, server-side applies with the field
 * manager "kubewise", watches resources without ever stopping silently (relist on 410, backoff on
 * anything else), waits on watch events for pods, rollouts and deletions, and turns API failures
 * into a short vocabulary of reasons (NotFound, Conflict, ...) so no caller reads HTTP codes.
 */
export { KubeClient, type ConnectOptions } from "./client.js";
export { KubeError, ignoreNotFound, isNotFound, isReason, toKubeError, type KubeReason } from "./errors.js";
export {
  QuantityError,
  formatCpu,
  formatMemory,
  formatMemoryGiB,
  parseCpu,
  parseMemory,
  parseMemoryGiB,
  parseQuantity,
} from "./quantity.js";
export {
  FIELD_MANAGER,
  applyObject,
  deleteObject,
  describeObject,
  patchObject,
  type ApplyOptions,
  type ApplyResult,
  type PatchKind,
} from "./apply.js";
export {
  deploymentSelector,
  replicaSetsOf,
  rollbackDeployment,
  waitForPodsStable,
  waitForRolloutHealthy,
} from "./deployments.js";
export { controllerOf, ownerReference } from "./owner.js";
export {
  ResourceWatcher,
  resourcePath,
  type WatchEvent,
  type WatchEventType,
  type WatchTarget,
  type WatcherOptions,
} from "./watch.js";
export {
  waitForDeleted,
  waitForObject,
  waitForPodReady,
  waitForPodStable,
  waitForRollout,
  type Verdict,
  type WaitOptions,
} from "./wait.js";
export {
  isPodReady,
  podProblem,
  rolloutState,
  type PodProblem,
  type PodProblemReason,
  type RolloutState,
} from "./pods.js";
export type * from "@kubernetes/client-node";
// Pure code that needs only quantities may import "../kube/quantity.js" directly: it does not load
// the API client, which takes seconds to import.
export {
  LeaderElector,
  decideLease,
  kubeLeaseStore,
  leaseRecordOf,
  releasedRecord,
  type LeaderElectorOptions,
  type LeaseDecision,
  type LeaseDecisionInput,
  type LeaseRecord,
  type LeaseStore,
} from "./lease.js";
export { replaceStatus, type StatusTarget } from "./status.js";
