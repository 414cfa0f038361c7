/**
 * Benchmark: one collection iteration over 200 pods' cgroup trees (generated fixtures in the
 * kernel's formats), ours against a naive reader measured in the same run.
 *
 * - ours: CgroupReader — each file read once per pod per iteration into one reused buffer, the
 *   pod's cgroup path remembered after it is found, flat-keyed files scanned for the keys wanted.
 * - naive: what a straightforward port of WCA's reader does — readFileSync of the file for every
 *   metric (cpu.stat four times, memory.stat three times, each PSI file four times), every line
 *   split into a map, the pod's cgroup searched with existsSync on every iteration.
 *
 * Both must produce identical samples; the run stops if they do not.
 *
 * Run: npx tsx bench/agent/main.ts [--pods 200] [--rounds 30]
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { GCProfiler } from "node:v8";
import assert from "node:assert/strict";
import {
  CgroupReader,
  containerCgroupName,
  detectCgroupLayout,
  podCgroupCandidates,
  readSmallFile,
  type CgroupLayout,
  type TaskSample,
} from "../../src/agent/cgroups.js";
import { TaskMetrics } from "../../src/agent/metrics.js";
import { taskFromPod, type QosClass, type Task } from "../../src/agent/tasks.js";
import {
  buildTree,
  fixtureValues,
  makePod,
  makeTempRoot,
  removeTree,
  uidFor,
  type FixtureLayout,
} from "../../src/agent/testdata/fixtures.js";

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) {
  // Re-run with a GC we can call, so each allocation measurement starts from a collected heap.
  const self = fileURLToPath(import.meta.url);
  const args = ["--expose-gc", "--import", "tsx", self, ...process.argv.slice(2)];
  execFileSync(process.execPath, args, { stdio: "inherit" });
  process.exit(0);
}
const collect = gc;

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}

const PODS = flag("pods", 200);
const ROUNDS = flag("rounds", 30);
const qosCycle: QosClass[] = ["burstable", "burstable", "besteffort", "guaranteed"];

/** NaiveReader is the baseline: one readFileSync per metric, no caching, whole-file parsing. */
class NaiveReader {
  reads = 0;
  constructor(private readonly layout: CgroupLayout) {}

  private read(file: string): string | undefined {
    this.reads++;
    try {
      return readFileSync(file, "utf8");
    } catch {
      return undefined;
    }
  }

  private keyed(file: string, key: string): number | undefined {
    const text = this.read(file);
    if (text === undefined) return undefined;
    const map = new Map<string, number>();
    for (const line of text.split("\n")) {
      const [k, v] = line.split(" ");
      if (k) map.set(k, Number(v));
    }
    return map.get(key);
  }

  private single(file: string): number | undefined {
    const text = this.read(file)?.trim();
    if (text === undefined) return undefined;
    if (text === "max" || text === "-1") return Infinity;
    const n = Number(text);
    return n >= 2 ** 62 ? Infinity : n;
  }

  private psi(file: string, kind: "some" | "full", field: string): number | undefined {
    const text = this.read(file);
    const line = text?.split("\n").find((l) => l.startsWith(kind));
    const pair = line?.split(" ").find((p) => p.startsWith(`${field}=`));
    return pair === undefined ? undefined : Number(pair.split("=")[1]);
  }

  readTasks(tasks: readonly Task[]): Map<string, TaskSample> {
    const out = new Map<string, TaskSample>();
    for (const t of tasks) {
      const path = podCgroupCandidates(this.layout.driver, t.qos, t.cgroupUid).find((p) =>
        existsSync(this.layout.root + p),
      );
      if (path === undefined) continue;
      out.set(t.id, this.readV2(path, t));
    }
    return out;
  }

