import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { PrometheusMeasureConfig, PrometheusMetric } from "../config.js";
import { measureParamSchema, ServoError } from "../protocol.js";
import { PrometheusConnector, sampleValue, seriesId, toReading, type PromSeries } from "./prometheus.js";
import type { Clock } from "./types.js";

const T0 = 1234567890; // a fixed start, in unix seconds
const WINDOW = { start: T0, end: T0 + 60 };

function metric(extra: Partial<PrometheusMetric> = {}): PrometheusMetric {
  return { query: "up", unit: "rps", stepSeconds: 15, ...extra };
}

function series(labels: Record<string, string>, values: string[]): PromSeries {
  return { metric: labels, values: values.map((v, i): [number, string] => [T0 + 15 * i, v]) };
}

test("Verifies that series ids are the labels sorted, k:v, joined by three spaces", () => {
  assert.equal(
    seriesId({ path: "/a", job: "web", instance: "10.0.0.1:80" }),
    "instance:10.0.0.1:80   job:web   path:/a",
  );
  assert.equal(seriesId({}), "");
});

test("Verifies that samples are read as numbers and non-finite ones as null", () => {
  assert.equal(sampleValue("1.5"), 1.5);
  assert.equal(sampleValue("1e3"), 1000);
  assert.equal(sampleValue("NaN"), null);
  assert.equal(sampleValue("+Inf"), null);
  assert.equal(sampleValue("-Inf"), null);
});

test("Verifies that reduce last, avg and max skip non-finite points", () => {
  const s = [series({}, ["1", "NaN", "5", "3"])];
  assert.deepEqual(toReading("m", metric({ reduce: "last" }), s, WINDOW), {
    value: 3,
    unit: "rps",
    annotation: "up",
  });
  assert.equal((toReading("m", metric({ reduce: "avg" }), s, WINDOW) as { value: number }).value, 3);
  assert.equal((toReading("m", metric({ reduce: "max" }), s, WINDOW) as { value: number }).value, 5);
});

test("Verifies that an unreduced metric keeps every series and point, NaN as null", () => {
  const reading = toReading(
    "m",
    metric(),
    [series({ code: "200" }, ["1", "NaN"]), series({ code: "500" }, ["2"])],
    WINDOW,
  );
  assert.deepEqual(reading, {
    values: [
      {
        id: "code:200",
        data: [
          [T0, 1],
          [T0 + 15, null],
        ],
      },
      { id: "code:500", data: [[T0, 2]] },
    ],
    unit: "rps",
    annotation: "up",
  });
});

test("Verifies that empty and all-NaN results are no-data errors naming the window and query", () => {
  for (const [s, what] of [
    [[], "no data"],
    [[series({}, ["NaN"])], "no finite values"],
  ] as const) {
    assert.throws(
      () => toReading("lat", metric({ reduce: "avg" }), s, WINDOW),
      (err: unknown) =>
        err instanceof ServoError &&
        err.reason === "no-data" &&
        err.message ===
          `metric "lat": the query returned ${what} between 2009-02-13T23:31:30.000Z and 2009-02-13T23:32:30.000Z: up`,
    );
  }
});

/** fakeClock advances only when slept on. */
function fakeClock(): Clock {
  let now = T0 * 1000;
  return {
    now: () => now,
    sleep: async (ms) => {
      now += ms;
    },
  };
}

type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => void;

async function withServer(handler: Handler, run: (url: string) => Promise<void>): Promise<void> {
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => handler(req, body, res));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    await run(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

function connector(baseUrl: string, metrics: Record<string, PrometheusMetric>, timeoutSeconds = 5) {
  const config: PrometheusMeasureConfig = { connector: "prometheus", baseUrl, timeoutSeconds, metrics };
  return new PrometheusConnector(config, { clock: fakeClock() });
}

const param = (metrics: string[] = []) =>
  measureParamSchema.parse({ metrics, control: { warmup: 30, duration: 120, delay: 10 } });

test("Verifies that the range query covers [start + warmup, start + warmup + duration] with the metric's step", async () => {
  const requests: URLSearchParams[] = [];
  await withServer(
    (req, body, res) => {
      assert.equal(req.url, "/prom/api/v1/query_range");
      requests.push(new URLSearchParams(body));
      res.end(
        JSON.stringify({ status: "success", data: { resultType: "matrix", result: [series({}, ["7"])] } }),
      );
    },
    async (url) => {
      const prom = connector(`${url}/prom`, {
        a: metric({ reduce: "last" }),
        b: metric({ query: "sum(x)", stepSeconds: 5, reduce: "max" }),
      });
      const m = await prom.measure(param(["b"]), () => {});
      assert.deepEqual(Object.keys(m.metrics), ["b"]);
      assert.equal(m.annotations.window, "2009-02-13T23:32:00.000Z/2009-02-13T23:34:00.000Z");
    },
  );
  assert.equal(requests.length, 1);
  assert.deepEqual(Object.fromEntries(requests[0] ?? []), {
    query: "sum(x)",
    start: `${T0 + 30}.000`,
    end: `${T0 + 150}.000`,
    step: "5",
  });
});

test("Verifies that transport failures name the metric, the server and the cause", async () => {
  await withServer(
    (_req, _body, res) => res.writeHead(502).end("<html>bad gateway</html>"),
    async (url) => {
      await assert.rejects(
        connector(url, { a: metric() }).measure(param(), () => {}),
        (err: unknown) => {
          assert.ok(err instanceof ServoError);
          assert.equal(err.reason, "measure-failed");
          assert.equal(
            err.message,
            `metric "a": Prometheus at ${url} answered HTTP 502 with a body that is not JSON: <html>bad gateway</html>`,
          );
          return true;
        },
      );
    },
  );
  await withServer(
    (_req, _body, res) =>
      res.end(JSON.stringify({ status: "success", data: { resultType: "vector", result: [] } })),
    async (url) => {
      await assert.rejects(
        connector(url, { a: metric() }).measure(param(), () => {}),
        /answered with a vector result, not a matrix/,
      );
    },
  );
  await withServer(
    () => {}, // never answers
    async (url) => {
      await assert.rejects(
        connector(url, { a: metric() }, 0.2).measure(param(), () => {}),
        /Prometheus at .* did not answer within 0.2s/,
      );
    },
  );
  // A port nobody listens on: take one from a server that has closed.
  let closed = "";
  await withServer(
    () => {},
    async (url) => {
      closed = url;
    },
  );
  await assert.rejects(
    connector(closed, { a: metric() }).measure(param(), () => {}),
    (err: unknown) => {
      assert.ok(err instanceof ServoError);
      assert.match(
        err.message,
        /^metric "a": Prometheus at http:\/\/127\.0\.0\.1:\d+ could not be reached: ECONNREFUSED/,
      );
      return true;
    },
  );
});

test("Verifies that asking for a metric that is not configured is refused before waiting", async () => {
  const prom = connector("http://127.0.0.1:9", { throughput: metric() });
  await assert.rejects(
    prom.measure(param(["latency"]), () => {}),
    (err: unknown) => {
      assert.ok(err instanceof ServoError);
      assert.equal(err.reason, "unknown-metric");
      assert.equal(err.message, 'prometheus cannot measure "latency"; it measures "throughput"');
      return true;
    },
  );
  assert.deepEqual(prom.describeMetrics(), { throughput: { unit: "rps" } });
});
