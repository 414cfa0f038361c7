/**
 * The servo's `jobs` measure connector: the run-time statistics of the job pods of one app id
 * that finish in the measurement window [start + warmup, start + warmup + duration], or, with
 * `count`, of the first `count` successful runs after start + warmup (then `duration` is how long
 * to wait for them at most). The runs come from a JobRunFeed, which the pod watcher fills; this
 * file does no Kubernetes I/O.
 *
 * When tuning (`jobs tune`), runs made with other settings than the current ones must not count:
 * a Job created just before an adjust may run with the old settings and finish inside the
 * window. Given a `currentSettings` source, each measurement asks it once at its start which
 * settings are current (a settingsIdentity) and keeps only the runs whose pods the webhook
 * stamped with them.
 */
import { setTimeout as delay } from "node:timers/promises";
import { z } from "zod";
import { parseConfig } from "../config/index.js";
import {
  ServoError,
  type MeasureConnector,
  type MeasureParam,
  type Measurement,
  type MetricDescriptor,
  type ProgressCallback,
} from "../servo/index.js";
import { durationStats, selectSamples, statsMetrics, type JobSample } from "./stats.js";

/**
 * Clock is the connector's time: the shape of the servo connectors' Clock (src/servo's index
 * does not export it yet), so the servo can pass its own.
 */
export interface Clock {
  now(): number;
  /** sleep waits `ms`; it rejects when `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) => delay(ms, undefined, signal === undefined ? undefined : { signal }),
};

/** JobRunFeed hands the connector the finished runs seen so far (the watcher keeps them). */
export interface JobRunFeed {
  /** samples returns finished runs, at least those of the last measurement window. */
  samples(): readonly JobSample[];
}

const optionsSchema = z.strictObject({
  /** app_id is the app id (JOBID) whose runs are measured. */
  app_id: z.string().min(1, "must name the app id whose jobs are measured"),
  /** count waits for this many successful runs instead of the whole window. */
  count: z.number().int().positive().optional(),
  /** include_failed counts runs that exited non-zero in the statistics. @default false */
  include_failed: z.boolean().default(false),
});

/** JobsMeasureOptions are the `measure` section's options for `connector: jobs`. */
export type JobsMeasureOptions = z.output<typeof optionsSchema>;

/** JOBS_METRICS are the metrics the connector measures. */
export const JOBS_METRICS: Record<string, MetricDescriptor> = {
  duration: { unit: "s" },
  duration_p50: { unit: "s" },
  duration_p90: { unit: "s" },
  perf: { unit: "1/s" },
  job_count: { unit: "" },
  failed_count: { unit: "" },
};

const POLL_MS = 1000;

/** JobsMeasureDeps are what the connector needs besides its options and feed. */
export interface JobsMeasureDeps {
  clock?: Clock;
  /**
   * currentSettings names the settings the measured runs must have been made with (a
   * settingsIdentity, "" for untuned pods), read at the start of each measurement. @default any
   */
  currentSettings?: () => Promise<string>;
}

/** JobsMeasureConnector is the `jobs` MeasureConnector; see the top of this file. */
export class JobsMeasureConnector implements MeasureConnector {
  readonly name = "jobs";
  readonly options: JobsMeasureOptions;
  private readonly feed: JobRunFeed;
  private readonly clock: Clock;
  private readonly currentSettings: (() => Promise<string>) | undefined;

  /** The constructor validates the options, throwing a ConfigError naming the bad field. */
  constructor(options: Record<string, unknown>, feed: JobRunFeed, deps: JobsMeasureDeps = {}) {
    this.options = parseConfig(optionsSchema, options, "measure.options (jobs)");
    this.feed = feed;
    this.clock = deps.clock ?? systemClock;
    this.currentSettings = deps.currentSettings;
  }

  describeMetrics(): Record<string, MetricDescriptor> {
    return { ...JOBS_METRICS };
  }

