/**
 * Response surfaces for the optimizer benchmark. Each is a grid-constrained space written as a
 * servo descriptor (so the search sees exactly what a servo would describe) plus a model of how a
 * service responds to its settings. They are made up, but shaped like real tuning problems:
 * saturating throughput, memory cliffs, queueing latency near a limit, interacting env settings.
 */
import { expectedPerformance } from "../../src/servo/connectors/synthetic.js";
import { compileObjective, type ConstraintSpec } from "../../src/servo/optimizer/objective.js";
import { parseDescriptor, type Descriptor } from "../../src/servo/protocol.js";

/** Outcome is what a trial would really measure (noise is added by the runner). */
export interface Outcome {
  objective: number;
  feasible: boolean;
}

/**
 * Study is how a surface is measured when it reports metrics: the runner adds noise to each
 * metric and scores the noisy metrics with the CEL objective and constraints, as the optimizer
 * scores a servo's measurement (so feasibility is noisy too, and the search sees the constraint
 * metrics). Settings are seen as `components[component]` and `settings`.
 */
export interface Study {
  component: string;
  objective: string;
  constraints: ConstraintSpec[];
  metrics(values: Record<string, number | string>): Record<string, number>;
}

/** Surface is one benchmark problem. */
export interface Surface {
  name: string;
  summary: string;
  direction: "maximize" | "minimize";
  descriptor: Descriptor;
  /** noise is the relative standard deviation of a measurement (of each metric, with a study) (0 = exact). */
  noise: number;
  /** evaluate is the true outcome, what the benchmark scores a method on. */
  evaluate(values: Record<string, number | string>): Outcome;
  study?: Study;
}

/** studySurface derives a surface's true outcome from its study's metrics and expressions. */
function studySurface(surface: Omit<Surface, "evaluate"> & { study: Study }): Surface {
  const { study } = surface;
  const compiled = compileObjective({
    objective: study.objective,
    direction: surface.direction,
    constraints: study.constraints,
  });
  return {
    ...surface,
    evaluate(values) {
      const e = compiled.evaluate({
        metrics: study.metrics(values),
        settings: { [study.component]: values },
      });
      if (e.objective === undefined) throw new Error(`${surface.name}: ${e.error ?? "no objective"}`);
      return { objective: e.objective, feasible: e.feasible };
    },
  };
}

const range = (min: number, max: number, step: number, value: number): Record<string, unknown> => ({
  type: "range",
  min,
  max,
  step,
  value,
  pinned: false,
});

function num(v: number | string | undefined): number {
  return typeof v === "number" ? v : Number(v);
}

/** throughputPerCost: maximise requests per dollar over cpu, memory and replicas. */
const throughputPerCost: Surface = {
  name: "throughput/cost",
  summary: "maximize rps per cost; cpu 16 x mem 16 x replicas 8 = 2,048 points",
  direction: "maximize",
  noise: 0,
  descriptor: parseDescriptor({
    application: {
      components: {
        web: {
          settings: {
            cpu: range(0.25, 4, 0.25, 1),
            mem: range(0.25, 4, 0.25, 1),
            replicas: range(1, 8, 1, 2),
          },
        },
      },
    },
  }),
  evaluate(v) {
    const cpu = num(v.cpu);
    const mem = num(v.mem);
    const replicas = num(v.replicas);
    // Per-pod rate saturates in cpu; below ~1.2 GiB the JVM heap thrashes.
    const perPod = (600 * cpu) / (cpu + 1.5);
    const memFactor = 1 / (1 + Math.exp(-(mem - 1.2) / 0.12));
    const throughput = (replicas * perPod * memFactor) / (1 + 0.06 * (replicas - 1));
    const cost = replicas * (cpu * 0.03 + mem * 0.004) + 0.05;
    return { objective: throughput / cost, feasible: true };
  },
};

/**
 * efficiencyUnderSlo: maximise requests per cost while the p95 latency stays under 130 ms. The
 * cheapest pods are too slow, so the best feasible settings sit on the edge of the constraint.
 * It reports p95 as a metric, so the search can grade the constraint.
 */
