/**
 * `kubewise jobs watch` as one object: the outbox, the reporter and the reconciler, fed by a
 * JobPodSource. The source is the only part that talks to Kubernetes (a pod watch over the
 * configured namespaces, and the annotation written after a delivery); it is wired through
 * src/kube in watcher.ts, and anything with the same shape (a test's fake) can stand in.
 */
import type { V1Pod } from "@kubernetes/client-node";
import type { Logger } from "../log.js";
import { silentLogger } from "../log.js";
import type { JobsWatchConfig } from "./config.js";
import { Outbox } from "./outbox.js";
import { JobPodReconciler } from "./reconcile.js";
import { Reporter, type MarkReported, type ReporterOptions } from "./reporter.js";

/**
 * PodListener receives every pod a source sees; `deleted` is true for a pod gone from the API.
 * `inferred` is true when that deletion was not seen but inferred from a relist (the pod is
 * missing from it): `pod` is then the last state seen before the watch broke off, maybe stale.
 */
export type PodListener = (pod: V1Pod, deleted: boolean, inferred?: boolean) => void;

/** JobPodSource is what the pod watcher provides to the service. */
export interface JobPodSource {
  /**
   * start delivers every pod in the configured namespaces (the initial list included, and again
   * after a relist) and every later change to `listener`, and resolves once the initial list
   * has been delivered.
   */
  start(listener: PodListener): Promise<void>;
  stop(): Promise<void>;
  /**
   * markReported writes REPORTED_ANNOTATION on the entry's pod (see reportedAnnotationPatch).
   * A pod that no longer exists counts as done; other failures throw and are retried.
   */
  markReported: MarkReported;
  /**
   * releaseReportFinalizer removes REPORT_FINALIZER from a pod whose report is queued (see
   * reconcile.ts releasable). It does not wait: failures are the source's to retry and log.
   */
  releaseReportFinalizer?(pod: V1Pod): void;
}

/** JobsWatchOptions configure a JobsWatch. */
export interface JobsWatchOptions {
  config: JobsWatchConfig;
  source: JobPodSource;
  log?: Logger;
  /** reporter overrides Reporter options (tests: fake clock, fast backoff). */
  reporter?: Partial<Omit<ReporterOptions, "outbox" | "target" | "markReported" | "log">>;
}

/**
 * JobsWatch runs the watcher. start() opens the outbox (resending what a previous run left),
 * then starts the pod source; stop() stops the source, lets the reporter finish the request in
 * flight, and closes the outbox.
 */
export class JobsWatch {
  private readonly options: JobsWatchOptions;
  private readonly log: Logger;
  private outbox: Outbox | undefined;
  private reporter: Reporter | undefined;

  constructor(options: JobsWatchOptions) {
    this.options = options;
    this.log = options.log ?? silentLogger;
  }

  async start(): Promise<void> {
    const { config, source } = this.options;
    const outbox = Outbox.open(config.outbox);
    this.outbox = outbox;
    const reporter = new Reporter({
      ...this.options.reporter,
      outbox,
      target: config.target,
      // Called through the source, so a class method keeps its `this`.
      markReported: (entry) => source.markReported(entry),
      log: this.log,
    });
    this.reporter = reporter;
    // The reporter goes first: reports left by a previous run need no Kubernetes to be sent.
    reporter.start();
    const reconciler = new JobPodReconciler({
      path: config.appIdPath,
      outbox,
      reporter,
      release: source.releaseReportFinalizer?.bind(source),
      log: this.log,
    });
    this.log.info(
      { namespaces: config.namespaces, app_id_path: config.appIdPath.source, outbox: config.outbox },
      "watching job pods",
    );
    try {
      await source.start((pod, deleted, inferred) => {
        try {
          reconciler.reconcile(pod, deleted, inferred === true);
        } catch (err) {
          // An outbox write failed: the pod is looked at again on the next event or relist.
          this.log.error(
            { err, pod: pod.metadata?.name, namespace: pod.metadata?.namespace },
            "cannot queue report",
          );
        }
      });
    } catch (err) {
      // A source that cannot start (a namespace it may not watch) ends the watcher: without this
      // the reporter's loop would keep the process alive with nothing feeding it.
      await this.stop();
      throw err;
    }
  }

  async stop(): Promise<void> {
    await this.options.source.stop();
    await this.reporter?.stop();
    this.outbox?.close();
    this.reporter = undefined;
    this.outbox = undefined;
  }
}
