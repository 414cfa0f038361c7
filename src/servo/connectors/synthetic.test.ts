import { test } from "node:test";
import assert from "node:assert/strict";
import {
  loadServoConfig,
  type RangeEnvSetting,
  type RangeSpec,
  type SyntheticMeasureConfig,
} from "../config.js";
import { measureParamSchema, measurementParamSchema, measurementReply, ServoError } from "../protocol.js";
import {
  capacityRps,
  expectedPerformance,
  gaussian,
  SyntheticWorkload,
  type WorkloadSettings,
} from "./synthetic.js";
import type { Clock } from "./types.js";

const CONFIG: SyntheticMeasureConfig = {
  connector: "synthetic",
  seed: 7,
  noise: 0.03,
  loadRps: 300,
  delayEnv: "COMMIT_DELAY",
  timeScale: 0,
};

function grid(r: RangeSpec): number[] {
  const n = Math.round((r.max - r.min) / r.step);
  return Array.from({ length: n + 1 }, (_, i) => Number((r.min + i * r.step).toFixed(6)));
}

function measureParam(metrics: string[] = [], control: Record<string, number> = { duration: 60 }) {
  return measureParamSchema.parse({ metrics, control });
}

/** fakeClock advances only when slept on, so windows take no real time. */
function fakeClock(): Clock & { slept: number[] } {
  let now = Date.UTC(2009, 1, 13, 23, 31, 30);
  const slept: number[] = [];
  return {
    slept,
    now: () => now,
    sleep: async (ms, signal) => {
      if (signal?.aborted) throw signal.reason;
      slept.push(ms);
      now += ms;
    },
  };
}

const settings = (cpu: number, mem: number, delay?: string): WorkloadSettings => ({
  cpu,
  mem,
  env: delay === undefined ? {} : { COMMIT_DELAY: delay },
});

test("Verifies that the documented optimum is the cheapest setting meeting the SLO over the seed's grid", () => {
  const seed = loadServoConfig("test/fixtures/servo/seed.yaml");
  const { cpu, mem } = seed.main.component.settings;
  const delay = seed.main.component.env.COMMIT_DELAY as RangeEnvSetting;
  assert.ok(cpu && mem);
  type Candidate = { cpu: number; mem: number; d: number; cost: number; p90: number };
  let best: Candidate | undefined;
  let bestAtDefault: Candidate | undefined;
  const better = (a: Candidate, b?: Candidate) =>
    !b || a.cost < b.cost - 1e-9 || (Math.abs(a.cost - b.cost) <= 1e-9 && a.p90 < b.p90);
  for (const c of grid(cpu))
    for (const m of grid(mem))
      for (const d of grid(delay)) {
        const p = expectedPerformance(c, m, d, CONFIG);
        if (p.latency_p90 > 50 || p.error_rate > 0.5) continue;
        const candidate = { cpu: c, mem: m, d, cost: c + 0.25 * m, p90: p.latency_p90 };
        if (better(candidate, best)) best = candidate;
        if (d === delay.default && better(candidate, bestAtDefault)) bestAtDefault = candidate;
      }
  assert.ok(best && bestAtDefault);
  assert.deepEqual(
    { cpu: best.cpu, mem: best.mem, d: best.d, cost: best.cost },
    { cpu: 0.75, mem: 0.75, d: 50, cost: 0.9375 },
  );
  assert.ok(Math.abs(best.p90 - 48.6) < 0.05, `p90 at the optimum is ${best.p90}`);
  assert.equal(bestAtDefault.cost, 1.0625);
  assert.equal(bestAtDefault.cpu, 0.875);
});

test("Verifies that capacity grows with cpu, memory and commit delay", () => {
  for (const [a, b] of [
    [capacityRps(0.5, 1, 20), capacityRps(1, 1, 20)],
    [capacityRps(1, 0.25, 20), capacityRps(1, 0.5, 20)],
    [capacityRps(1, 0.5, 20), capacityRps(1, 1, 20)],
    [capacityRps(1, 1, 0), capacityRps(1, 1, 20)],
    [capacityRps(1, 1, 20), capacityRps(1, 1, 100)],
  ] as const) {
    assert.ok(a < b, `${a} should be below ${b}`);
  }
  // Memory above the working set helps little: at most 20 %.
  assert.ok(capacityRps(1, 100, 20) / capacityRps(1, 0.5, 20) <= 1.2 + 1e-9);
});

test("Verifies the latency trade-offs: more cpu lowers latency, a long commit delay raises it", () => {
  const low = expectedPerformance(1, 1, 20, CONFIG);
  const high = expectedPerformance(2, 1, 20, CONFIG);
  assert.ok(high.latency_p90 < low.latency_p90);
  assert.ok(low.latency_p50 < low.latency_p90);
  // With capacity to spare, the commit delay dominates latency.
  assert.ok(
    expectedPerformance(2, 2, 100, CONFIG).latency_p90 > expectedPerformance(2, 2, 20, CONFIG).latency_p90,
  );
  assert.equal(high.throughput, 300);
  assert.equal(high.error_rate, 0);
});

