/**
 * The worker ConfigMap: the file (key `config.yml` by default) that every worker mounts and reads
 * its own entry from, in the format of the original K8s Swarm Operator:
 *
 *   workloads:
 *     swarm-worker-0:
 *       jobs:
 *         - stream:xxrtve1
 *       version: 0
 *
 * A worker's `version` changes only when its set of jobs changes, so a worker (or the controller,
 * with the `restart` refresh strategy) can tell whether it has anything to reload.
 */
import { Document } from "yaml";
import { z } from "zod";
import { ConfigError, parseConfig, parseYamlDocument } from "../config/index.js";
import type { Assignment } from "./assign.js";
import { compareJobNames, compareWorkerNames } from "./order.js";

/** WorkerWorkload is one worker's entry: its jobs and the version of that job set. */
export interface WorkerWorkload {
  jobs: readonly string[];
  version: number;
}

/** WorkerConfig maps worker (pod) names to their workloads. */
export type WorkerConfig = ReadonlyMap<string, WorkerWorkload>;

/** WORKER_CONFIG_KEY is the ConfigMap key the original operator used, and our default. */
export const WORKER_CONFIG_KEY = "config.yml";

/**
 * versionWorkloads attaches versions to a new assignment: a worker keeps its previous version when
 * its job set is unchanged (in any order), gets the previous version plus one when it changed, and
 * starts at 0 when it had no entry. Pure: the previous config is the only memory.
 */
export function versionWorkloads(previous: WorkerConfig | undefined, next: Assignment): WorkerConfig {
  const result = new Map<string, WorkerWorkload>();
  for (const [worker, jobs] of next) {
    const before = previous?.get(worker);
    let version = 0;
    if (before !== undefined) version = sameJobs(before.jobs, jobs) ? before.version : before.version + 1;
    result.set(worker, { jobs, version });
  }
  return result;
}

/** changedWorkers lists the workers of `next` whose version differs from `previous`, in ordinal order. */
export function changedWorkers(previous: WorkerConfig | undefined, next: WorkerConfig): string[] {
  return [...next]
    .filter(([worker, w]) => previous?.get(worker)?.version !== w.version)
    .map(([worker]) => worker)
    .sort(compareWorkerNames);
}

/** assignmentOf drops the versions: the assignment a WorkerConfig describes. */
export function assignmentOf(config: WorkerConfig): Assignment {
  return new Map([...config].map(([worker, w]) => [worker, w.jobs]));
}

/**
 * renderWorkerConfig writes the ConfigMap file: workers in ordinal order, jobs sorted, two-space
 * indentation, no line folding (job names can be long). The same config always renders to the same
 * bytes, so an unchanged assignment never rewrites the ConfigMap.
 */
export function renderWorkerConfig(config: WorkerConfig): string {
  const workloads = new Map<string, Map<string, unknown>>();
  for (const worker of [...config.keys()].sort(compareWorkerNames)) {
    const w = config.get(worker) as WorkerWorkload;
    const jobs = [...w.jobs].sort(compareJobNames);
    workloads.set(
      worker,
      new Map<string, unknown>([
        ["jobs", jobs],
        ["version", w.version],
      ]),
    );
  }
  const doc = new Document(new Map([["workloads", workloads]]));
  return doc.toString({ indent: 2, indentSeq: true, lineWidth: 0 });
}

const workloadSchema = z.strictObject({
  jobs: z
    .array(z.string().min(1, "job names must not be empty"))
    .nullish()
    .transform((jobs) => jobs ?? []),
  version: z.int().min(0).default(0),
});

const workerConfigSchema = z.strictObject({
  workloads: z
    .record(z.string().min(1), workloadSchema.nullish())
    .nullish()
    .transform((w) => w ?? {}),
  // The original operator also wrote a pool-wide version; it carries nothing we use.
  version: z.int().optional(),
});

/**
 * parseWorkerConfig reads the ConfigMap file, including ones written by the original operator (a
 * missing per-worker version counts as 0, a top-level `version` is ignored). Throws ConfigError
 * naming `source` and the field on anything else.
 */
export function parseWorkerConfig(text: string, source = WORKER_CONFIG_KEY): WorkerConfig {
  const data = parseConfig(workerConfigSchema, parseYamlDocument(text, source) ?? {}, source);
  const result = new Map<string, WorkerWorkload>();
  for (const [worker, w] of Object.entries(data.workloads)) {
    result.set(worker, { jobs: w?.jobs ?? [], version: w?.version ?? 0 });
  }
  return result;
}

const assignmentSchema = z.record(
  z.string().min(1),
  z.array(z.string().min(1, "job names must not be empty"), { error: "must be a list of job names" }),
  { error: "must be a mapping of worker to job list, a worker config (workloads: ...) or a ConfigMap" },
);

/**
 * parseAssignmentFile reads a previous assignment in any of the forms a user has at hand: the
 * worker ConfigMap file (`workloads: ...`), the whole ConfigMap as `kubectl get cm -o yaml` prints
 * it (its `config.yml` key, or its only key), or a plain mapping of worker to job list as
 * `kubewise swarm assign` prints it (every version 0).
 */
export function parseAssignmentFile(text: string, source?: string): WorkerConfig {
  const data = parseYamlDocument(text, source) ?? {};
  const isMapping = data !== null && typeof data === "object" && !Array.isArray(data);
  const record = isMapping ? (data as Record<string, unknown>) : undefined;
  if (record?.kind === "ConfigMap") return parseConfigMapFile(record, source);
  if (record !== undefined && "workloads" in record) return parseWorkerConfig(text, source);
  const plain = parseConfig(assignmentSchema, data, source);
  return new Map(Object.entries(plain).map(([worker, jobs]) => [worker, { jobs, version: 0 }]));
}

function parseConfigMapFile(configMap: Record<string, unknown>, source?: string): WorkerConfig {
  const schema = z.object({ data: z.record(z.string(), z.string()).default({}) });
  const { data } = parseConfig(schema, configMap, source);
  const keys = Object.keys(data);
  const key = WORKER_CONFIG_KEY in data ? WORKER_CONFIG_KEY : keys.length === 1 ? keys[0] : undefined;
  if (key === undefined) {
    const message = `has no "${WORKER_CONFIG_KEY}" key and ${keys.length} others; cannot tell which holds the assignment`;
    throw new ConfigError("invalid", source, [{ path: ["data"], message }]);
  }
  return parseWorkerConfig(data[key] ?? "", source ? `${source} (data.${key})` : `data.${key}`);
}

function sameJobs(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const set = new Set(a);
  return set.size === a.length && b.every((j) => set.has(j));
}
