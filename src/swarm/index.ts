/**
 * Package swarm spreads a list of jobs (streams, long-running tasks that must not be processed
 * twice) over a pool of workers, as the K8s Swarm Operator did (seed 003). The core is assignWork,
 * a pure function from (jobs, workers, previous assignment, QoS policy) to an assignment that is
 * deterministic, balanced to within one job, and moves the fewest jobs balance allows when workers
 * or jobs come and go. Around it: the worker ConfigMap format (`workloads: {<pod>: {jobs, version}}`)
 * with versions that change only when a worker's jobs do, and the SwarmPool resource that names the
 * worker workload, the jobs, the QoS policy and the refresh strategy. The controller that reconciles
 * SwarmPools builds on these.
 */
export { assignWork, movedJobs, type Assignment, type SwarmPolicy } from "./assign.js";
export { SwarmError, type SwarmReason } from "./errors.js";
export { compareJobNames, compareWorkerNames } from "./order.js";
export {
  parseJobList,
  parseNameList,
  parseSwarmPoolManifest,
  parseSwarmPoolSpec,
  swarmPoolSpecSchema,
  SWARM_GROUP,
  SWARM_POOL_KIND,
  SWARM_VERSION,
  type RefreshStrategy,
  type SwarmPoolManifest,
  type SwarmPoolSpec,
  type SwarmPoolStatus,
} from "./pool.js";
export {
  assignmentOf,
  parseAssignmentFile,
  changedWorkers,
  parseWorkerConfig,
  renderWorkerConfig,
  versionWorkloads,
  WORKER_CONFIG_KEY,
  type WorkerConfig,
  type WorkerWorkload,
} from "./workloads.js";
export {
  SwarmController,
  SWARM_API_VERSION,
  SWARM_POOL_PLURAL,
  type PoolAssignment,
  type SwarmControllerOptions,
  type SwarmPoolObject,
} from "./controller.js";
export { IntrospectionServer, type AssignmentsResponse, type ListenAddress } from "./http.js";
export { SwarmMetrics } from "./metrics.js";
export type { PendingRestart } from "./rollout.js";
export type { PoolCondition, PoolStatus } from "./poolstatus.js";
