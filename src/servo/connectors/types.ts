/**
 * Package connectors holds what a servo uses to act on the world: describe connectors report the
 * application's settings, adjust connectors change them (the k8s main Deployment, the k8slive
 * tuning pod) and measure connectors read metrics (Prometheus, the jobs reporter, or the synthetic
 * workload of the demo). This file holds their contracts, in the wire protocol's types, and the
 * few helpers every long-running connector needs: a clock, cancellation and progress.
 *
 * Errors: a connector throws ServoError (src/servo/protocol.ts) carrying the status and reason to
 * report, e.g. `rejected`/`unstable` or `failed`/`measure-failed`; cancellation is `cancelled`.
 */
import { setTimeout as delay } from "node:timers/promises";
import {
  ServoError,
  type AdjustParam,
  type MeasureParam,
  type MetricDescriptor,
  type ScalarMetric,
  type Setting,
  type TimeSeries,
} from "../protocol.js";

/**
 * ProgressCallback receives how far a command got, as a percentage (0-100), with an optional
 * message for people. It must not throw or block: the runner posts progress asynchronously.
 */
export type ProgressCallback = (percent: number, message?: string) => void;

/** ComponentDescription is one component's settings, as a DESCRIPTION carries them. */
export interface ComponentDescription {
  settings: Record<string, Setting>;
}

/** DescribeConnector reports components and the current values of their settings. */
export interface DescribeConnector {
  /** name identifies the connector in logs and errors, e.g. "k8s" or "k8slive". */
  readonly name: string;
  /** describe reads the components' settings (value, min, max, step, pinned) as they are now. */
  describe(signal?: AbortSignal): Promise<Record<string, ComponentDescription>>;
}

/**
 * AdjustOutcome is a successful or skipped adjust. Failures are thrown as ServoError with their
 * status (`failed`, `rejected`, `aborted`, `transient-failure`) and reason.
 */
export interface AdjustOutcome {
  /** adjusted is false when the connector had nothing to do (adjust_on, deploy_to, no component). */
  adjusted: boolean;
  /** reason is a reason word on success (`success`) or why it was skipped. */
  reason: string;
  message?: string;
}

/** AdjustConnector applies an ADJUST's state to the components it owns. */
export interface AdjustConnector extends DescribeConnector {
  /**
   * adjust applies the settings in `param.state` that belong to this connector, waits for the
   * rollout and settlement, and reports progress. Aborting `signal` cancels it (ServoError
   * `cancelled`): what was already applied stays, and on_fail is not applied (a cancel says
   * nothing about the settings).
   */
  adjust(param: AdjustParam, progress: ProgressCallback, signal?: AbortSignal): Promise<AdjustOutcome>;
}

/**
 * MetricReading is one metric's reading: a scalar `{value, unit}` or time series
 * `{values: [{id, data: [[ts, value], ...]}], unit}` (servo-prom's shape), optionally with an
 * `annotation` such as the query that produced it.
 */
export type MetricReading = (ScalarMetric | { values: TimeSeries[]; unit?: string }) & {
  annotation?: string;
};

/** Measurement is a MEASURE's result: one reading per requested metric, and string annotations. */
export interface Measurement {
  metrics: Record<string, MetricReading>;
  annotations: Record<string, string>;
}

/** MeasureConnector reads metrics over a measurement window. */
export interface MeasureConnector {
  /** name identifies the connector in logs and errors, e.g. "prometheus". */
  readonly name: string;
  /** describeMetrics lists the metrics this connector can measure, with their units. */
  describeMetrics(): Record<string, MetricDescriptor>;
  /**
   * measure waits out the window given by `param.control` (warmup, duration, delay), reporting
   * progress, then returns a reading for each metric in `param.metrics` (every metric when that
   * is empty). Aborting `signal` cancels it with ServoError `cancelled`.
   */
  measure(param: MeasureParam, progress: ProgressCallback, signal?: AbortSignal): Promise<Measurement>;
}

// ---------------------------------------------------------------------------------------------
// Helpers shared by connectors

/** Clock gives connectors the time and a way to wait, so tests can run windows quickly. */
export interface Clock {
  /** now is the current time in milliseconds since the epoch. */
  now(): number;
  /** sleep waits `ms` milliseconds; it rejects when `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** systemClock is the real time. */
export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) => delay(ms, undefined, signal === undefined ? undefined : { signal }),
};

/** cancelledError is the ServoError a connector throws when its command is cancelled. */
export function cancelledError(what: string, signal?: AbortSignal): ServoError {
  const why = signal?.reason instanceof Error ? `: ${signal.reason.message}` : "";
  return new ServoError("cancelled", `${what} was cancelled${why}`, {
    status: "cancelled",
    cause: signal?.reason,
  });
}

/** throwIfCancelled throws cancelledError when `signal` has aborted. */
export function throwIfCancelled(what: string, signal?: AbortSignal): void {
  if (signal?.aborted) throw cancelledError(what, signal);
}

/** WaitOptions configures waitWithProgress. */
export interface WaitOptions {
  clock: Clock;
  progress: ProgressCallback;
  signal?: AbortSignal | undefined;
  /** intervalMs between progress reports. @default 5000 */
  intervalMs?: number;
  /** upTo is the percentage reported when the wait is over. @default 100 */
  upTo?: number;
  /** message accompanies every progress report. */
  message?: string;
  /** what names the waiting command in a cancellation error. @default "measurement" */
  what?: string;
}

/**
 * waitWithProgress waits `totalMs`, reporting progress from 0 to `upTo` percent every
 * `intervalMs`, and throws cancelledError as soon as `signal` aborts.
 */
export async function waitWithProgress(totalMs: number, options: WaitOptions): Promise<void> {
  const { clock, progress, signal } = options;
  const interval = Math.max(1, options.intervalMs ?? 5000);
  const upTo = options.upTo ?? 100;
  const what = options.what ?? "measurement";
  const start = clock.now();
  throwIfCancelled(what, signal);
  progress(0, options.message);
  for (;;) {
    const elapsed = clock.now() - start;
    if (elapsed >= totalMs) break;
    try {
      await clock.sleep(Math.min(interval, totalMs - elapsed), signal);
    } catch (err) {
      if (signal?.aborted) throw cancelledError(what, signal);
      throw err;
    }
    throwIfCancelled(what, signal);
    progress(Math.min(upTo, (upTo * (clock.now() - start)) / Math.max(totalMs, 1)), options.message);
  }
}

/**
 * requestedMetrics returns the metric names a MEASURE asks for, in the order asked, or every
 * known metric when it asks for none. It throws ServoError `unknown-metric` naming the metrics
 * the connector cannot measure and the ones it can.
 */
export function requestedMetrics(connector: string, param: MeasureParam, known: readonly string[]): string[] {
  const asked = Object.keys(param.metrics);
  if (asked.length === 0) return [...known];
  const unknown = asked.filter((m) => !known.includes(m));
  if (unknown.length > 0) {
    const list = (names: readonly string[]) => names.map((n) => JSON.stringify(n)).join(", ");
    throw new ServoError(
      "unknown-metric",
      `${connector} cannot measure ${list(unknown)}; it measures ${list(known) || "nothing"}`,
    );
  }
  return asked;
}
