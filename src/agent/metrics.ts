import { renameSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { closeServer, listen, type ListenAddress } from "../http.js";
import { Counter, Gauge, Registry } from "prom-client";
import type { AllocationResult } from "./apply.js";
import type { TaskSample } from "./cgroups.js";
import { AgentError } from "./errors.js";
import type { AgentHealth } from "./runner.js";
import type { Task } from "./tasks.js";

/**
 * Metrics: WCA's task_* names with the task labels (sanitised pod labels, QoS class,
 * task_name, task_id), served at /metrics and optionally written to a file. Counters read from
 * the kernel are set to the kernel's value each iteration; series of pods that are gone are
 * dropped, so a deleted pod does not linger at its last value. WCA's allocation metrics are
 * there too: `allocation` (the same read-back values as task_allocation), `allocations_count`
 * (knobs written) and `allocations_ignored_count` (knobs refused by the safety checks).
 */

type Kind = "counter" | "gauge";

/** TaskMetricSpec is one task_* metric: its name, help, kind and how to read it from a sample. */
interface TaskMetricSpec {
  name: string;
  help: string;
  kind: Kind;
  value: (sample: TaskSample, task: Task) => number | undefined;
}

const pressureSpecs: TaskMetricSpec[] = (["cpu", "memory", "io"] as const).flatMap((resource) =>
  (["some", "full"] as const).flatMap((kind): TaskMetricSpec[] => [
    {
      name: `task_pressure_${resource}_${kind}_seconds`,
      help: `Time ${kind === "some" ? "some" : "all"} tasks of the pod stalled on ${resource} (PSI total)`,
      kind: "counter",
      value: (s) => {
        const usec = s.pressure[resource]?.[kind]?.totalUsec;
        return usec === undefined ? undefined : usec / 1e6;
      },
    },
    {
      name: `task_pressure_${resource}_${kind}_avg10_ratio`,
      help: `Share of the last 10 s ${kind === "some" ? "some" : "all"} tasks of the pod stalled on ${resource} (PSI avg10 / 100)`,
      kind: "gauge",
      value: (s) => {
        const avg = s.pressure[resource]?.[kind]?.avg10;
        return avg === undefined ? undefined : avg / 100;
      },
    },
  ]),
);

/** TASK_METRICS lists every task_* metric the agent exposes. */
export const TASK_METRICS: readonly TaskMetricSpec[] = [
  { name: "task_up", help: "1 when the pod's cgroup was read this iteration", kind: "gauge", value: () => 1 },
  {
    name: "task_cpu_usage_seconds",
    help: "CPU time used by the pod (cpuacct.usage / cpu.stat usage_usec)",
    kind: "counter",
    value: (s) => s.cpuUsageSeconds,
  },
  {
    name: "task_cpu_periods",
    help: "CFS enforcement periods that elapsed with the pod runnable (nr_periods)",
    kind: "counter",
    value: (s) => s.cpuPeriods,
  },
  {
    name: "task_cpu_throttled_periods",
    help: "CFS periods in which the pod was throttled (nr_throttled)",
    kind: "counter",
    value: (s) => s.cpuThrottledPeriods,
  },
  {
    name: "task_cpu_throttled_seconds",
    help: "Time the pod was throttled by its CPU quota",
    kind: "counter",
    value: (s) => s.cpuThrottledSeconds,
  },
  {
    name: "task_mem_usage_bytes",
    help: "Memory charged to the pod (memory.usage_in_bytes / memory.current)",
    kind: "gauge",
    value: (s) => s.memUsageBytes,
  },
  {
    name: "task_mem_working_set_bytes",
    help: "Memory usage minus inactive file cache (what the kubelet evicts by)",
    kind: "gauge",
    value: (s) => s.memWorkingSetBytes,
  },
  {
    name: "task_mem_limit_bytes",
    help: "Memory limit of the pod's cgroup; +Inf when there is none",
    kind: "gauge",
    value: (s) => s.memLimitBytes,
  },
  {
    name: "task_mem_max_usage_bytes",
    help: "Peak memory usage of the pod (memory.max_usage_in_bytes / memory.peak)",
    kind: "gauge",
    value: (s) => s.memMaxUsageBytes,
  },
  {
    name: "task_mem_soft_limit_bytes",
    help: "Memory soft limit of the pod's cgroup (memory.soft_limit_in_bytes on v1, memory.low on v2); +Inf when unset on v1",
    kind: "gauge",
    value: (s) => s.memSoftLimitBytes,
  },
  {
    name: "task_mem_page_faults",
    help: "Page faults in the pod (memory.stat pgfault)",
    kind: "counter",
    value: (s) => s.pageFaults,
  },
  {
    name: "task_mem_major_page_faults",
    help: "Major page faults in the pod (memory.stat pgmajfault)",
    kind: "counter",
    value: (s) => s.majorPageFaults,
  },
  ...pressureSpecs,
  {
    name: "task_subcontainers",
    help: "Containers of the pod whose cgroup was found",
    kind: "gauge",
    value: (s) => s.subcontainers,
  },
  {
    name: "task_last_seen",
    help: "When the pod's cgroup was last read, in seconds since the epoch (as WCA's task_last_seen)",
    kind: "gauge",
    value: (s) => s.lastSeenSeconds,
  },
  {
    name: "task_requested_cpus",
    help: "CPU the pod requests (Kubernetes' effective request, with init containers and overhead)",
    kind: "gauge",
    value: (_, t) => t.resources.requests_cpus ?? 0,
  },
  {
    name: "task_requested_mem_bytes",
    help: "Memory the pod requests (Kubernetes' effective request)",
    kind: "gauge",
    value: (_, t) => t.resources.requests_mem ?? 0,
  },
];

/** AgentInfo labels the agent's own info metric. */
export interface AgentInfo {
  node: string;
  cgroupVersion: string;
  cgroupDriver: string;
  podSource: string;
}

/** IterationStats summarise one iteration for the agent's own metrics. */
export interface IterationStats {
  ok: boolean;
  durationSeconds: number;
  /** tasks is the number of monitored pods; read those whose cgroup was read. */
  tasks: number;
  read: number;
}

type TaskMetric = Counter<string> | Gauge<string>;

/**
 * TaskMetrics holds the registry. Pod labels differ from pod to pod and prom-client fixes a
 * metric's label names when it is made, so the task metrics are remade whenever the union of
 * label names changes (rare: when a pod with new label keys arrives).
 */
export class TaskMetrics {
  readonly registry = new Registry();
  private labelKey = "";
  private taskMetrics = new Map<string, TaskMetric>();
  private allocation: Gauge<string> | undefined;
  /** wcaAllocation is WCA's name for task_allocation, with the same values. */
  private wcaAllocation: Gauge<string> | undefined;
  private readonly allocationsCount: Counter<string>;
  private readonly allocationsIgnored: Counter<string>;
  private readonly iterations: Counter<string>;
  private readonly lastDuration: Gauge<string>;
  private readonly taskCount: Gauge<string>;
  private readonly allocations: Counter<string>;

  constructor(info?: AgentInfo) {
    const registers = [this.registry];
    if (info) {
      new Gauge({
        name: "kubewise_agent_info",
        help: "Constant 1, labelled with how this agent runs",
        labelNames: ["node", "cgroup_version", "cgroup_driver", "pod_source"],
        registers,
      }).set(
        {
          node: info.node,
          cgroup_version: info.cgroupVersion,
          cgroup_driver: info.cgroupDriver,
          pod_source: info.podSource,
        },
        1,
      );
    }
    this.iterations = new Counter({
      name: "kubewise_agent_iterations_total",
      help: "Iterations by result",
      labelNames: ["result"],
      registers,
    });
    this.lastDuration = new Gauge({
      name: "kubewise_agent_last_iteration_seconds",
      help: "How long the last iteration took",
      registers,
    });
    this.taskCount = new Gauge({
      name: "kubewise_agent_tasks",
      help: "Monitored pods by state",
      labelNames: ["state"],
      registers,
    });
    this.allocations = new Counter({
      name: "kubewise_agent_allocations_total",
      help: "Allocation decisions by knob and outcome (unchanged, updated, refused, failed)",
      labelNames: ["allocation_type", "outcome"],
      registers,
    });
    this.allocationsCount = new Counter({
      name: "allocations_count",
      help: "Allocations written to cgroups (knobs updated), as WCA's allocations_count",
      registers,
    });
    this.allocationsIgnored = new Counter({
      name: "allocations_ignored_count",
      help: "Allocations not applied because a safety check refused them, as WCA's allocations_ignored_count",
      registers,
    });
  }

  /** update replaces every task series with this iteration's tasks and samples. */
  update(tasks: readonly Task[], samples: ReadonlyMap<string, TaskSample>): void {
    this.ensureLabels(tasks);
    for (const spec of TASK_METRICS) {
      const metric = this.taskMetrics.get(spec.name) as TaskMetric;
      metric.reset();
      for (const task of tasks) {
        const sample = samples.get(task.id);
        const value = sample === undefined ? undefined : spec.value(sample, task);
        if (value === undefined || Number.isNaN(value)) continue;
        if (metric instanceof Counter) metric.inc(task.labels, value);
        else metric.set(task.labels, value);
      }
    }
    this.updateAllocations(tasks, samples);
  }

  private updateAllocations(tasks: readonly Task[], samples: ReadonlyMap<string, TaskSample>): void {
    const gauges = [this.allocation, this.wcaAllocation] as Gauge<string>[];
    for (const g of gauges) g.reset();
    for (const task of tasks) {
      const a = samples.get(task.id)?.allocation;
      if (!a) continue;
      const set = (type: string, v: number | undefined): void => {
        if (v !== undefined) for (const g of gauges) g.set({ ...task.labels, allocation_type: type }, v);
      };
      set("cpu_quota", a.cpuQuota);
      set("cpu_shares", a.cpuShares);
      set("cpu_weight", a.cpuWeight);
      if (a.cpusetCpus) set("cpuset_cpus", countCpus(a.cpusetCpus));
    }
  }

  /** recordIteration updates the agent's own metrics after an iteration. */
  recordIteration(stats: IterationStats): void {
    this.iterations.inc({ result: stats.ok ? "ok" : "failed" });
    this.lastDuration.set(stats.durationSeconds);
    if (stats.ok) {
      this.taskCount.set({ state: "read" }, stats.read);
      this.taskCount.set({ state: "no_cgroup" }, stats.tasks - stats.read);
    }
  }

  /** recordAllocations counts an iteration's allocation outcomes. */
  recordAllocations(results: readonly AllocationResult[]): void {
    for (const r of results) {
      this.allocations.inc({ allocation_type: r.type, outcome: r.outcome });
      if (r.outcome === "updated") this.allocationsCount.inc();
      if (r.outcome === "refused") this.allocationsIgnored.inc();
    }
  }

  /** exposition renders the registry in Prometheus text format. */
  exposition(): Promise<string> {
    return this.registry.metrics();
  }

  private ensureLabels(tasks: readonly Task[]): void {
    const names = new Set<string>();
    for (const t of tasks) for (const k of Object.keys(t.labels)) names.add(k);
    const labelNames = [...names].sort();
    const key = labelNames.join(",");
    if (key === this.labelKey && this.allocation) return;
    this.labelKey = key;
    for (const name of this.taskMetrics.keys()) this.registry.removeSingleMetric(name);
    if (this.allocation) this.registry.removeSingleMetric("task_allocation");
    if (this.wcaAllocation) this.registry.removeSingleMetric("allocation");
    const registers = [this.registry];
    this.taskMetrics = new Map(
      TASK_METRICS.map((s) => {
        const config = { name: s.name, help: s.help, labelNames, registers };
        return [s.name, s.kind === "counter" ? new Counter(config) : new Gauge(config)];
      }),
    );
    const allocationLabels = [...labelNames.filter((n) => n !== "allocation_type"), "allocation_type"];
    const help =
      "What the pod's cgroup allows, read back: cpu_quota in cores (+Inf for none), cpu_shares (v1), cpu_weight (v2), cpuset_cpus as a cpu count";
    this.allocation = new Gauge({ name: "task_allocation", help, labelNames: allocationLabels, registers });
    this.wcaAllocation = new Gauge({
      name: "allocation",
      help: `${help} (WCA's name for task_allocation)`,
      labelNames: allocationLabels,
      registers,
    });
  }
}

function countCpus(list: string): number {
  let n = 0;
  for (const part of list.split(",")) {
    const [lo, hi] = part.split("-").map(Number);
    n += hi === undefined ? 1 : hi - (lo as number) + 1;
  }
  return n;
}

/**
 * writeMetricsFile writes the exposition atomically: to `<file>.tmp`, then renamed over the
 * file, so a reader (node-exporter's textfile collector) never sees half of it. No timestamps,
 * as WCA's LogStorage with overwrite.
 */
export function writeMetricsFile(file: string, text: string): void {
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

export type { ListenAddress };

/** parseListen reads HOST:PORT (IPv6 as [::1]:PORT); port 0 picks a free one. */
export function parseListen(value: string): ListenAddress {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(value.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    throw new AgentError(
      "config",
      `listen address "${value}" is not HOST:PORT (e.g. 0.0.0.0:9477, [::]:9477)`,
    );
  }
  return { host: m[1] ?? (m[2] || "0.0.0.0"), port };
}

/**
 * MetricsServer serves over plain HTTP: /metrics (Prometheus text); /healthz, 200 "ok" or 503
 * with the last error once `health` says the loop is unhealthy (the readiness probe); /livez,
 * 200 while the process serves (the liveness probe: restarting fixes neither a missing
 * certificate nor an API-server outage).
 */
export class MetricsServer {
  private server: Server | undefined;
  private readonly metrics: TaskMetrics;
  private readonly listen: ListenAddress;
  private readonly health: (() => AgentHealth) | undefined;

  constructor(metrics: TaskMetrics, listen: ListenAddress, health?: () => AgentHealth) {
    this.metrics = metrics;
    this.listen = listen;
    this.health = health;
  }

  /** start listens and resolves with the bound address (useful with port 0). */
  async start(): Promise<ListenAddress> {
    const server = createServer((req, res) => {
      const path = (req.url ?? "/").split("?")[0];
      if (req.method !== "GET" && req.method !== "HEAD") {
        res.writeHead(405, { allow: "GET, HEAD" }).end();
      } else if (path === "/metrics") {
        this.metrics.exposition().then(
          (text) => res.writeHead(200, { "content-type": this.metrics.registry.contentType }).end(text),
          (err: unknown) => res.writeHead(500).end(String(err)),
        );
      } else if (path === "/healthz") {
        const h = this.health?.();
        if (h === undefined || h.healthy) res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
        else
          res
            .writeHead(503, { "content-type": "text/plain" })
            .end(
              `unhealthy: ${h.failuresInARow} iterations in a row failed; last error: ${h.lastError ?? "?"}\n`,
            );
      } else if (path === "/livez") {
        res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
      } else {
        res
          .writeHead(404, { "content-type": "text/plain" })
          .end("not found: try /metrics, /healthz or /livez\n");
      }
    });
    this.server = server;
    return listen(server, this.listen);
  }

  /** stop closes the server and its idle connections. */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    await closeServer(server);
  }
}
