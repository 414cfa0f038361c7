/**
 * The SwarmPool resource (group swarm.kubewise.dev, version v1alpha1): which workload is the worker
 * pool, which jobs to spread over it, the QoS policy, how workers learn about new assignments, and
 * which ConfigMap carries the assignment. The CRD in manifests/swarm/crd.yaml is the API server's
 * copy of this schema; this one gives the controller and the CLI typed values, defaults and the
 * checks a CRD schema cannot express (duplicates, dedicated jobs that are not jobs).
 */
import { z } from "zod";
import { ConfigError, parseConfig, parseYamlDocument } from "../config/index.js";
import { WORKER_CONFIG_KEY } from "./workloads.js";

/** SWARM_GROUP is the API group of SwarmPool. */
export const SWARM_GROUP = "swarm.kubewise.dev";
/** SWARM_VERSION is the served and stored version of SwarmPool. */
export const SWARM_VERSION = "v1alpha1";
/** SWARM_POOL_KIND is the kind; the plural resource name is `swarmpools`. */
export const SWARM_POOL_KIND = "SwarmPool";

// RFC 1123 subdomain, which is what StatefulSet, Deployment and ConfigMap names must be.
const objectName = z
  .string()
  .max(253)
  .regex(
    /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/,
    "must be a lower-case RFC 1123 name (letters, digits, '-' and '.')",
  );
const configMapKey = z
  .string()
  .max(253)
  .regex(/^[-._a-zA-Z0-9]+$/, "must be a ConfigMap key (letters, digits, '-', '_' and '.')");
const jobName = z.string().min(1, "job names must not be empty");

const workloadRef = z.strictObject({
  kind: z.enum(["StatefulSet", "Deployment"]).default("StatefulSet"),
  name: objectName,
});

const jobSource = z
  .strictObject({
    inline: z.array(jobName).optional(),
    configMapKeyRef: z.strictObject({ name: objectName, key: configMapKey }).optional(),
  })
  .superRefine((jobs, ctx) => {
    if ((jobs.inline === undefined) === (jobs.configMapKeyRef === undefined)) {
      ctx.addIssue({ code: "custom", message: "set exactly one of inline or configMapKeyRef", input: jobs });
    }
    for (const i of duplicateIndexes(jobs.inline ?? [])) {
      const input = jobs.inline?.[i];
      ctx.addIssue({ code: "custom", path: ["inline", i], message: "job listed more than once", input });
    }
  });

/** swarmPoolSpecSchema validates `spec` of a SwarmPool and fills in the defaults. */
export const swarmPoolSpecSchema = z
  .strictObject({
    workload: workloadRef,
    jobs: jobSource,
    qos: z.strictObject({ dedicated: z.array(jobName).default([]) }).default({ dedicated: [] }),
    refresh: z
      .strictObject({ strategy: z.enum(["hot-reload", "restart"]).default("hot-reload") })
      .default({ strategy: "hot-reload" }),
    workerConfigMap: z
      .strictObject({ name: objectName.optional(), key: configMapKey.default(WORKER_CONFIG_KEY) })
      .default({ key: WORKER_CONFIG_KEY }),
  })
  .superRefine((spec, ctx) => {
    const inline = spec.jobs.inline;
    if (inline === undefined) return; // jobs from a ConfigMap are checked when read
    const known = new Set(inline);
    spec.qos.dedicated.forEach((job, i) => {
      if (!known.has(job)) {
        ctx.addIssue({
          code: "custom",
          path: ["qos", "dedicated", i],
          message: "not in jobs.inline",
          input: job,
        });
      }
    });
  })
  .transform((spec) => ({
    ...spec,
    workerConfigMap: {
      name: spec.workerConfigMap.name ?? `${spec.workload.name}-config`,
      key: spec.workerConfigMap.key,
    },
  }));

