/**
 * Package prometheus is the Prometheus measure connector, after servo-prom: it waits out the
 * measurement (warmup + duration + delay, so the last scrapes land), then runs one PromQL range
 * query per metric over [start + warmup, start + warmup + duration] with the metric's step.
 *
 * A metric with `reduce` (last, avg, max) is reported as a scalar and its query must return
 * exactly one series; one without is reported as time series in servo-prom's shape, each series
 * identified by its labels sorted and written `k:v`, joined by three spaces.
 */
import { ServoError, type MeasureParam, type MetricDescriptor, type TimeSeries } from "../protocol.js";
import type { PrometheusMeasureConfig, PrometheusMetric } from "../config.js";
import {
  cancelledError,
  requestedMetrics,
  systemClock,
  waitWithProgress,
  type Clock,
  type MeasureConnector,
  type Measurement,
  type MetricReading,
  type ProgressCallback,
} from "./types.js";

/** PromSeries is one series of a range query's matrix result. */
export interface PromSeries {
  metric: Record<string, string>;
  values: [number, string][];
}

/** PrometheusConnectorOptions are for tests and embedding. */
export interface PrometheusConnectorOptions {
  /** clock, @default systemClock */
  clock?: Clock;
  /** progressIntervalMs between progress reports while waiting. @default 5000 */
  progressIntervalMs?: number;
}

/** MeasureWindow is the time range a measurement covers, in unix seconds. */
export interface MeasureWindow {
  start: number;
  end: number;
}

// The HTTP API refuses range queries of more than 11,000 points per series.
const MAX_POINTS = 11000;
// The wait takes the progress to here; the queries take it the rest of the way.
const WAIT_SHARE = 90;

/** PrometheusConnector measures PromQL metrics from one Prometheus server. */
export class PrometheusConnector implements MeasureConnector {
  readonly name = "prometheus";
  private readonly clock: Clock;
  private readonly progressIntervalMs: number;

  constructor(
    private readonly config: PrometheusMeasureConfig,
    options: PrometheusConnectorOptions = {},
  ) {
    this.clock = options.clock ?? systemClock;
    this.progressIntervalMs = options.progressIntervalMs ?? 5000;
  }

  describeMetrics(): Record<string, MetricDescriptor> {
    return Object.fromEntries(
      Object.entries(this.config.metrics).map(([name, m]) => [name, { unit: m.unit }]),
    );
  }

  async measure(param: MeasureParam, progress: ProgressCallback, signal?: AbortSignal): Promise<Measurement> {
    const names = requestedMetrics(this.name, param, Object.keys(this.config.metrics));
    const { warmup, duration, delay } = param.control;
    const startedAt = this.clock.now() / 1000;
    await waitWithProgress((warmup + duration + delay) * 1000, {
      clock: this.clock,
      progress,
      signal,
      intervalMs: this.progressIntervalMs,
      upTo: WAIT_SHARE,
      message: `measuring ${names.join(", ")} for ${duration}s`,
    });
    const window = { start: startedAt + warmup, end: startedAt + warmup + duration };
    const metrics: Record<string, MetricReading> = {};
    for (const [i, name] of names.entries()) {
      const metric = this.config.metrics[name] as PrometheusMetric;
      const series = await this.queryRange(name, metric, window, signal);
      metrics[name] = toReading(name, metric, series, window);
      progress(WAIT_SHARE + ((100 - WAIT_SHARE) * (i + 1)) / names.length, `queried ${name}`);
    }
    return {
      metrics,
      annotations: {
        prometheus: this.config.baseUrl,
        window: `${new Date(window.start * 1000).toISOString()}/${new Date(window.end * 1000).toISOString()}`,
      },
    };
  }

  /** queryRange runs one range query; errors name the metric, the server and what it said. */
  async queryRange(
    name: string,
    metric: PrometheusMetric,
    window: MeasureWindow,
    signal?: AbortSignal,
  ): Promise<PromSeries[]> {
    const step = Math.max(metric.stepSeconds, Math.ceil((window.end - window.start) / MAX_POINTS));
    const url = new URL(
      "api/v1/query_range",
      this.config.baseUrl.endsWith("/") ? this.config.baseUrl : `${this.config.baseUrl}/`,
    );
    const body = new URLSearchParams({
      query: metric.query,
      start: window.start.toFixed(3),
      end: window.end.toFixed(3),
      step: String(step),
    });
    const fail = (what: string, cause?: unknown) =>
      new ServoError("measure-failed", `metric "${name}": Prometheus at ${this.config.baseUrl} ${what}`, {
        cause,
      });
    const { status, text } = await this.post(url, body, fail, signal);
    return readMatrix(status, text, metric.query, fail);
  }

