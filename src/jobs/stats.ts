/**
 * Duration statistics for the servo's `jobs` measure connector: of the job pods of one app id
 * that finished in a measurement window (or the first N after its start), the count, mean, p50
 * and p90 of their run times. Pure: samples and the window come in, numbers go out.
 *
 * Percentiles interpolate linearly between the closest ranks (Hyndman & Fan type 7, the default
 * of numpy and R), so p50 of an even count is the mean of the middle two and a single sample is
 * every percentile.
 */
import type { ScalarMetric } from "../servo/index.js";
import type { JobRun } from "./measurement.js";

/** JobSample is one finished run as the statistics see it. */
export interface JobSample {
  uid: string;
  appId: string;
  finishedAtMs: number;
  durationSeconds: number;
  /** succeeded is true when the app container exited 0. */
  succeeded: boolean;
  /** settings names the tuned settings the run was made with (JobRun.settings); none when absent. */
  settings?: string;
}

/** StatsWindow selects samples. */
export interface StatsWindow {
  appId: string;
  /** startMs: samples that finished at or after this time. */
  startMs: number;
  /** endMs: samples that finished before this time. @default no end */
  endMs?: number;
  /** limit keeps only the first N samples (by finish time), for "wait for N jobs". @default all */
  limit?: number;
  /** includeFailed counts runs that exited non-zero in the statistics. @default false */
  includeFailed?: boolean;
  /**
   * settings keeps only the runs made with these tuned settings (a settingsIdentity; "" for runs
   * the webhook left alone). @default any settings
   */
  settings?: string;
}

/** DurationStats summarises run times in seconds. */
export interface DurationStats {
  /** count is the number of runs the statistics are over. */
  count: number;
  /** failed is the number of runs in the window that exited non-zero (whether counted or not). */
  failed: number;
  mean: number;
  p50: number;
  p90: number;
  min: number;
  max: number;
}

/** sampleOf turns a JobRun into a sample; undefined when the run never ran (it has no duration). */
export function sampleOf(run: JobRun): JobSample | undefined {
  if (run.outcome !== "ran" || run.durationSeconds === undefined || run.finishedAtMs === undefined)
    return undefined;
  return {
    uid: run.uid,
    appId: run.appId,
    finishedAtMs: run.finishedAtMs,
    durationSeconds: run.durationSeconds,
    succeeded: run.exitCode === 0,
    ...(run.settings === undefined ? {} : { settings: run.settings }),
  };
}

/**
 * selectSamples returns the samples of the window's app id (and settings, when it names them)
 * that finished in [startMs, endMs), one per uid, in finish order, cut to `limit`. Failed runs
 * are kept here (durationStats counts them apart) and count toward the limit only when
 * includeFailed is set.
 */
export function selectSamples(samples: readonly JobSample[], window: StatsWindow): JobSample[] {
  const seen = new Set<string>();
  const inWindow = samples
    .filter((s) => s.appId === window.appId && s.finishedAtMs >= window.startMs)
    .filter((s) => window.settings === undefined || (s.settings ?? "") === window.settings)
    .filter((s) => window.endMs === undefined || s.finishedAtMs < window.endMs)
    .sort((a, b) => a.finishedAtMs - b.finishedAtMs || a.uid.localeCompare(b.uid))
    .filter((s) => !seen.has(s.uid) && seen.add(s.uid) !== undefined);
  if (window.limit === undefined) return inWindow;
  const out: JobSample[] = [];
  let counted = 0;
  for (const s of inWindow) {
    if (counted >= window.limit) break;
    out.push(s);
    if (s.succeeded || window.includeFailed === true) counted++;
  }
  return out;
}

/**
 * durationStats summarises the samples (succeeded ones only unless includeFailed), or returns
 * undefined when there is none to summarise, so that a caller cannot report a mean of nothing.
 */
export function durationStats(
  samples: readonly JobSample[],
  options: { includeFailed?: boolean } = {},
): DurationStats | undefined {
  const counted = samples.filter((s) => s.succeeded || options.includeFailed === true);
  if (counted.length === 0) return undefined;
  const sorted = counted.map((s) => s.durationSeconds).sort((a, b) => a - b);
  const sum = sorted.reduce((acc, d) => acc + d, 0);
  return {
    count: sorted.length,
    failed: samples.filter((s) => !s.succeeded).length,
    mean: sum / sorted.length,
    p50: percentile(sorted, 0.5),
    p90: percentile(sorted, 0.9),
    min: sorted[0] as number,
    max: sorted[sorted.length - 1] as number,
  };
}

/**
 * percentile is the p-quantile (0 <= p <= 1) of ascending values by linear interpolation. It
 * throws a RangeError for an empty list or p outside [0, 1]: both are caller bugs.
 */
export function percentile(sortedAscending: readonly number[], p: number): number {
  if (sortedAscending.length === 0) throw new RangeError("percentile of no values");
  if (!(p >= 0 && p <= 1)) throw new RangeError(`percentile ${p} is outside [0, 1]`);
  const rank = p * (sortedAscending.length - 1);
  const lower = Math.floor(rank);
  const upper = Math.ceil(rank);
  const low = sortedAscending[lower] as number;
  const high = sortedAscending[upper] as number;
  return low + (high - low) * (rank - lower);
}

/**
 * statsMetrics names the statistics as servo metrics: duration (the mean, so a connector that
 * asks for `duration` gets the same meaning as one job's report), duration_p50, duration_p90,
 * job_count, failed_count and perf (1/mean, left out when the mean is 0).
 */
export function statsMetrics(stats: DurationStats): Record<string, ScalarMetric> {
  const metrics: Record<string, ScalarMetric> = {
    duration: { value: stats.mean, unit: "s" },
    duration_p50: { value: stats.p50, unit: "s" },
    duration_p90: { value: stats.p90, unit: "s" },
    job_count: { value: stats.count, unit: "" },
    failed_count: { value: stats.failed, unit: "" },
  };
  if (stats.mean > 0) metrics.perf = { value: 1 / stats.mean, unit: "1/s" };
  return metrics;
}
