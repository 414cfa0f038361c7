import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { TaskSample } from "./cgroups.js";
import { AgentError } from "./errors.js";
import { MetricsServer, parseListen, TaskMetrics, writeMetricsFile } from "./metrics.js";
import { taskFromPod, type Task } from "./tasks.js";
import { makePod, makeTempRoot, removeTree, uidFor } from "./testdata/fixtures.js";

function sample(over: Partial<TaskSample> = {}): TaskSample {
  return {
    path: "/kubepods/pod",
    cpuUsageSeconds: 12.5,
    cpuPeriods: 100,
    cpuThrottledPeriods: 4,
    cpuThrottledSeconds: 0.25,
    memUsageBytes: 1000,
    memWorkingSetBytes: 800,
    memLimitBytes: Infinity,
    memMaxUsageBytes: 2000,
    pageFaults: 77,
    majorPageFaults: 1,
    pressure: { cpu: { some: { avg10: 2.5, avg60: 1, avg300: 0, totalUsec: 1_500_000 } } },
    subcontainers: 2,
    allocation: { cpuQuota: 1.5, cpuPeriodUsec: 100000, cpuShares: 512, cpusetCpus: "0-3,8" },
    ...over,
  };
}

function task(i: number, labels: Record<string, string>): Task {
  return taskFromPod(makePod({ name: `p${i}`, uid: uidFor(i), qos: "burstable", labels }));
}

function line(text: string, name: string, taskName: string): string | undefined {
  return text.split("\n").find((l) => l.startsWith(`${name}{`) && l.includes(`task_name="${taskName}"`));
}

test("Verifies that task metrics carry WCA names, types and the task labels, with +Inf for no limit", async () => {
  const m = new TaskMetrics({
    node: "n1",
    cgroupVersion: "v2",
    cgroupDriver: "systemd",
    podSource: "kubelet",
  });
  const t = task(1, { "app.kubernetes.io/name": "web" });
  m.update([t], new Map([[t.id, sample()]]));
  const text = await m.exposition();
  assert.match(text, /# TYPE task_cpu_usage_seconds counter/);
  assert.match(text, /# TYPE task_mem_usage_bytes gauge/);
  const cpu = line(text, "task_cpu_usage_seconds", "default/p1");
  assert.ok(cpu, text);
  assert.match(cpu, /app_kubernetes_io__name="web"/);
  assert.match(cpu, /app_kubernetes_io__qos_class="burstable"/);
  assert.match(cpu, new RegExp(`task_id="${t.id}"`));
  assert.match(cpu, / 12\.5$/);
  assert.match(line(text, "task_mem_limit_bytes", "default/p1") ?? "", / \+Inf$/);
  assert.match(line(text, "task_pressure_cpu_some_seconds", "default/p1") ?? "", / 1\.5$/);
  assert.match(line(text, "task_pressure_cpu_some_avg10_ratio", "default/p1") ?? "", / 0\.025$/);
  assert.equal(
    line(text, "task_pressure_io_some_seconds", "default/p1"),
    undefined,
    "no io.pressure read, no series",
  );
  assert.match(line(text, "task_requested_cpus", "default/p1") ?? "", / 0\.25$/);
  assert.match(line(text, "task_requested_mem_bytes", "default/p1") ?? "", / 134217728$/);
  assert.match(text, /task_allocation\{[^}]*allocation_type="cpuset_cpus"\} 5/);
  assert.match(
    text,
    /kubewise_agent_info\{node="n1",cgroup_version="v2",cgroup_driver="systemd",pod_source="kubelet"\} 1/,
  );
});

test("Verifies that counters follow the kernel value, pods that are gone lose their series, and new label keys are taken in", async () => {
  const m = new TaskMetrics();
  const a = task(1, { app: "a" });
  const b = task(2, { app: "b" });
  m.update(
    [a, b],
    new Map([
      [a.id, sample()],
      [b.id, sample()],
    ]),
  );
  m.update([a], new Map([[a.id, sample({ cpuUsageSeconds: 20 })]]));
  let text = await m.exposition();
  assert.match(line(text, "task_cpu_usage_seconds", "default/p1") ?? "", / 20$/);
  assert.equal(line(text, "task_cpu_usage_seconds", "default/p2"), undefined);
  const c = task(3, { "team.example.com/owner": "ops" });
  m.update(
    [a, c],
    new Map([
      [a.id, sample()],
      [c.id, sample()],
    ]),
  );
  text = await m.exposition();
  assert.match(line(text, "task_up", "default/p3") ?? "", /team_example_com__owner="ops"/);
  assert.doesNotMatch(line(text, "task_up", "default/p1") ?? "", /team_example_com__owner/);
});

test("Verifies that agent counters count iterations and allocation outcomes", async () => {
  const m = new TaskMetrics();
  m.recordIteration({ ok: true, durationSeconds: 0.01, tasks: 3, read: 2 });
  m.recordIteration({ ok: false, durationSeconds: 0.02, tasks: 0, read: 0 });
  m.recordAllocations([
    { taskId: "x", taskName: "d/x", type: "cpu_quota", outcome: "updated" },
    { taskId: "y", taskName: "d/y", type: "cpu_quota", outcome: "updated" },
  ]);
  const text = await m.exposition();
  assert.match(text, /kubewise_agent_iterations_total\{result="ok"\} 1/);
  assert.match(text, /kubewise_agent_iterations_total\{result="failed"\} 1/);
  assert.match(text, /kubewise_agent_tasks\{state="no_cgroup"\} 1/);
  assert.match(text, /kubewise_agent_allocations_total\{allocation_type="cpu_quota",outcome="updated"\} 2/);
});

test("Verifies that the metrics file is replaced whole, with no temporary file left behind", () => {
  const dir = makeTempRoot("kubewise-metrics-");
  try {
    const file = join(dir, "metrics.prom");
    writeMetricsFile(file, "a 1\n");
    writeMetricsFile(file, "b 2\n");
    assert.equal(readFileSync(file, "utf8"), "b 2\n");
    assert.equal(existsSync(`${file}.tmp`), false);
  } finally {
    removeTree(dir);
  }
});

test("Verifies HOST:PORT parsing, IPv6 included, and a clear error otherwise", () => {
  assert.deepEqual(parseListen("0.0.0.0:9477"), { host: "0.0.0.0", port: 9477 });
  assert.deepEqual(parseListen("[::1]:80"), { host: "::1", port: 80 });
  assert.deepEqual(parseListen(":9100"), { host: "0.0.0.0", port: 9100 });
  assert.throws(() => parseListen("9477"), AgentError);
  assert.throws(() => parseListen("h:99999"), /not HOST:PORT/);
});

test("Verifies that the server serves /metrics in Prometheus format and /healthz", async () => {
  const m = new TaskMetrics();
  const t = task(1, {});
  m.update([t], new Map([[t.id, sample()]]));
  const server = new MetricsServer(m, { host: "127.0.0.1", port: 0 });
  const { port } = await server.start();
  try {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /text\/plain; version=0\.0\.4/);
    assert.match(await res.text(), /task_mem_usage_bytes\{/);
    assert.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200);
    assert.equal((await fetch(`http://127.0.0.1:${port}/nope`)).status, 404);
  } finally {
    await server.stop();
  }
});