  /** post sends one form POST and reads the body, under the configured timeout. */
  private async post(
    url: URL,
    body: URLSearchParams,
    fail: Fail,
    signal?: AbortSignal,
  ): Promise<{ status: number; text: string }> {
    const timeout = AbortSignal.timeout(this.config.timeoutSeconds * 1000);
    try {
      const response = await fetch(url, {
        method: "POST",
        body,
        signal: signal === undefined ? timeout : AbortSignal.any([signal, timeout]),
      });
      return { status: response.status, text: await response.text() };
    } catch (err) {
      if (signal?.aborted) throw cancelledError("measurement", signal);
      if (timeout.aborted) throw fail(`did not answer within ${this.config.timeoutSeconds}s`, err);
      throw fail(`could not be reached: ${describeFetchError(err)}`, err);
    }
  }
}

type Fail = (what: string, cause?: unknown) => ServoError;

/** readMatrix reads a query_range answer, turning Prometheus's own errors into messages. */
function readMatrix(status: number, text: string, query: string, fail: Fail): PromSeries[] {
  let payload: PromResponse;
  try {
    payload = JSON.parse(text) as PromResponse;
  } catch (err) {
    throw fail(`answered HTTP ${status} with a body that is not JSON: ${text.slice(0, 200)}`, err);
  }
  if (payload.status !== "success") {
    const kind = payload.errorType ? `${payload.errorType}: ` : "";
    throw fail(`rejected the query (HTTP ${status}, ${kind}${payload.error ?? "no message"}): ${query}`);
  }
  if (payload.data?.resultType !== "matrix" || !Array.isArray(payload.data.result)) {
    throw fail(`answered with a ${payload.data?.resultType ?? "missing"} result, not a matrix`);
  }
  return payload.data.result as PromSeries[];
}

interface PromResponse {
  status?: string;
  errorType?: string;
  error?: string;
  data?: { resultType?: string; result?: unknown };
}

function describeFetchError(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  if (cause?.code || cause?.message) return [cause.code, cause.message].filter(Boolean).join(" ");
  return err instanceof Error ? err.message : String(err);
}

/** seriesId names a series as servo-prom did: its labels sorted, `k:v`, joined by three spaces. */
export function seriesId(labels: Record<string, string>): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}:${labels[k]}`)
    .join("   ");
}

/** sampleValue reads a sample as Prometheus writes it ("1.5", "NaN", "+Inf"); null when not finite. */
export function sampleValue(text: string): number | null {
  const n = Number(text);
  return Number.isFinite(n) ? n : null;
}

/**
 * toReading turns a query's series into a metric reading: time series when the metric has no
 * `reduce`, else one number. It throws ServoError `no-data` when there is nothing to report, and
 * `measure-failed` when a reduced metric's query returned several series.
 */
export function toReading(
  name: string,
  metric: PrometheusMetric,
  series: readonly PromSeries[],
  window: MeasureWindow,
): MetricReading {
  const span = `${new Date(window.start * 1000).toISOString()} and ${new Date(window.end * 1000).toISOString()}`;
  if (series.length === 0) {
    throw new ServoError(
      "no-data",
      `metric "${name}": the query returned no data between ${span}: ${metric.query}`,
    );
  }
  if (metric.reduce === undefined) {
    const values: TimeSeries[] = series.map((s) => ({
      id: seriesId(s.metric),
      data: s.values.map(([ts, v]): [number, number | null] => [ts, sampleValue(v)]),
    }));
    return { values, unit: metric.unit, annotation: metric.query };
  }
  if (series.length > 1) {
    throw new ServoError(
      "measure-failed",
      `metric "${name}": reduce ${metric.reduce} needs one series, but the query returned ${series.length} (${series
        .slice(0, 3)
        .map((s) => JSON.stringify(seriesId(s.metric)))
        .join(
          ", ",
        )}${series.length > 3 ? ", ..." : ""}); aggregate it, e.g. sum(...), or leave out reduce: ${metric.query}`,
    );
  }
  const points = (series[0] as PromSeries).values
    .map(([, v]) => sampleValue(v))
    .filter((v): v is number => v !== null);
  if (points.length === 0) {
    throw new ServoError(
      "no-data",
      `metric "${name}": the query returned no finite values between ${span}: ${metric.query}`,
    );
  }
  return { value: reduce(metric.reduce, points), unit: metric.unit, annotation: metric.query };
}

function reduce(how: NonNullable<PrometheusMetric["reduce"]>, points: readonly number[]): number {
  switch (how) {
    case "last":
      return points[points.length - 1] as number;
    case "max":
      return Math.max(...points);
    case "avg":
      return points.reduce((a, b) => a + b, 0) / points.length;
  }
}
