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
 * that fails is logged and counted, and the loop goes on; only stop() ends it.
 */

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
  /** sourceError is the pod source's last failure, so an outage is logged once, not every iteration. */
  private sourceError: string | undefined;

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
      if (this.sourceError !== undefined) log.info("pods listed again");
      this.sourceError = undefined;
    } catch (err) {
      report.error = err as Error;
      if (err instanceof AgentError && err.reason === "pod-source") {
        if (this.sourceError !== err.message)
          log.warn({ err: err.message }, "cannot list pods; iterations skipped until it works");
        else log.debug({ err: err.message }, "cannot list pods; iteration skipped");
        this.sourceError = err.message;
      } else {
        log.error({ err }, "iteration failed");
      }
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