test("Verifies that /healthz answers 503 with the last error while the loop is unhealthy, and /livez 200 regardless", async () => {
  let health = { healthy: true, failuresInARow: 0 } as {
    healthy: boolean;
    failuresInARow: number;
    lastError?: string;
  };
  const server = new MetricsServer(new TaskMetrics(), { host: "127.0.0.1", port: 0 }, () => health);
  const { port } = await server.start();
  try {
    const get = async (path: string): Promise<[number, string]> => {
      const res = await fetch(`http://127.0.0.1:${port}${path}`);
      return [res.status, await res.text()];
    };
    assert.deepEqual(await get("/healthz"), [200, "ok\n"]);
    health = { healthy: false, failuresInARow: 4, lastError: "cannot list pods from kubelet: ECONNREFUSED" };
    assert.deepEqual(await get("/healthz"), [
      503,
      "unhealthy: 4 iterations in a row failed; last error: cannot list pods from kubelet: ECONNREFUSED\n",
    ]);
    assert.deepEqual(await get("/livez"), [200, "ok\n"]);
    health = { healthy: true, failuresInARow: 0 };
    assert.equal((await get("/healthz"))[0], 200);
  } finally {
    await server.stop();
  }
});

test("Verifies WCA's task_mem_soft_limit_bytes, task_last_seen, allocation, allocations_count and allocations_ignored_count", async () => {
  const m = new TaskMetrics();
  const t = task(1, { app: "a" });
  m.update(
    [t],
    new Map([[t.id, sample({ memSoftLimitBytes: 64 * 2 ** 20, lastSeenSeconds: 1_700_000_000.5 })]]),
  );
  const none = task(2, { app: "b" });
  m.update(
    [t, none],
    new Map([
      [t.id, sample({ memSoftLimitBytes: 64 * 2 ** 20, lastSeenSeconds: 1_700_000_000.5 })],
      [none.id, sample({ memSoftLimitBytes: Infinity })],
    ]),
  );
  m.recordAllocations([
    { taskId: t.id, taskName: t.name, type: "cpu_quota", outcome: "updated" },
    { taskId: t.id, taskName: t.name, type: "cpu_shares", outcome: "unchanged" },
    { taskId: t.id, taskName: t.name, type: "cpuset_cpus", outcome: "refused", reason: "cpu-manager-static" },
  ]);
  const text = await m.exposition();
  assert.match(line(text, "task_mem_soft_limit_bytes", "default/p1") ?? "", / 67108864$/);
  assert.match(line(text, "task_mem_soft_limit_bytes", "default/p2") ?? "", / \+Inf$/);
  assert.match(line(text, "task_last_seen", "default/p1") ?? "", / 1700000000\.5$/);
  assert.equal(line(text, "task_last_seen", "default/p2"), undefined, "no read time, no series");
  assert.match(line(text, "allocation", "default/p1") ?? "", /allocation_type="cpu_quota"\} 1\.5$/);
  assert.match(line(text, "task_allocation", "default/p1") ?? "", /allocation_type="cpu_quota"\} 1\.5$/);
  assert.match(text, /^allocations_count 1$/m);
  assert.match(text, /^allocations_ignored_count 1$/m);
});
