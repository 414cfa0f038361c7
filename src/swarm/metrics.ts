import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { ReconcileOutcome } from "./queue.js";

/**
 * SwarmMetrics are the controller's Prometheus metrics, in a registry of their own so that two
 * controllers in one process (tests, or a standby beside a leader) do not share counters.
 */
export class SwarmMetrics {
  readonly registry = new Registry();
  /** reconciles counts reconciles by outcome: success, error (retried), terminal (not retried). */
  readonly reconciles = new Counter({
    name: "kubewise_swarm_reconciles_total",
    help: "SwarmPool reconciles by outcome (success, error: retried with backoff, terminal: not retried)",
    labelNames: ["result"] as const,
    registers: [this.registry],
  });
  /** errors counts failed reconciles by reason word. */
  readonly errors = new Counter({
    name: "kubewise_swarm_reconcile_errors_total",
    help: "Failed SwarmPool reconciles by reason (a KubeReason such as Conflict, or a pool problem such as InsufficientWorkers)",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });
  /** jobsMoved counts jobs that changed worker in a written assignment. */
  readonly jobsMoved = new Counter({
    name: "kubewise_swarm_jobs_moved_total",
    help: "Jobs that moved to another worker in the assignments written",
    labelNames: ["namespace", "pool"] as const,
    registers: [this.registry],
  });
  /** writes counts writes to the API server by object: configmap, status, pod (a restart). */
  readonly writes = new Counter({
    name: "kubewise_swarm_writes_total",
    help: "Writes to the API server by object (configmap: worker assignment, status: SwarmPool status, pod: restart)",
    labelNames: ["object"] as const,
    registers: [this.registry],
  });
  /** restarts counts worker pods deleted so that they read a changed entry. */
  readonly restarts = new Counter({
    name: "kubewise_swarm_worker_restarts_total",
    help: "Worker pods restarted because their entry changed (refresh strategy restart)",
    labelNames: ["namespace", "pool"] as const,
    registers: [this.registry],
  });
  /** leader is 1 while this instance holds the leader lease. */
  readonly leader = new Gauge({
    name: "kubewise_swarm_leader",
    help: "1 while this instance is the leader and reconciles, 0 on standby",
    registers: [this.registry],
  });
  /** duration observes how long reconciles take. */
  readonly duration = new Histogram({
    name: "kubewise_swarm_reconcile_duration_seconds",
    help: "Time to reconcile one SwarmPool",
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  /**
   * constructor: processMetrics adds prom-client's process and Node.js metrics (CPU, memory,
   * event loop lag) to the registry; leave it off when several controllers share a process.
   * @default false
   */
  constructor(options: { processMetrics?: boolean } = {}) {
    if (options.processMetrics) collectDefaultMetrics({ register: this.registry });
  }

  /** observe records how one reconcile ended. */
  observe(outcome: ReconcileOutcome, durationMs: number, reason?: string): void {
    this.reconciles.inc({ result: outcome });
    this.duration.observe(durationMs / 1000);
    if (outcome !== "success") this.errors.inc({ reason: reason ?? "Unknown" });
  }

  /** exposition renders every metric in the Prometheus text format. */
  exposition(): Promise<string> {
    return this.registry.metrics();
  }

  /** count reads the current value of a counter (summed over labels matching `labels`), for tests and logs. */
  async count(
    counter: "reconciles" | "errors" | "jobsMoved" | "writes" | "restarts",
    labels: Record<string, string> = {},
  ): Promise<number> {
    const { values } = await this[counter].get();
    return values
      .filter((v) =>
        Object.entries(labels).every(
          ([k, want]) => String((v.labels as Record<string, unknown>)[k]) === want,
        ),
      )
      .reduce((sum, v) => sum + v.value, 0);
  }
}