/**
 * SwarmPoolSpec is a validated spec with defaults: workload.kind StatefulSet, qos.dedicated [],
 * refresh.strategy hot-reload (workers watch the mounted file; `restart` restarts the workers whose
 * version changed), workerConfigMap.name `<workload name>-config` (the original's
 * `swarm-worker-config` for `swarm-worker`), workerConfigMap.key `config.yml`.
 */
export type SwarmPoolSpec = z.output<typeof swarmPoolSpecSchema>;

/** RefreshStrategy says how workers pick up a new assignment. */
export type RefreshStrategy = SwarmPoolSpec["refresh"]["strategy"];

/** parseSwarmPoolSpec validates a SwarmPool's spec; errors are ConfigErrors under `spec.`. */
export function parseSwarmPoolSpec(spec: unknown, source?: string): SwarmPoolSpec {
  return parseConfig(z.strictObject({ spec: swarmPoolSpecSchema }), { spec }, source).spec;
}

const swarmPoolManifestSchema = z.object({
  apiVersion: z.literal(`${SWARM_GROUP}/${SWARM_VERSION}`),
  kind: z.literal(SWARM_POOL_KIND),
  metadata: z.object({ name: objectName, namespace: objectName.optional() }),
  spec: swarmPoolSpecSchema,
});

/** SwarmPoolManifest is a SwarmPool object as written in a file, validated. */
export type SwarmPoolManifest = z.output<typeof swarmPoolManifestSchema>;

/** parseSwarmPoolManifest validates a SwarmPool object (a parsed YAML document). */
export function parseSwarmPoolManifest(data: unknown, source?: string): SwarmPoolManifest {
  return parseConfig(swarmPoolManifestSchema, data, source);
}

/**
 * parseJobList reads a job list: a YAML or JSON sequence of names, or the original operator's
 * config document `jobs: [...]`. It is the format of the ConfigMap key named by
 * spec.jobs.configMapKeyRef and of `kubewise swarm assign --jobs`. Duplicates are kept here;
 * assignWork reports them.
 */
export function parseJobList(text: string, source?: string): string[] {
  return parseNameList(text, "jobs", source);
}

/**
 * parseNameList reads a list of names, either bare or under the single key `field`. The text must
 * hold exactly one non-empty YAML document: a second list would otherwise be dropped without a
 * word, and an empty file (or a ConfigMap key emptied by mistake) would read as "no jobs" and
 * unassign every worker. An explicit `[]` is an empty list.
 */
export function parseNameList(text: string, field: string, source?: string): string[] {
  const data = parseYamlDocument(text, source);
  if (data === undefined) {
    throw new ConfigError("invalid", source, [
      { path: [], message: `lists no ${field}: the document is empty` },
    ]);
  }
  const names = z.array(z.string().min(1, "names must not be empty"), {
    error: `must be a list of names (a YAML or JSON sequence), or a mapping with the single key "${field}"`,
  });
  if (data !== null && typeof data === "object" && !Array.isArray(data)) {
    return parseConfig(z.strictObject({ [field]: names }), data, source)[field] ?? [];
  }
  return parseConfig(names, data, source);
}

/** SwarmPoolStatus is what the controller reports on the pool. */
export interface SwarmPoolStatus {
  /** observedGeneration is the metadata.generation the status describes. */
  observedGeneration: number;
  workerCount: number;
  jobCount: number;
  /** workers lists each worker's job count and assignment version, in ordinal order. */
  workers: { name: string; jobs: number; version: number; dedicated: boolean }[];
  conditions: {
    type: string;
    status: "True" | "False" | "Unknown";
    observedGeneration?: number;
    lastTransitionTime: string;
    reason: string;
    message: string;
  }[];
}

function duplicateIndexes(names: readonly string[]): number[] {
  const seen = new Set<string>();
  const out: number[] = [];
  names.forEach((n, i) => {
    if (seen.has(n)) out.push(i);
    seen.add(n);
  });
  return out;
}
