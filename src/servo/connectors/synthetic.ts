/**
 * Package synthetic is a SIMULATED workload, for the demo and the benchmark only: it measures
 * nothing real. It turns the tuning pod's actual settings (cpu, mem and the commit-delay env var,
 * read from the cluster by the caller) into throughput, latency and error readings with a
 * documented formula and seeded noise, so an optimizer can be run and scored offline against a
 * known optimum.
 *
 * The model is a single queue (M/M/1) serving an offered load of `loadRps` requests per second:
 *
 *   memFactor(mem)  = (mem / 0.5)^2                          for mem < 0.5 GiB (working set; paging)
 *                   = 1 + 0.2 * (1 - exp(-(mem - 0.5) / 0.5)) for mem >= 0.5 GiB (cache, saturating)
 *   batch(d)        = 1 + 2 * d / (d + 60)                    commit delay d ms batches commits
 *   capacity  mu    = 250 * cpu^0.9 * memFactor * batch       requests per second
 *   throughput      = min(loadRps, 0.98 * mu)                 the queue sheds what it cannot serve
 *   waiting 1/(mu - throughput) s is exponential, and a request also waits for its commit batch:
 *   latency_p50     = 1000 * ln 2  / (mu - throughput) + 0.25 * d   ms
 *   latency_p90     = 1000 * ln 10 / (mu - throughput) + 0.5 * d    ms
 *   error_rate      = 100 * (loadRps - throughput) / loadRps
 *                     + (mem < 0.5 ? 50 * (1 - mem / 0.5) : 0)   % (shed load, out-of-memory kills)
 *
 * Each reading is then multiplied by (1 + noise * N(0,1)), N drawn from a generator seeded with
 * `seed` and the measurement's sequence number, so a run is reproducible.
 *
 * The optimum. More cpu, more memory and a longer commit delay all raise capacity, so "maximize
 * throughput" alone is not interesting; the demo's question is the cheapest setting that keeps
 * the latency objective. With the defaults (loadRps 300) over the seed's grid (cpu and mem 0.125
 * to 2 by 0.125, COMMIT_DELAY 1 to 100 by 1), minimizing cost = cpu + 0.25 * mem subject to
 * latency_p90 <= 50 ms and error_rate <= 0.5 %, ties broken by the lower latency_p90, gives
 * cpu 0.75, mem 0.75 GiB, COMMIT_DELAY 50 (cost 0.9375, latency_p90 48.6 ms, throughput 300 rps).
 * With the seed's default COMMIT_DELAY 20 the cheapest feasible setting costs 1.0625 (cpu 0.875);
 * both are checked by synthetic.test.ts.
 */
import { ServoError, type MeasureParam, type MetricDescriptor } from "../protocol.js";
import type { SyntheticMeasureConfig } from "../config.js";
import {
  requestedMetrics,
  systemClock,
  throwIfCancelled,
  waitWithProgress,
  type Clock,
  type MeasureConnector,
  type Measurement,
  type MetricReading,
  type ProgressCallback,
} from "./types.js";

/** WorkloadSettings are the tuning pod's settings as they are in the cluster. */
export interface WorkloadSettings {
  /** cpu in cores. */
  cpu: number;
  /** mem in GiB. */
  mem: number;
  /** env holds the container's environment variables. */
  env: Record<string, string | undefined>;
}

/** SettingsSource reads the tuning pod's current settings (the caller reads the cluster). */
export type SettingsSource = (signal?: AbortSignal) => Promise<WorkloadSettings>;

/** Performance is what the model predicts, before noise. */
export interface Performance {
  /** throughput in requests per second. */
  throughput: number;
  /** latency_p50 in milliseconds. */
  latency_p50: number;
  /** latency_p90 in milliseconds. */
  latency_p90: number;
  /** error_rate in percent. */
  error_rate: number;
}

/** SYNTHETIC_METRICS are the metrics the synthetic workload reports, with their units. */
export const SYNTHETIC_METRICS: Readonly<Record<keyof Performance, MetricDescriptor>> = {
  throughput: { unit: "rps" },
  latency_p50: { unit: "ms" },
  latency_p90: { unit: "ms" },
  error_rate: { unit: "%" },
};

/** SyntheticModel is the part of the configuration the formula uses. */
export type SyntheticModel = Pick<SyntheticMeasureConfig, "loadRps">;

// Constants of the formula in the package comment.
const RPS_PER_CORE = 250;
const CPU_EXPONENT = 0.9;
const WORKING_SET_GIB = 0.5;
const CACHE_GAIN = 0.2;
const BATCH_GAIN = 2;
const BATCH_HALF_MS = 60;
const MAX_UTILIZATION = 0.98;

/** capacityRps is the model's service capacity mu for the given settings. */
export function capacityRps(cpu: number, mem: number, commitDelayMs: number): number {
  const memFactor =
    mem < WORKING_SET_GIB
      ? (mem / WORKING_SET_GIB) ** 2
      : 1 + CACHE_GAIN * (1 - Math.exp(-(mem - WORKING_SET_GIB) / WORKING_SET_GIB));
  const d = Math.max(0, commitDelayMs);
  const batch = 1 + (BATCH_GAIN * d) / (d + BATCH_HALF_MS);
  return RPS_PER_CORE * Math.max(0, cpu) ** CPU_EXPONENT * memFactor * batch;
}

