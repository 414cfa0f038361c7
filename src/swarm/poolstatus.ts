/**
 * The SwarmPool status the controller writes, built as plain data: worker entries, pending
 * restarts and the three conditions, following the Kubernetes API conventions (CamelCase
 * reasons, lastTransitionTime kept while a condition's status does not change).
 *
 * - Ready: True when every job is assigned, every worker has a Ready pod and no restart is
 *   pending; otherwise False with the reason (RestartingWorkers, WorkersNotReady, or the problem).
 * - Progressing: True while restarts are pending or workers are not Ready yet.
 * - Degraded: True when the pool cannot be assigned (a bad spec, too few workers, a missing
 *   workload or job list), with a reason from PoolProblemReason; the last good assignment stays.
 */
import type { SwarmReason } from "./errors.js";
import type { SwarmPoolStatus } from "./pool.js";
import type { PendingRestart, RolloutStep } from "./rollout.js";
import type { WorkerConfig } from "./workloads.js";
import { compareWorkerNames } from "./order.js";

/** PoolCondition is one entry of status.conditions. */
export type PoolCondition = SwarmPoolStatus["conditions"][number];

/** PoolStatus is the status the controller writes: SwarmPoolStatus plus the restart record. */
export interface PoolStatus extends SwarmPoolStatus {
  /** pendingRestarts: pods that run an older entry than their worker's version (restart strategy). */
  pendingRestarts?: PendingRestart[];
}

/**
 * PoolProblemReason is the vocabulary of Degraded: the spec is invalid, the job list is invalid
 * or missing, the workload is missing, the worker ConfigMap belongs to something else, or the
 * assignment itself is impossible (problemReasonOf maps SwarmError's reasons).
 */
export type PoolProblemReason =
  | "InvalidSpec"
  | "InvalidJobs"
  | "JobsNotFound"
  | "WorkloadNotFound"
  | "ConfigMapConflict"
  | "InsufficientWorkers"
  | "NoWorkers"
  | "DuplicateJob"
  | "DuplicateWorker"
  | "UnknownDedicatedJob"
  | "InvalidName";

const problemReasons: Record<SwarmReason, PoolProblemReason> = {
  "duplicate-job": "DuplicateJob",
  "duplicate-worker": "DuplicateWorker",
  "invalid-name": "InvalidName",
  "no-workers": "NoWorkers",
  "unknown-dedicated-job": "UnknownDedicatedJob",
  "insufficient-workers": "InsufficientWorkers",
};

/** problemReasonOf maps an assignment error's reason to the condition reason. */
export function problemReasonOf(reason: SwarmReason): PoolProblemReason {
  return problemReasons[reason];
}

/** ConditionUpdate is a condition as decided, before times are attached. */
export type ConditionUpdate = Pick<PoolCondition, "type" | "status" | "reason" | "message">;

/** HealthyPoolInput is what the conditions of an assigned pool depend on. */
export interface HealthyPoolInput {
  jobCount: number;
  workers: readonly string[];
  /** unready lists the workers without a Ready pod. */
  unready: readonly string[];
  step: RolloutStep;
}

/** healthyConditions are the conditions of a pool whose assignment is written. */
export function healthyConditions(input: HealthyPoolInput): ConditionUpdate[] {
  const degraded: ConditionUpdate = {
    type: "Degraded",
    status: "False",
    reason: "AsExpected",
    message: "every job is assigned",
  };
  const summary = `${input.jobCount} job${input.jobCount === 1 ? "" : "s"} on ${input.workers.length} worker${input.workers.length === 1 ? "" : "s"}`;
  if (input.step.kind !== "idle") {
    const message = `${summary}; ${input.step.message}`;
    return [
      { type: "Ready", status: "False", reason: "RestartingWorkers", message },
      { type: "Progressing", status: "True", reason: "RestartingWorkers", message },
      degraded,
    ];
  }
  if (input.unready.length > 0) {
    const message = `${summary}; waiting for ${listWorkers(input.unready)} to be Ready`;
    return [
      { type: "Ready", status: "False", reason: "WorkersNotReady", message },
      { type: "Progressing", status: "True", reason: "WorkersNotReady", message },
      degraded,
    ];
  }
  return [
    { type: "Ready", status: "True", reason: "Assigned", message: summary },
    { type: "Progressing", status: "False", reason: "Settled", message: summary },
    degraded,
  ];
}

/** problemConditions are the conditions of a pool that cannot be assigned. */
export function problemConditions(reason: PoolProblemReason, message: string): ConditionUpdate[] {
  return [
    { type: "Ready", status: "False", reason, message },
    { type: "Progressing", status: "False", reason, message },
    { type: "Degraded", status: "True", reason, message },
  ];
}

/**
 * setConditions applies updates to the existing conditions: a condition whose status is
 * unchanged keeps its lastTransitionTime; others get `nowIso`. Condition types the controller
 * does not manage are kept as they are.
 */
export function setConditions(
  existing: readonly PoolCondition[] | undefined,
  updates: readonly ConditionUpdate[],
  generation: number,
  nowIso: string,
): PoolCondition[] {
  const old = new Map((existing ?? []).map((c) => [c.type, c]));
  const result: PoolCondition[] = updates.map((u) => {
    const before = old.get(u.type);
    const lastTransitionTime = before?.status === u.status ? before.lastTransitionTime : nowIso;
    return { ...u, observedGeneration: generation, lastTransitionTime };
  });
  const managed = new Set(updates.map((u) => u.type));
  for (const c of existing ?? []) if (!managed.has(c.type)) result.push(c);
  return result;
}

/** workerStatus lists each worker's job count and version, in ordinal order. */
export function workerStatus(config: WorkerConfig, dedicated: ReadonlySet<string>): PoolStatus["workers"] {
  return [...config]
    .sort(([a], [b]) => compareWorkerNames(a, b))
    .map(([name, w]) => ({
      name,
      jobs: w.jobs.length,
      version: w.version,
      dedicated: w.jobs.length === 1 && dedicated.has(w.jobs[0] as string),
    }));
}

/** kubeTime formats a time as Kubernetes does (RFC 3339, whole seconds, UTC). */
export function kubeTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/**
 * canonicalJson serialises with sorted keys and without undefined fields, so a status built here
 * compares equal to the same status read back from the API server (which sorts keys).
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== "object" || Array.isArray(v)) return v;
    const sorted: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) sorted[k] = (v as Record<string, unknown>)[k];
    return sorted;
  });
}

function listWorkers(names: readonly string[]): string {
  const sorted = [...names].sort(compareWorkerNames);
  const shown = sorted.slice(0, 5).join(", ");
  return sorted.length > 5 ? `${shown} and ${sorted.length - 5} more` : shown;
}