const efficiencyUnderSlo: Surface = studySurface({
  name: "rps/cost under SLO",
  summary: "maximize rps per cost s.t. p95 <= 130 ms; cpu 16 x mem 16 x replicas 8 x gc 3 = 6,144 points",
  direction: "maximize",
  noise: 0,
  descriptor: parseDescriptor({
    application: {
      components: {
        api: {
          settings: {
            cpu: range(0.25, 4, 0.25, 3),
            mem: range(0.25, 4, 0.25, 3),
            replicas: range(1, 8, 1, 6),
            gc: { type: "enum", values: ["serial", "parallel", "g1"], value: "g1" },
          },
        },
      },
    },
  }),
  study: {
    component: "api",
    objective: "metrics.rps_per_cost",
    constraints: [{ name: "latency", expression: "metrics.p95 <= 130.0" }],
    metrics(v) {
      const cpu = num(v.cpu);
      const mem = num(v.mem);
      const replicas = num(v.replicas);
      const gc = String(v.gc);
      const gcThroughput = { serial: 0.9, parallel: 1.15, g1: 1 }[gc] ?? 1;
      const perPod = ((600 * cpu) / (cpu + 1.5)) * gcThroughput;
      const memFactor = 1 / (1 + Math.exp(-(mem - 1.2) / 0.12));
      const throughput = (replicas * perPod * memFactor) / (1 + 0.06 * (replicas - 1));
      const cost = replicas * (cpu * 0.03 + mem * 0.004) + 0.05;
      // Service time falls with cpu; collector pauses and a small heap add to the tail.
      const pause = ({ serial: 25, parallel: 40, g1: 10 }[gc] ?? 0) + (mem < 1.5 ? (1.5 - mem) * 200 : 0);
      const p95 = 150 / cpu ** 0.7 + pause + 4 * replicas;
      return { rps_per_cost: throughput / cost, p95 };
    },
  },
});

/** envTuning: maximise throughput over cpu and three interacting env settings, measured with 3% noise. */
const envTuning: Surface = {
  name: "env tuning (noisy)",
  summary: "maximize rps, 3% noise; cpu 15 x threads 64 x batch 5 x cache 32 = 153,600 points",
  direction: "maximize",
  noise: 0.03,
  descriptor: parseDescriptor({
    application: {
      components: {
        worker: {
          settings: {
            cpu: range(0.5, 4, 0.25, 1),
            THREADS: range(1, 64, 1, 8),
            BATCH: { type: "enum", values: [16, 32, 64, 128, 256], value: 32 },
            CACHE_MB: range(64, 2048, 64, 256),
            replicas: { type: "range", min: 2, max: 2, step: 1, value: 2, pinned: true },
          },
        },
      },
    },
  }),
  evaluate(v) {
    const cpu = num(v.cpu);
    const threads = num(v.THREADS);
    const batch = num(v.BATCH);
    const cache = num(v.CACHE_MB);
    // Threads help up to ~6 per core, then contention; batches trade latency for overhead; the
    // cache has a sweet spot that moves with batch size (two modes).
    const ideal = 6 * cpu;
    const threadEff = Math.exp(-((Math.log(threads / ideal) / 0.7) ** 2));
    const batchEff = { 16: 0.7, 32: 0.85, 64: 1, 128: 0.95, 256: 0.75 }[batch] ?? 0.5;
    const small = Math.exp(-(((cache - 384) / 250) ** 2));
    const large = 1.12 * Math.exp(-(((cache - 1600) / 300) ** 2)) * (batch >= 128 ? 1 : 0.6);
    const cacheEff = 0.5 + 0.5 * Math.max(small, large);
    const throughput = 1000 * cpu ** 0.85 * threadEff * batchEff * cacheEff;
    return { objective: throughput / (cpu * 0.03 + 0.02), feasible: true };
  },
};

/**
 * demo: `kubewise demo` (examples/servo/demo.yaml) without the cluster. The simulated workload's
 * own model (src/servo/connectors/synthetic.ts) gives the metrics, measured with the demo's 2%
 * noise; the cheapest settings that keep p90 <= 50 ms and errors <= 0.5% are wanted, starting from
 * cpu 1, mem 1, COMMIT_DELAY 20. The cheap corner is infeasible and the optimum (cpu 0.75, mem
 * 0.75, COMMIT_DELAY 50, cost 0.9375) lies on the latency boundary near the baseline.
 */
const demo: Surface = studySurface({
  name: "demo (k8slive)",
  summary:
    "minimize cpu + mem/4 s.t. p90 <= 50 ms, errors <= 0.5%, 2% noise; cpu 16 x mem 16 x COMMIT_DELAY 100 = 25,600 points",
  direction: "minimize",
  noise: 0.02,
  descriptor: parseDescriptor({
    application: {
      components: {
        "opsani-tuning": {
          settings: {
            cpu: range(0.125, 2, 0.125, 1),
            mem: range(0.125, 2, 0.125, 1),
            replicas: { type: "range", min: 0, max: 1, step: 1, value: 1, pinned: true },
            COMMIT_DELAY: range(1, 100, 1, 20),
          },
        },
      },
    },
  }),
  study: {
    component: "opsani-tuning",
    objective: 'components["opsani-tuning"].cpu + 0.25 * components["opsani-tuning"].mem',
    constraints: [
      { name: "latency", expression: "metrics.latency_p90 <= 50.0" },
      { name: "errors", expression: "metrics.error_rate <= 0.5" },
    ],
    metrics(v) {
      const p = expectedPerformance(num(v.cpu), num(v.mem), num(v.COMMIT_DELAY), { loadRps: 300 });
      return { ...p };
    },
  },
});

/** SURFACES are the benchmark's problems, in the order they are printed. */
export const SURFACES: Surface[] = [throughputPerCost, efficiencyUnderSlo, envTuning, demo];