test("Verifies that too little cpu sheds load and too little memory fails requests", () => {
  const starved = expectedPerformance(0.125, 1, 20, CONFIG);
  assert.ok(starved.throughput < 300);
  assert.ok(Math.abs(starved.error_rate - (100 * (300 - starved.throughput)) / 300) < 1e-9);
  const paging = expectedPerformance(2, 0.25, 20, CONFIG);
  assert.ok(paging.error_rate >= 25, `error rate with 0.25 GiB is ${paging.error_rate}`);
  const none = expectedPerformance(0, 1, 20, CONFIG);
  assert.equal(none.throughput, 0);
  assert.equal(none.error_rate, 100);
  assert.equal(none.latency_p90, Number.POSITIVE_INFINITY);
});

test("Verifies that measurements read the current settings each time and come in the protocol's shape", async () => {
  let current = settings(1, 1, "20");
  const workload = new SyntheticWorkload({ ...CONFIG, noise: 0 }, async () => current);
  const first = await workload.measure(measureParam(["throughput", "latency_p90"]), () => {});
  assert.deepEqual(Object.keys(first.metrics), ["throughput", "latency_p90"]);
  const truth = expectedPerformance(1, 1, 20, CONFIG);
  assert.deepEqual(first.metrics.throughput, { value: 300, unit: "rps" });
  assert.deepEqual(first.metrics.latency_p90, {
    value: Number(truth.latency_p90.toPrecision(6)),
    unit: "ms",
  });
  assert.match(first.annotations.simulation ?? "", /not a real measurement/);
  const reply = measurementParamSchema.parse(measurementReply(first.metrics, first.annotations));
  assert.equal(reply.status, "ok");

  current = settings(2, 1, "20");
  const second = await workload.measure(measureParam(["latency_p90"]), () => {});
  assert.ok(
    (second.metrics.latency_p90 as { value: number }).value <
      (first.metrics.latency_p90 as { value: number }).value,
  );

  const all = await workload.measure(measureParam(), () => {});
  assert.deepEqual(Object.keys(all.metrics).sort(), [
    "error_rate",
    "latency_p50",
    "latency_p90",
    "throughput",
  ]);
});

test("Verifies that the noise is seeded: same seed same readings, other seed other readings", async () => {
  const run = async (seed: number) => {
    const workload = new SyntheticWorkload({ ...CONFIG, seed }, async () => settings(1, 1, "20"));
    const values: number[] = [];
    for (let i = 0; i < 5; i++) {
      const m = await workload.measure(measureParam(["latency_p90"]), () => {});
      values.push((m.metrics.latency_p90 as { value: number }).value);
    }
    return values;
  };
  const a = await run(7);
  assert.deepEqual(await run(7), a);
  assert.notDeepEqual(await run(8), a);
  assert.equal(new Set(a).size, 5, "successive measurements differ");
});

test("Verifies that the noise has the configured relative spread around the model", () => {
  const next = gaussian(12345);
  const samples = Array.from({ length: 20000 }, next);
  const mean = samples.reduce((s, x) => s + x, 0) / samples.length;
  const sd = Math.sqrt(samples.reduce((s, x) => s + (x - mean) ** 2, 0) / samples.length);
  assert.ok(Math.abs(mean) < 0.03, `mean ${mean}`);
  assert.ok(Math.abs(sd - 1) < 0.03, `sd ${sd}`);
});

test("Verifies that a missing commit delay means none and a malformed one is an error", async () => {
  const missing = new SyntheticWorkload({ ...CONFIG, noise: 0 }, async () => settings(1, 1));
  const m = await missing.measure(measureParam(["throughput"]), () => {});
  assert.match(m.annotations.settings ?? "", /COMMIT_DELAY=0/);
  const bad = new SyntheticWorkload(CONFIG, async () => settings(1, 1, "fast"));
  await assert.rejects(
    bad.measure(measureParam(), () => {}),
    (err: unknown) => {
      assert.ok(err instanceof ServoError);
      assert.equal(err.reason, "measure-failed");
      assert.match(err.message, /COMMIT_DELAY="fast" is not a delay in ms/);
      return true;
    },
  );
});

test("Verifies that an unknown metric is refused, naming what can be measured", async () => {
  const workload = new SyntheticWorkload(CONFIG, async () => settings(1, 1, "20"));
  await assert.rejects(
    workload.measure(measureParam(["throughput", "cost"]), () => {}),
    (err: unknown) => {
      assert.ok(err instanceof ServoError);
      assert.equal(err.reason, "unknown-metric");
      assert.match(err.message, /synthetic cannot measure "cost"; it measures "throughput", "latency_p50"/);
      return true;
    },
  );
});

test("Verifies that time_scale waits that share of the window with progress, and cancel stops it", async () => {
  const clock = fakeClock();
  const workload = new SyntheticWorkload({ ...CONFIG, timeScale: 0.5 }, async () => settings(1, 1, "20"), {
    clock,
    progressIntervalMs: 10_000,
  });
  const seen: number[] = [];
  await workload.measure(measureParam([], { warmup: 10, duration: 60, delay: 10 }), (p) => seen.push(p));
  assert.equal(
    clock.slept.reduce((a, b) => a + b, 0),
    40_000,
  );
  assert.deepEqual(seen, [0, 24.75, 49.5, 74.25, 99, 100]);

  const controller = new AbortController();
  controller.abort(new Error("optimizer said cancel"));
  await assert.rejects(
    workload.measure(measureParam(), () => {}, controller.signal),
    (err: unknown) =>
      err instanceof ServoError && err.status === "cancelled" && /optimizer said cancel/.test(err.message),
  );
});
