import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { V1Pod } from "@kubernetes/client-node";
import { pino } from "pino";
import { silentLogger, type Logger } from "../log.js";
import { RuleAllocator } from "./allocator.js";
import { AllocationApplier } from "./apply.js";
import { CgroupReader, detectCgroupLayout } from "./cgroups.js";
import { AgentError } from "./errors.js";
import { TaskMetrics } from "./metrics.js";
import type { PodSource } from "./podsource.js";
import { AgentRunner, REPEAT_LOG_EVERY, UNHEALTHY_AFTER } from "./runner.js";
import { taskFromPod } from "./tasks.js";
import { buildTree, fixtureValues, makePod, makeTempRoot, removeTree, uidFor } from "./testdata/fixtures.js";

/** ListedPods is a pod source over a list the test changes, failing when told to. */
class ListedPods implements PodSource {
  readonly name = "test";
  pods: V1Pod[] = [];
  fail = false;
  /** error, when set, is thrown instead of the usual pod-source failure. */
  error: Error | undefined;
  calls = 0;
  async listPods(): Promise<V1Pod[]> {
    this.calls++;
    if (this.error) throw this.error;
    if (this.fail) throw new AgentError("pod-source", "kubelet unreachable");
    return this.pods;
  }
}

interface LogLine {
  level: number;
  msg: string;
  err?: unknown;
  times?: number;
  failed?: number;
}

/** capturingLogger collects the log lines at info and above. */
function capturingLogger(): { log: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const log: Logger = pino(
    { level: "info" },
    { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) },
  );
  return { log, lines };
}

function tree(pods: V1Pod[]): string {
  const root = makeTempRoot();
  buildTree(
    root,
    { version: "v2", driver: "systemd" },
    pods.map((p, i) => {
      const t = taskFromPod(p);
      return { qos: t.qos, uid: t.cgroupUid, containers: t.containers, values: fixtureValues(i) };
    }),
  );
  return root;
}

test("Verifies that one iteration lists, reads, allocates, publishes and writes the metrics file", async () => {
  const pods = [
    makePod({ name: "a", uid: uidFor(1), qos: "burstable" }),
    makePod({ name: "b", uid: uidFor(2), qos: "burstable", namespace: "other" }),
  ];
  const root = tree(pods);
  try {
    const source = new ListedPods();
    source.pods = pods;
    const layout = detectCgroupLayout(root, "systemd");
    const reader = new CgroupReader(layout, { readAllocations: true });
    const metrics = new TaskMetrics();
    const file = join(root, "metrics.prom");
    const runner = new AgentRunner({
      source,
      reader,
      metrics,
      namespaces: ["default"],
      intervalMs: 1000,
      applier: new AllocationApplier({
        layout,
        reader,
        allocator: new RuleAllocator({ rules: [{ name: "cap", cpu_quota: "2" }] }),
        cpuManager: { policy: "none", stateFile: "" },
        log: silentLogger,
      }),
      metricsFile: file,
      log: silentLogger,
    });
    const report = await runner.runOnce();
    assert.equal(report.ok, true);
    assert.deepEqual(
      report.tasks.map((t) => t.name),
      ["default/a"],
    );
    assert.equal(report.samples.size, 1);
    assert.deepEqual(
      report.allocations.map((r) => `${r.type} ${r.outcome}`),
      ["cpu_quota updated"],
    );
    const text = readFileSync(file, "utf8");
    assert.match(text, /task_cpu_usage_seconds\{[^}]*task_name="default\/a"[^}]*\} 1\.000123/);
    assert.doesNotMatch(text, /default\/b|other\/b/);
    assert.match(
      text,
      /task_allocation\{[^}]*allocation_type="cpu_quota"\} 2/,
      "the read-back value after writing",
    );
  } finally {
    removeTree(root);
  }
});

