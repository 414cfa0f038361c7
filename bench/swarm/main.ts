/**
 * Benchmark: how many jobs move, how even the load is, and how long the computation takes when a
 * worker pool grows or shrinks by one, for kubewise's assignWork and three stateless baselines, all
 * measured in this run on the same job lists.
 *
 *   npx tsx bench/swarm/main.ts [--jobs 10000,1000000] [--workers 10,100,1000]
 *
 * "balanced minimum" is the least any assignment balanced to within one job can move: floor(K/(n+1)) jobs
 * onto the new worker on n -> n+1, and the removed worker's floor(K/n) jobs on n -> n-1 (the last
 * ordinal goes, as when a StatefulSet scales down). A scheme that is not balanced can move fewer on
 * n -> n-1 when the removed worker happened to hold fewer jobs; its max-min load shows the price.
 */
import { parseArgs } from "node:util";
import { assignWork, movedJobs, type Assignment } from "../../src/swarm/index.js";
import {
  contiguousRanges,
  moduloHashing,
  rendezvousHashing,
  workerName,
  type Baseline,
} from "./baselines.js";

/** Row is one line of the result table. */
interface Row {
  jobs: number;
  workers: number;
  change: string;
  scheme: string;
  moved: number;
  minimum: number;
  spread: number;
  ms: number;
}

function main(): void {
  const { values } = parseArgs({
    options: {
      jobs: { type: "string", default: "10000,1000000" },
      workers: { type: "string", default: "10,100,1000" },
    },
  });
  const jobCounts = values.jobs.split(",").map(Number);
  const workerCounts = values.workers.split(",").map(Number);
  // Warm up the JIT on a small case so the first measured row is not paying for compilation.
  const warmup = Array.from({ length: 20_000 }, (_, i) => `warmup:${i}`);
  measureOurs(warmup, 50);
  for (const baseline of [contiguousRanges, moduloHashing, rendezvousHashing])
    measureBaseline(baseline, warmup, 50);

  const started = performance.now();
  const rows: Row[] = [];
  for (const k of jobCounts) {
    const jobs = Array.from({ length: k }, (_, i) => `stream:${i}`);
    for (const n of workerCounts) {
      rows.push(...measureOurs(jobs, n));
      for (const baseline of [contiguousRanges, moduloHashing, rendezvousHashing]) {
        rows.push(...measureBaseline(baseline, jobs, n));
      }
      process.stderr.write(`measured K=${k} n=${n} (${seconds(performance.now() - started)} so far)\n`);
    }
  }
  process.stdout.write(renderTable(rows));
  process.stdout.write(`\nnode ${process.version}, total ${seconds(performance.now() - started)}\n`);
}

function measureOurs(jobs: readonly string[], n: number): Row[] {
  const scheme = "kubewise assignWork";
  const before = assignWork(jobs, names(n));
  const up = timed(() => assignWork(jobs, names(n + 1), before));
  const down = timed(() => assignWork(jobs, names(n - 1), before));
  return [
    row(jobs.length, n, "+1", {
      scheme,
      moved: movedJobs(before, up.value).length,
      spread: spreadOf(up.value),
      ms: up.ms,
    }),
    row(jobs.length, n, "-1", {
      scheme,
      moved: movedJobs(before, down.value).length,
      spread: spreadOf(down.value),
      ms: down.ms,
    }),
  ];
}

function measureBaseline(baseline: Baseline, jobs: readonly string[], n: number): Row[] {
  const scheme = baseline.name;
  const before = baseline.assign(jobs, n);
  const up = timed(() => baseline.assign(jobs, n + 1));
  const down = timed(() => baseline.assign(jobs, n - 1));
  return [
    row(jobs.length, n, "+1", {
      scheme,
      moved: countMoved(before, up.value),
      spread: loadSpread(up.value, n + 1),
      ms: up.ms,
    }),
    row(jobs.length, n, "-1", {
      scheme,
      moved: countMoved(before, down.value),
      spread: loadSpread(down.value, n - 1),
      ms: down.ms,
    }),
  ];
}

/** row completes a measurement with its size and the balanced minimum for the change. */
function row(
  k: number,
  n: number,
  change: "+1" | "-1",
  m: Pick<Row, "scheme" | "moved" | "spread" | "ms">,
): Row {
  const minimum = change === "+1" ? Math.floor(k / (n + 1)) : Math.floor(k / n);
  return { jobs: k, workers: n, change, minimum, ...m };
}

function names(n: number): string[] {
  return Array.from({ length: n }, (_, i) => workerName(i));
}

function timed<T>(fn: () => T): { value: T; ms: number } {
  const start = performance.now();
  const value = fn();
  return { value, ms: performance.now() - start };
}

function countMoved(before: Int32Array, after: Int32Array): number {
  let moved = 0;
  for (let j = 0; j < before.length; j++) if (before[j] !== after[j]) moved++;
  return moved;
}

function loadSpread(owner: Int32Array, n: number): number {
  const load = new Int32Array(n);
  for (const w of owner) load[w] = (load[w] as number) + 1;
  return Math.max(...load) - Math.min(...load);
}

function spreadOf(a: Assignment): number {
  const loads = [...a.values()].map((jobs) => jobs.length);
  return Math.max(...loads) - Math.min(...loads);
}

function renderTable(rows: readonly Row[]): string {
  const header = [
    "jobs K",
    "workers n",
    "change",
    "scheme",
    "moved",
    "moved %",
    "balanced minimum",
    "max-min load",
    "time ms",
  ];
  const lines = rows.map((r) => [
    r.jobs.toLocaleString("en-US"),
    String(r.workers),
    `n${r.change}`,
    r.scheme,
    r.moved.toLocaleString("en-US"),
    ((100 * r.moved) / r.jobs).toFixed(2),
    r.minimum.toLocaleString("en-US"),
    r.spread.toLocaleString("en-US"),
    r.ms < 10 ? r.ms.toFixed(2) : r.ms.toFixed(0),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] as string).length)));
  const fmt = (cells: string[]): string =>
    `| ${cells.map((c, i) => (i <= 3 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join(" | ")} |`;
  const rule = `|${widths.map((w, i) => (i <= 3 ? "-".repeat(w + 2) : `${"-".repeat(w + 1)}:`)).join("|")}|`;
  return [fmt(header), rule, ...lines.map(fmt)].join("\n") + "\n";
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

main();
