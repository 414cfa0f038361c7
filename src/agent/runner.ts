import type { Logger } from "../log.js";
import type { AllocationApplier, AllocationResult } from "./apply.js";
import type { CgroupReader, TaskSample } from "./cgroups.js";
import { AgentError } from "./errors.js";
import { writeMetricsFile, type TaskMetrics } from "./metrics.js";
import { monitoredPods, type PodSource } from "./podsource.js";
import { taskFromPod, type Task } from "./tasks.js";

/**
 * The agent's loop: every interval, list the node's pods, turn them into tasks, read their
 * cgroups, publish the metrics, and (when allocation is on) apply allocations. An iteration
 * that fails is counted and the loop goes on; only stop() ends it. A failure is logged when it
 * first happens and then every REPEAT_LOG_EVERY repeats, not every interval, and health() turns
 * unhealthy after UNHEALTHY_AFTER failed iterations in a row.
 */

/** UNHEALTHY_AFTER failed iterations in a row make health() (and so /healthz) unhealthy. */
export const UNHEALTHY_AFTER = 3;

/** REPEAT_LOG_EVERY: an identical failure repeated this many times is logged again, with its count. */
export const REPEAT_LOG_EVERY = 60;

/** AgentHealth is the loop's state for /healthz. */
export interface AgentHealth {
  healthy: boolean;
  /** failuresInARow counts the failed iterations since the last good one. */
  failuresInARow: number;
  /** lastError is the message of the last failure while failuresInARow > 0. */
  lastError?: string;
}

/** AgentRunnerOptions wire the loop to its parts. */
export interface AgentRunnerOptions {
  source: PodSource;
  reader: CgroupReader;
  metrics: TaskMetrics;
  namespaces: readonly string[];
  intervalMs: number;
  /** applier applies allocations; absent when allocation is off. */
  applier?: AllocationApplier;
  /** metricsFile, when set, gets the exposition after every iteration. */
  metricsFile?: string;
  log: Logger;
}

/** IterationReport is what one iteration did, for tests and the --once mode. */
export interface IterationReport {
  ok: boolean;
  tasks: Task[];
  samples: Map<string, TaskSample>;
  allocations: AllocationResult[];
  durationMs: number;
  error?: Error;
}

/** AgentRunner is the loop object: start() begins at once, stop() ends it after the current iteration. */
export class AgentRunner {
  private readonly options: AgentRunnerOptions;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<IterationReport> | undefined;
  private stopped = true;
  /** warned holds task IDs whose spec problems were logged, so each is said once. */
  private readonly warned = new Set<string>();
  /** lastFailure is the message of the last failed iteration; undefined after a good one. */
  private lastFailure: string | undefined;
  /** repeats counts the failures in a row with lastFailure's message, the first one included. */
  private repeats = 0;
  private failuresInARow = 0;

  constructor(options: AgentRunnerOptions) {
    this.options = options;
  }

  /** start runs the first iteration now and then one every interval. */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.schedule(0);
  }

  /** stop cancels the next iteration and waits for the current one to finish. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  private schedule(delayMs: number): void {
    this.timer = setTimeout(() => {
      const started = Date.now();
      this.running = this.runOnce();
      void this.running.then(() => {
        if (!this.stopped) this.schedule(Math.max(0, this.options.intervalMs - (Date.now() - started)));
      });
    }, delayMs);
  }

  /** runOnce runs one iteration; it never throws (a failure is in the report and the log). */
  async runOnce(): Promise<IterationReport> {
    const { log, metrics } = this.options;
    const started = performance.now();
    const report: IterationReport = {
      ok: false,
      tasks: [],
      samples: new Map(),
      allocations: [],
      durationMs: 0,
    };
    try {
      await this.iterate(report);
      report.ok = true;
      if (this.failuresInARow > 0) log.info({ failed: this.failuresInARow }, "iterations work again");
      this.failuresInARow = 0;
      this.lastFailure = undefined;
      this.repeats = 0;
    } catch (err) {
      report.error = err as Error;
      this.recordFailure(report.error);
    }
    report.durationMs = performance.now() - started;
    metrics.recordIteration({
      ok: report.ok,
      durationSeconds: report.durationMs / 1000,
      tasks: report.tasks.length,
      read: report.samples.size,
    });
    await this.writeFile();
    log.debug(
      { tasks: report.tasks.length, read: report.samples.size, ms: Math.round(report.durationMs) },
      "iteration done",
    );
    return report;
  }

  /** health says whether the last iterations worked; before the first one it is healthy. */
  health(): AgentHealth {
    const h: AgentHealth = {
      healthy: this.failuresInARow < UNHEALTHY_AFTER,
      failuresInARow: this.failuresInARow,
    };
    if (this.lastFailure !== undefined) h.lastError = this.lastFailure;
    return h;
  }

  /**
   * recordFailure logs a failure when it is new and then every REPEAT_LOG_EVERY repeats. An
   * AgentError is a known condition with a message for the operator, so it is logged without
   * its stack; anything else is a bug, logged with it.
   */
  private recordFailure(err: Error): void {
    const { log } = this.options;
    this.failuresInARow++;
    if (err.message !== this.lastFailure) {
      this.lastFailure = err.message;
      this.repeats = 1;
      if (!(err instanceof AgentError)) log.error({ err }, "iteration failed");
      else if (err.reason === "pod-source")
        log.warn({ err: err.message }, "cannot list pods; iterations skipped until it works");
      else log.error({ reason: err.reason, err: err.message }, "iteration failed");
      return;
    }
    this.repeats++;
    const fields = { err: err.message, times: this.repeats };
    if (this.repeats % REPEAT_LOG_EVERY === 0)
      log.warn(fields, "iterations still failing with the same error");
    else log.debug(fields, "iteration failed again with the same error");
  }

  private async iterate(report: IterationReport): Promise<void> {
    const { source, reader, metrics, applier } = this.options;
    const pods = await source.listPods();
    report.tasks = monitoredPods(pods, { namespaces: this.options.namespaces }).map(taskFromPod);
    this.logProblems(report.tasks);
    report.samples = await reader.readTasks(report.tasks);
    if (applier) {
      report.allocations = applier.apply(report.tasks, report.samples);
      metrics.recordAllocations(report.allocations);
    }
    metrics.update(report.tasks, report.samples);
  }

  private logProblems(tasks: readonly Task[]): void {
    const live = new Set<string>();
    for (const t of tasks) {
      live.add(t.id);
      if (t.problems.length > 0 && !this.warned.has(t.id)) {
        this.options.log.warn(
          { task: t.name, problems: t.problems },
          "pod spec has values the agent cannot use",
        );
        this.warned.add(t.id);
      }
    }
    for (const id of this.warned) if (!live.has(id)) this.warned.delete(id);
  }

  private async writeFile(): Promise<void> {
    const { metricsFile, metrics, log } = this.options;
    if (!metricsFile) return;
    try {
      writeMetricsFile(metricsFile, await metrics.exposition());
    } catch (err) {
      log.warn({ file: metricsFile, err: (err as Error).message }, "cannot write the metrics file");
    }
  }
}