test("Verifies that a failing pod source skips the iteration, keeps the loop going, and stop() ends it", async () => {
  const pods = [makePod({ name: "a", uid: uidFor(1), qos: "guaranteed" })];
  const root = tree(pods);
  try {
    const source = new ListedPods();
    source.pods = pods;
    source.fail = true;
    const metrics = new TaskMetrics();
    const runner = new AgentRunner({
      source,
      reader: new CgroupReader(detectCgroupLayout(root, "systemd")),
      metrics,
      namespaces: ["default"],
      intervalMs: 20,
      log: silentLogger,
    });
    const failed = await runner.runOnce();
    assert.equal(failed.ok, false);
    assert.match(failed.error?.message ?? "", /kubelet unreachable/);
    source.fail = false;
    runner.start();
    const deadline = Date.now() + 5000;
    while (source.calls < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    await runner.stop();
    const calls = source.calls;
    assert.ok(calls >= 4, `only ${calls} iterations`);
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(source.calls, calls, "no iteration after stop()");
    const text = await metrics.exposition();
    assert.match(text, /kubewise_agent_iterations_total\{result="failed"\} 1/);
    assert.match(text, /task_up\{[^}]*task_name="default\/a"/);
  } finally {
    removeTree(root);
  }
});

test("Verifies that a repeated failure is logged once without a stack, then with its count every REPEAT_LOG_EVERY", async (t) => {
  const root = tree([]);
  t.after(() => removeTree(root));
  const source = new ListedPods();
  source.error = new AgentError(
    "config",
    "cannot use the kubelet credentials: ssl.client_cert_path: no such file",
  );
  const { log, lines } = capturingLogger();
  const runner = new AgentRunner({
    source,
    reader: new CgroupReader(detectCgroupLayout(root, "systemd")),
    metrics: new TaskMetrics(),
    namespaces: ["default"],
    intervalMs: 1000,
    log,
  });
  for (let i = 0; i < REPEAT_LOG_EVERY * 2 + 1; i++) await runner.runOnce();
  assert.equal(lines.length, 3, JSON.stringify(lines));
  assert.equal(lines[0]?.msg, "iteration failed");
  assert.equal(lines[0]?.err, source.error.message, "the message, not a serialised error with its stack");
  assert.deepEqual(
    lines.slice(1).map((l) => [l.msg, l.times]),
    [
      ["iterations still failing with the same error", REPEAT_LOG_EVERY],
      ["iterations still failing with the same error", REPEAT_LOG_EVERY * 2],
    ],
  );
  // A different error is news; a bug (not an AgentError) keeps its stack.
  source.error = new TypeError("x is undefined");
  await runner.runOnce();
  await runner.runOnce();
  assert.equal(lines.length, 4);
  assert.match(JSON.stringify(lines[3]?.err), /"stack":"TypeError: x is undefined/);
  source.error = undefined;
  await runner.runOnce();
  assert.deepEqual([lines[4]?.msg, lines[4]?.failed], ["iterations work again", REPEAT_LOG_EVERY * 2 + 3]);
});

test("Verifies that health() turns unhealthy after UNHEALTHY_AFTER failed iterations in a row, with the last error", async (t) => {
  const root = tree([]);
  t.after(() => removeTree(root));
  const source = new ListedPods();
  const runner = new AgentRunner({
    source,
    reader: new CgroupReader(detectCgroupLayout(root, "systemd")),
    metrics: new TaskMetrics(),
    namespaces: ["default"],
    intervalMs: 1000,
    log: silentLogger,
  });
  assert.deepEqual(
    runner.health(),
    { healthy: true, failuresInARow: 0 },
    "healthy before the first iteration",
  );
  source.fail = true;
  for (let i = 1; i < UNHEALTHY_AFTER; i++) {
    await runner.runOnce();
    assert.equal(runner.health().healthy, true, `${i} failures are tolerated`);
  }
  await runner.runOnce();
  assert.deepEqual(runner.health(), {
    healthy: false,
    failuresInARow: UNHEALTHY_AFTER,
    lastError: "kubelet unreachable",
  });
  source.fail = false;
  await runner.runOnce();
  assert.deepEqual(runner.health(), { healthy: true, failuresInARow: 0 });
});
