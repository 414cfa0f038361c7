// The Prometheus measure connector against a real Prometheus (no cluster needed): the test serves
// a metrics endpoint on 127.0.0.1, Prometheus scrapes it every second, and the connector queries
// Prometheus over a real measurement window.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { PrometheusConnector } from "../../src/servo/connectors/prometheus.js";
import type { PrometheusMeasureConfig, PrometheusMetric } from "../../src/servo/config.js";
import {
  measureParamSchema,
  measurementParamSchema,
  measurementReply,
  ServoError,
  type TimeSeries,
} from "../../src/servo/protocol.js";
import {
  prometheusBinary,
  serveMetrics,
  SKIP_NO_PROMETHEUS,
  startPrometheus,
  waitForSamples,
  type MetricsEndpoint,
  type TestPrometheus,
} from "./support/prometheus.js";

const startedAt = Date.now();
let depth = 0;

// Two counters growing at 10/s and 5/s, a constant gauge, and a gauge that grows by one per scrape
// (so its last and max exceed its average).
function render(): string {
  const seconds = (Date.now() - startedAt) / 1000;
  depth++;
  return [
    "# TYPE demo_requests_total counter",
    `demo_requests_total{path="/a"} ${(10 * seconds).toFixed(3)}`,
    `demo_requests_total{path="/b"} ${(5 * seconds).toFixed(3)}`,
    "# TYPE demo_temperature_celsius gauge",
    "demo_temperature_celsius 42",
    "# TYPE demo_queue_depth gauge",
    `demo_queue_depth ${depth}`,
    "",
  ].join("\n");
}

function metric(query: string, extra: Partial<PrometheusMetric> = {}): PrometheusMetric {
  return { query, unit: "", stepSeconds: 1, ...extra };
}

function param(metrics: string[], control: Record<string, number>) {
  return measureParamSchema.parse({ metrics, control });
}

