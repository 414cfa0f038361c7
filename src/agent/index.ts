/**
 * Package agent is the node agent (seed 002, after Intel's WCA): one per node, it lists the
 * node's pods (from the API server or the kubelet), reads each pod's cgroup (v1 or v2, systemd or
 * cgroupfs, containerd, CRI-O or Docker), publishes WCA-style task_* metrics at /metrics and to a
 * file, and can apply cpu quota, shares and cpuset allocations, re-applied every iteration
 * because the kubelet resets pod cgroups. Only the API-server pod source needs src/kube.
 */
export {
  NodeAgent,
  type NodeAgentOptions,
  type ApiServerPodSourceFactory,
  type StoppablePodSource,
} from "./agent.js";
export { ApiServerPodSource, apiServerPodSources, type ApiServerSourceOptions } from "./apiserver-source.js";
export { AgentError, type AgentReason } from "./errors.js";
export { agentConfigSchema, loadAgentConfig, parseAgentConfig, type AgentConfig } from "./config.js";
export {
  taskFromPod,
  computeQos,
  sanitizeLabelName,
  QOS_LABEL,
  type Task,
  type TaskContainer,
  type QosClass,
  type ContainerRuntime,
} from "./tasks.js";
export {
  CgroupReader,
  detectCgroupLayout,
  podCgroupPath,
  podCgroupCandidates,
  containerCgroupName,
  containerCgroupPath,
  kubepodsPath,
  type CgroupLayout,
  type CgroupDriver,
  type CgroupVersion,
  type TaskSample,
  type TaskAllocationState,
} from "./cgroups.js";
export {
  RuleAllocator,
  ANNOTATIONS,
  checkAllocations,
  changeset,
  type Allocator,
  type AllocatorInput,
  type AllocatorResult,
  type Allocation,
  type AllocationType,
  type Refusal,
  type RefusalReason,
} from "./allocator.js";
export { AllocationApplier, type AllocationResult, type AllocationOutcome } from "./apply.js";
export { TaskMetrics, MetricsServer, TASK_METRICS, writeMetricsFile, parseListen } from "./metrics.js";
export { KubeletPodSource, monitoredPods, type PodSource, type KubeletSourceOptions } from "./podsource.js";
export {
  AgentRunner,
  UNHEALTHY_AFTER,
  type AgentHealth,
  type AgentRunnerOptions,
  type IterationReport,
} from "./runner.js";