  async measure(param: MeasureParam, progress: ProgressCallback, signal?: AbortSignal): Promise<Measurement> {
    const names = requestedMetrics(param);
    const { warmup, duration } = param.control;
    const startMs = this.clock.now() + warmup * 1000;
    const endMs = startMs + duration * 1000;
    const appId = this.options.app_id;
    const settings = await this.readCurrentSettings();
    progress(0, `warming up for ${warmup}s`);
    await this.sleep(warmup * 1000, signal);
    const selected = await this.collect(startMs, endMs, settings, progress, signal);
    const stats = durationStats(selected, { includeFailed: this.options.include_failed });
    if (stats === undefined) {
      const made = settings === undefined ? "" : ` made with ${settingsText(settings)}`;
      const hint =
        settings === undefined || settings === ""
          ? ""
          : "; the admission webhook (kubewise jobs webhook) stamps the pods it tunes: is it registered for this namespace?";
      throw new ServoError(
        "measure-failed",
        `no ${this.options.include_failed ? "" : "successful "}run of app id "${appId}"${made} finished in the ${duration}s window${hint}`,
      );
    }
    const all = statsMetrics(stats);
    const metrics = Object.fromEntries(names.flatMap((n) => (all[n] === undefined ? [] : [[n, all[n]]])));
    const annotations: Record<string, string> = { app_id: appId, runs: selected.map((s) => s.uid).join(",") };
    if (settings !== undefined) annotations.tuned_settings = settings;
    return { metrics, annotations };
  }

  // collect waits for the window to end, or for `count` runs when set (the window is then the
  // longest wait), reporting progress by time, or by runs counted.
  private async collect(
    startMs: number,
    endMs: number,
    settings: string | undefined,
    progress: ProgressCallback,
    signal: AbortSignal | undefined,
  ): Promise<JobSample[]> {
    const { app_id: appId, count, include_failed: includeFailed } = this.options;
    const window = {
      appId,
      startMs,
      endMs,
      includeFailed,
      ...(count === undefined ? {} : { limit: count }),
      ...(settings === undefined ? {} : { settings }),
    };
    for (;;) {
      const selected = selectSamples(this.feed.samples(), window);
      const counted = selected.filter((s) => s.succeeded || includeFailed).length;
      const now = this.clock.now();
      if (now >= endMs || (count !== undefined && counted >= count)) return selected;
      const percent =
        count === undefined ? (100 * (now - startMs)) / (endMs - startMs) : (100 * counted) / count;
      progress(Math.max(0, Math.min(99, percent)), `${counted} run(s) of ${appId} so far`);
      await this.sleep(Math.min(POLL_MS, endMs - now), signal);
    }
  }

  private async readCurrentSettings(): Promise<string | undefined> {
    if (this.currentSettings === undefined) return undefined;
    try {
      return await this.currentSettings();
    } catch (err) {
      throw new ServoError(
        "measure-failed",
        `jobs: cannot tell which settings app id "${this.options.app_id}" runs with now: ${(err as Error).message}`,
        { cause: err },
      );
    }
  }

  private async sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
    if (signal?.aborted) throw cancelled(signal);
    if (ms <= 0) return;
    try {
      await this.clock.sleep(ms, signal);
    } catch (err) {
      if (signal?.aborted) throw cancelled(signal);
      throw err;
    }
  }
}

// requestedMetrics returns the metrics a MEASURE asks for (all when it names none), refusing the
// ones this connector cannot measure, as the servo's connectors do.
function requestedMetrics(param: MeasureParam): string[] {
  const known = Object.keys(JOBS_METRICS);
  const asked = Object.keys(param.metrics);
  if (asked.length === 0) return known;
  const unknown = asked.filter((m) => !known.includes(m));
  if (unknown.length > 0) {
    const list = (names: readonly string[]): string => names.map((n) => JSON.stringify(n)).join(", ");
    throw new ServoError(
      "unknown-metric",
      `jobs cannot measure ${list(unknown)}; it measures ${list(known)}`,
    );
  }
  return asked;
}

function settingsText(settings: string): string {
  return settings === "" ? "untuned settings" : `the tuned settings ${JSON.stringify(settings)}`;
}

function cancelled(signal: AbortSignal): ServoError {
  const why = signal.reason instanceof Error ? `: ${signal.reason.message}` : "";
  return new ServoError("cancelled", `jobs measurement was cancelled${why}`, {
    status: "cancelled",
    cause: signal.reason,
  });
}