describe("Prometheus measure connector", { skip: prometheusBinary() ? false : SKIP_NO_PROMETHEUS }, () => {
  let endpoint: MetricsEndpoint;
  let prometheus: TestPrometheus;

  before(async () => {
    endpoint = await serveMetrics(render);
    prometheus = await startPrometheus({ targets: [endpoint.target], scrapeIntervalSeconds: 1 });
    await waitForSamples(prometheus, "count_over_time(demo_temperature_celsius[1m])", 4);
  });

  after(async () => {
    await prometheus?.stop();
    await endpoint?.close();
  });

  function connector(metrics: Record<string, PrometheusMetric>): PrometheusConnector {
    const config: PrometheusMeasureConfig = {
      connector: "prometheus",
      baseUrl: prometheus.url,
      timeoutSeconds: 10,
      metrics,
    };
    return new PrometheusConnector(config, { progressIntervalMs: 1000 });
  }

  test("Verifies that scalars and time series are read over the window, in servo-prom's shape", async () => {
    const prom = connector({
      throughput: metric("sum(rate(demo_requests_total[3s]))", { unit: "rps", reduce: "avg" }),
      temperature: metric("demo_temperature_celsius", { reduce: "last" }),
      depth_last: metric("demo_queue_depth", { reduce: "last" }),
      depth_max: metric("demo_queue_depth", { reduce: "max" }),
      depth_avg: metric("demo_queue_depth", { reduce: "avg" }),
      by_path: metric("rate(demo_requests_total[3s])", { unit: "rps" }),
    });
    const progress: number[] = [];
    const before = Date.now() / 1000;
    const measurement = await prom.measure(param([], { warmup: 1, duration: 3, delay: 1 }), (p) =>
      progress.push(p),
    );
    const took = Date.now() / 1000 - before;
    assert.ok(took >= 5, `the connector waited warmup + duration + delay (took ${took}s)`);

    const value = (name: string) => (measurement.metrics[name] as { value: number }).value;
    assert.ok(
      Math.abs(value("throughput") - 15) < 3,
      `throughput ${value("throughput")} is about 10 + 5 per second`,
    );
    assert.equal(measurement.metrics.throughput?.unit, "rps");
    assert.equal(measurement.metrics.throughput?.annotation, "sum(rate(demo_requests_total[3s]))");
    assert.equal(value("temperature"), 42);
    assert.equal(value("depth_last"), value("depth_max"));
    assert.ok(value("depth_avg") < value("depth_max"), "a growing gauge averages below its last value");

    const series = (measurement.metrics.by_path as { values: TimeSeries[] }).values;
    assert.deepEqual(series.map((s) => s.id).sort(), [
      `instance:${endpoint.target}   job:test   path:/a`,
      `instance:${endpoint.target}   job:test   path:/b`,
    ]);
    const windowStart = before + 1;
    for (const s of series) {
      assert.ok(s.data.length >= 3 && s.data.length <= 5, `${s.data.length} points at step 1 over 3 s`);
      for (const [ts, v] of s.data) {
        assert.ok(ts >= windowStart - 1 && ts <= windowStart + 4, `point at ${ts} lies in the window`);
        assert.equal(typeof v, "number");
      }
    }
    const a = series.find((s) => s.id.endsWith("path:/a"));
    const lastA = a?.data[a.data.length - 1]?.[1] as number;
    assert.ok(Math.abs(lastA - 10) < 2, `path /a rate ${lastA} is about 10 per second`);

    assert.match(measurement.annotations.window ?? "", /^\d{4}-.*Z\/\d{4}-.*Z$/);
    assert.equal(measurement.annotations.prometheus, prometheus.url);
    assert.equal(progress[0], 0);
    assert.equal(progress[progress.length - 1], 100);
    assert.ok(
      progress.every((p, i) => i === 0 || p >= (progress[i - 1] as number)),
      `progress rises: ${progress.join(", ")}`,
    );
    // The result is a valid MEASUREMENT on the wire.
    const reply = measurementParamSchema.parse(
      measurementReply(measurement.metrics, measurement.annotations),
    );
    assert.equal(Object.keys(reply.metrics ?? {}).length, 6);
  });

  test("Verifies that a bad query, an empty result and a reduce over several series fail clearly", async () => {
    const prom = connector({
      broken: metric("sum(rate(demo_requests_total[3s])"),
      missing: metric("demo_no_such_metric", { reduce: "avg" }),
      several: metric("rate(demo_requests_total[3s])", { reduce: "avg" }),
    });
    const control = { warmup: 0, duration: 1, delay: 0 };
    await assert.rejects(
      prom.measure(param(["broken"], control), () => {}),
      (err: unknown) => {
        assert.ok(err instanceof ServoError);
        assert.equal(err.reason, "measure-failed");
        assert.match(
          err.message,
          /^metric "broken": Prometheus at http:\/\/127\.0\.0\.1:\d+ rejected the query \(HTTP 400, bad_data: .*parse error/,
        );
        return true;
      },
    );
    await assert.rejects(
      prom.measure(param(["missing"], control), () => {}),
      (err: unknown) => {
        assert.ok(err instanceof ServoError);
        assert.equal(err.reason, "no-data");
        assert.match(
          err.message,
          /^metric "missing": the query returned no data between .*Z and .*Z: demo_no_such_metric$/,
        );
        return true;
      },
    );
    await assert.rejects(
      prom.measure(param(["several"], control), () => {}),
      (err: unknown) => {
        assert.ok(err instanceof ServoError);
        assert.match(
          err.message,
          /reduce avg needs one series, but the query returned 2 \(".*path:\/a", ".*path:\/b"\); aggregate it/,
        );
        return true;
      },
    );
  });

  test("Verifies that cancelling stops the wait at once", async () => {
    const prom = connector({ temperature: metric("demo_temperature_celsius", { reduce: "last" }) });
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error("optimizer cancelled the command")), 200);
    const start = Date.now();
    await assert.rejects(
      prom.measure(param([], { warmup: 0, duration: 60, delay: 0 }), () => {}, controller.signal),
      (err: unknown) => {
        assert.ok(err instanceof ServoError);
        assert.equal(err.status, "cancelled");
        assert.match(err.message, /measurement was cancelled: optimizer cancelled the command/);
        return true;
      },
    );
    assert.ok(Date.now() - start < 2000, "cancel did not wait for the window");
  });
});