  private readV2(path: string, t: Task): TaskSample {
    const d = this.layout.root + path;
    const usage = this.single(`${d}/memory.current`);
    const inactive = this.keyed(`${d}/memory.stat`, "inactive_file");
    const pressure: TaskSample["pressure"] = {};
    for (const r of ["cpu", "memory", "io"] as const) {
      const p: NonNullable<TaskSample["pressure"]["cpu"]> = {};
      for (const kind of ["some", "full"] as const) {
        const avg10 = this.psi(`${d}/${r}.pressure`, kind, "avg10");
        const avg60 = this.psi(`${d}/${r}.pressure`, kind, "avg60");
        const avg300 = this.psi(`${d}/${r}.pressure`, kind, "avg300");
        const total = this.psi(`${d}/${r}.pressure`, kind, "total");
        if (avg10 !== undefined && avg60 !== undefined && avg300 !== undefined && total !== undefined) {
          p[kind] = { avg10, avg60, avg300, totalUsec: total };
        }
      }
      pressure[r] = p;
    }
    const usageUsec = this.keyed(`${d}/cpu.stat`, "usage_usec");
    const throttledUsec = this.keyed(`${d}/cpu.stat`, "throttled_usec");
    return {
      path,
      cpuUsageSeconds: usageUsec === undefined ? undefined : usageUsec / 1e6,
      cpuPeriods: this.keyed(`${d}/cpu.stat`, "nr_periods"),
      cpuThrottledPeriods: this.keyed(`${d}/cpu.stat`, "nr_throttled"),
      cpuThrottledSeconds: throttledUsec === undefined ? undefined : throttledUsec / 1e6,
      memUsageBytes: usage,
      memWorkingSetBytes: usage === undefined ? undefined : Math.max(0, usage - (inactive ?? 0)),
      memLimitBytes: this.single(`${d}/memory.max`),
      memMaxUsageBytes: this.single(`${d}/memory.peak`),
      memSoftLimitBytes: this.single(`${d}/memory.low`),
      pageFaults: this.keyed(`${d}/memory.stat`, "pgfault"),
      majorPageFaults: this.keyed(`${d}/memory.stat`, "pgmajfault"),
      pressure,
      subcontainers: t.containers.filter((c) =>
        existsSync(`${d}/${containerCgroupName(this.layout.driver, c)}`),
      ).length,
      lastSeenSeconds: Date.now() / 1000,
    };
  }
}

interface Row {
  approach: string;
  medianMs: number;
  p90Ms: number;
  reads: number;
  allocatedMiB: number;
  gcs: number;
}

/**
 * measure runs fn ROUNDS times (after a warm-up) for the times, then once more under a GC
 * profiler for the allocation: heap growth plus whatever the collections during it freed.
 */
async function measure(approach: string, fn: () => unknown, reads: () => number): Promise<Row> {
  for (let i = 0; i < 5; i++) await fn();
  const times: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  collect();
  const readsBefore = reads();
  const profiler = new GCProfiler();
  profiler.start();
  const heapBefore = process.memoryUsage().heapUsed;
  await fn();
  const heapAfter = process.memoryUsage().heapUsed;
  const { statistics } = profiler.stop();
  const freed = statistics.reduce(
    (sum, s) => sum + s.beforeGC.heapStatistics.usedHeapSize - s.afterGC.heapStatistics.usedHeapSize,
    0,
  );
  times.sort((a, b) => a - b);
  return {
    approach,
    medianMs: times[Math.floor(times.length / 2)] as number,
    p90Ms: times[Math.floor(times.length * 0.9)] as number,
    reads: reads() - readsBefore,
    allocatedMiB: (heapAfter - heapBefore + freed) / 2 ** 20,
    gcs: statistics.length,
  };
}