/**
 * expectedPerformance is the noise-free model: the readings a perfect measurement of the
 * simulated workload would give for these settings (formula in the package comment).
 */
export function expectedPerformance(
  cpu: number,
  mem: number,
  commitDelayMs: number,
  model: SyntheticModel,
): Performance {
  const d = Math.max(0, commitDelayMs);
  const mu = capacityRps(cpu, mem, d);
  const throughput = Math.min(model.loadRps, MAX_UTILIZATION * mu);
  const headroom = mu - throughput;
  // No capacity at all (cpu or mem 0): nothing is served and every request fails.
  const wait = headroom > 0 ? 1000 / headroom : Number.POSITIVE_INFINITY;
  const oom = mem < WORKING_SET_GIB ? 50 * (1 - mem / WORKING_SET_GIB) : 0;
  return {
    throughput,
    latency_p50: Math.LN2 * wait + 0.25 * d,
    latency_p90: Math.LN10 * wait + 0.5 * d,
    error_rate: Math.min(100, (100 * (model.loadRps - throughput)) / model.loadRps + oom),
  };
}

/** SyntheticWorkloadOptions are for tests and the benchmark. */
export interface SyntheticWorkloadOptions {
  /** clock, @default systemClock */
  clock?: Clock;
  /** progressIntervalMs between progress reports while waiting. @default 5000 */
  progressIntervalMs?: number;
}

/**
 * SyntheticWorkload is the SIMULATED measure connector. Each measure reads the current settings
 * from `readSettings`, optionally waits `timeScale` of the measurement window, and returns the
 * model's readings with seeded noise.
 */
export class SyntheticWorkload implements MeasureConnector {
  readonly name = "synthetic";
  private readonly clock: Clock;
  private readonly progressIntervalMs: number;
  private sequence = 0;

  constructor(
    private readonly config: SyntheticMeasureConfig,
    private readonly readSettings: SettingsSource,
    options: SyntheticWorkloadOptions = {},
  ) {
    this.clock = options.clock ?? systemClock;
    this.progressIntervalMs = options.progressIntervalMs ?? 5000;
  }

  describeMetrics(): Record<string, MetricDescriptor> {
    return Object.fromEntries(Object.entries(SYNTHETIC_METRICS).map(([k, v]) => [k, { ...v }]));
  }

  async measure(param: MeasureParam, progress: ProgressCallback, signal?: AbortSignal): Promise<Measurement> {
    const names = requestedMetrics(this.name, param, Object.keys(SYNTHETIC_METRICS));
    const { warmup, duration, delay } = param.control;
    await waitWithProgress((warmup + duration + delay) * 1000 * this.config.timeScale, {
      clock: this.clock,
      progress,
      signal,
      intervalMs: this.progressIntervalMs,
      upTo: 99,
      message: `simulating ${duration}s of load`,
    });
    const settings = await this.readSettings(signal);
    throwIfCancelled("measurement", signal);
    const commitDelay = commitDelayOf(settings, this.config.delayEnv);
    const truth = expectedPerformance(settings.cpu, settings.mem, commitDelay, this.config);
    const random = gaussian(mix(this.config.seed, this.sequence++));
    const metrics: Record<string, MetricReading> = {};
    for (const name of names as (keyof Performance)[]) {
      const noisy = truth[name] * (1 + this.config.noise * random());
      const value = name === "error_rate" ? Math.min(100, Math.max(0, noisy)) : Math.max(0, noisy);
      metrics[name] = { value: round(value), unit: SYNTHETIC_METRICS[name].unit ?? "" };
    }
    progress(100);
    return {
      metrics,
      annotations: {
        simulation: "synthetic workload model; not a real measurement",
        settings: `cpu=${settings.cpu} mem=${settings.mem}GiB ${this.config.delayEnv}=${commitDelay}`,
      },
    };
  }
}

/** commitDelayOf reads the commit delay (ms) from the env; a missing variable means no delay. */
function commitDelayOf(settings: WorkloadSettings, name: string): number {
  const raw = settings.env[name];
  if (raw === undefined || raw.trim() === "") return 0;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) {
    throw new ServoError(
      "measure-failed",
      `synthetic workload: ${name}=${JSON.stringify(raw)} is not a delay in ms`,
    );
  }
  return n;
}

// Readings are rounded so reports stay readable; 6 significant digits is far below the noise.
function round(n: number): number {
  return Number.isFinite(n) ? Number(n.toPrecision(6)) : n;
}

/** mix combines the seed and a sequence number into one 32-bit seed (a splitmix32 step). */
function mix(seed: number, sequence: number): number {
  let z = (Math.imul(seed | 0, 0x9e3779b9) + Math.imul(sequence + 1, 0x85ebca6b)) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
  z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
  return (z ^ (z >>> 15)) >>> 0;
}

/** gaussian returns a seeded standard normal generator (mulberry32 + Box-Muller). */
export function gaussian(seed: number): () => number {
  let state = seed >>> 0;
  const uniform = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return () => {
    const u = Math.max(uniform(), Number.EPSILON);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * uniform());
  };
}
