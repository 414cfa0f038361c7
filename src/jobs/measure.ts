/**
 * The servo's `jobs` measure connector on a cluster: JobsMeasureConnector (the window and the
 * statistics) fed by a JobRunWatch over the job pods of the configured namespaces. The watch
 * runs only while a MEASURE does: it lists the pods at the start (so runs that finished before
 * the watch began are known from their pods' status times) and follows them until the window
 * closes, keeping runs whose pods are deleted meanwhile.
 *
 * Its `measure` options are the connector's (app_id, count, include_failed) plus where to look:
 * - namespaces: a list, or a comma-separated string, of namespaces whose pods are watched;
 *   default the k8s section's namespace;
 * - app_id_path: where a pod's app id is, in OPTUNE_APP_ID's syntax; default
 *   spec/containers/0/env/[JOBID].
 */
import { z } from "zod";
import { parseConfig } from "../config/index.js";
import type { KubeClient } from "../kube/index.js";
import type { Logger } from "../log.js";
import { silentLogger } from "../log.js";
import {
  ServoError,
  type MeasureConnector,
  type MeasureParam,
  type Measurement,
  type MetricDescriptor,
  type ProgressCallback,
} from "../servo/index.js";
import { DEFAULT_APP_ID_PATH, describeAppIdPathError, parseAppIdPath } from "./appid.js";
import { parseNamespaces } from "./config.js";
import { JobsMeasureConnector, type Clock } from "./connector.js";
import { JobRunWatch } from "./watcher.js";

const namespaceName = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

const clusterOptionsSchema = z.looseObject({
  namespaces: z
    .union([z.string(), z.array(z.string())])
    .transform((v) => (typeof v === "string" ? parseNamespaces(v) : [...new Set(v)]))
    .pipe(
      z
        .array(
          z.string().regex(namespaceName, "must be a namespace name: lower-case letters, digits and '-'"),
        )
        .min(1, "must name at least one namespace"),
    )
    .optional(),
  app_id_path: z
    .string()
    .superRefine((v, ctx) => {
      const problem = describeAppIdPathError(v);
      if (problem) ctx.addIssue({ code: "custom", message: problem });
    })
    .default(DEFAULT_APP_ID_PATH),
});

/** WatchedJobsMeasureDeps are what the connector needs besides its options. */
export interface WatchedJobsMeasureDeps {
  client: KubeClient;
  /** namespace is watched when the options name none (the servo passes its k8s namespace). */
  namespace: string;
  log?: Logger;
  clock?: Clock;
  /** currentSettings: see JobsMeasureDeps; `jobs tune` reads them from its settings store. */
  currentSettings?: () => Promise<string>;
}

/** WatchedJobsMeasure is the `jobs` MeasureConnector over a cluster; see the top of this file. */
export class WatchedJobsMeasure implements MeasureConnector {
  readonly name = "jobs";
  /** namespaces are the namespaces whose job pods are measured. */
  readonly namespaces: readonly string[];
  private readonly connector: JobsMeasureConnector;
  private readonly feed: JobRunWatch;
  private readonly log: Logger;

  /** The constructor validates the options, throwing a ConfigError naming the bad field. */
  constructor(options: Record<string, unknown>, deps: WatchedJobsMeasureDeps) {
    const label = "measure.options (jobs)";
    const { namespaces, app_id_path: appIdPath, ...rest } = parseConfig(clusterOptionsSchema, options, label);
    this.namespaces = namespaces ?? [deps.namespace];
    this.log = deps.log ?? silentLogger;
    this.feed = new JobRunWatch({
      client: deps.client,
      namespaces: this.namespaces,
      appIdPath: parseAppIdPath(appIdPath),
      log: this.log,
      now: deps.clock === undefined ? undefined : () => (deps.clock as Clock).now(),
    });
    this.connector = new JobsMeasureConnector(rest, this.feed, {
      clock: deps.clock,
      currentSettings: deps.currentSettings,
    });
  }

  describeMetrics(): Record<string, MetricDescriptor> {
    return this.connector.describeMetrics();
  }

  async measure(param: MeasureParam, progress: ProgressCallback, signal?: AbortSignal): Promise<Measurement> {
    try {
      await this.feed.start();
    } catch (err) {
      throw new ServoError("measure-failed", `jobs: ${(err as Error).message}`, { cause: err });
    }
    this.log.info(
      { namespaces: this.namespaces, app_id: this.connector.options.app_id },
      "measuring job runs",
    );
    try {
      return await this.connector.measure(param, progress, signal);
    } finally {
      await this.feed.stop();
    }
  }
}