function setUp(fixture: FixtureLayout): { root: string; tasks: Task[]; layout: CgroupLayout } {
  const root = makeTempRoot("kubewise-bench-");
  const tasks = Array.from({ length: PODS }, (_, i) =>
    taskFromPod(
      makePod({
        name: `pod-${i}`,
        uid: uidFor(i),
        qos: qosCycle[i % qosCycle.length] as QosClass,
        containers: 1 + (i % 3),
        labels: { app: `app-${i % 20}`, "app.kubernetes.io/part-of": "bench", "pod-template-hash": `h${i}` },
      }),
    ),
  );
  buildTree(
    root,
    fixture,
    tasks.map((t, i) => ({
      qos: t.qos,
      uid: t.cgroupUid,
      containers: t.containers,
      values: fixtureValues(i),
    })),
  );
  return { root, tasks, layout: detectCgroupLayout(root, fixture.driver) };
}

function print(rows: Row[]): void {
  const header = ["approach", "median ms", "p90 ms", "files read", "allocated MiB", "GCs in it"];
  const cells = rows.map((r) => [
    r.approach,
    r.medianMs.toFixed(2),
    r.p90Ms.toFixed(2),
    String(r.reads),
    r.allocatedMiB.toFixed(2),
    String(r.gcs),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] as string).length)));
  const line = (c: string[]): string =>
    c.map((x, i) => (i === 0 ? x.padEnd(widths[i] as number) : x.padStart(widths[i] as number))).join("  ");
  console.log(line(header));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const c of cells) console.log(line(c));
}

async function main(): Promise<void> {
  const { root, tasks, layout } = setUp({ version: "v2", driver: "systemd" });
  try {
    let ourReads = 0;
    const counting = (file: string): string | undefined => {
      ourReads++;
      return readSmallFile(file);
    };
    const ours = new CgroupReader(layout, { readFile: counting });
    const naive = new NaiveReader(layout);
    const a = await ours.readTasks(tasks);
    const b = naive.readTasks(tasks);
    assert.equal(a.size, PODS);
    // The read time differs between the two passes by design; everything else must not.
    const timeless = (m: Map<string, TaskSample>): Map<string, TaskSample> =>
      new Map([...m].map(([k, v]) => [k, { ...v, lastSeenSeconds: 0 }]));
    assert.deepEqual(timeless(a), timeless(b), "ours and the naive reader must read the same values");

    const metrics = new TaskMetrics();
    const pods = tasks.map((_, i) =>
      makePod({
        name: `pod-${i}`,
        uid: uidFor(i),
        qos: qosCycle[i % qosCycle.length] as QosClass,
        containers: 1 + (i % 3),
      }),
    );
    const rows: Row[] = [];
    // Interleaved so that neither side gets a warmer page cache or JIT for free.
    rows.push(
      await measure(
        "naive: readFileSync per metric",
        () => naive.readTasks(tasks),
        () => naive.reads,
      ),
    );
    rows.push(
      await measure(
        "ours: CgroupReader.readTasks",
        () => ours.readTasks(tasks),
        () => ourReads,
      ),
    );
    rows.push(
      await measure(
        "naive (again)",
        () => naive.readTasks(tasks),
        () => naive.reads,
      ),
    );
    rows.push(
      await measure(
        "ours (again)",
        () => ours.readTasks(tasks),
        () => ourReads,
      ),
    );
    rows.push(
      await measure(
        "ours, whole iteration: tasks + read + metrics + exposition",
        async () => {
          const ts = pods.map(taskFromPod);
          metrics.update(ts, await ours.readTasks(ts));
          return metrics.exposition();
        },
        () => ourReads,
      ),
    );
    const files = tasks.reduce((n, t) => n + t.containers.length, 0);
    console.log(
      `agent collection: ${PODS} pods (${files} containers), cgroup v2 + systemd fixtures, median of ${ROUNDS} rounds each\n`,
    );
    print(rows);
    const speedup = (
      (rows[0]!.medianMs + rows[2]!.medianMs) /
      (rows[1]!.medianMs + rows[3]!.medianMs)
    ).toFixed(1);
    console.log(
      `\nours is ${speedup}x faster than naive (median of both runs), reading ${rows[1]!.reads} files instead of ${rows[0]!.reads}`,
    );
  } finally {
    removeTree(root);
  }
}

await main();
