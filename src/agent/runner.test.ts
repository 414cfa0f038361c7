import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { V1Pod } from "@kubernetes/client-node";
import { silentLogger } from "../log.js";
import { RuleAllocator } from "./allocator.js";
import { AllocationApplier } from "./apply.js";
import { CgroupReader, detectCgroupLayout } from "./cgroups.js";
import { AgentError } from "./errors.js";
import { TaskMetrics } from "./metrics.js";
import type { PodSource } from "./podsource.js";
import { AgentRunner } from "./runner.js";
import { taskFromPod } from "./tasks.js";
import { buildTree, fixtureValues, makePod, makeTempRoot, removeTree, uidFor } from "./testdata/fixtures.js";

/** ListedPods is a pod source over a list the test changes, failing when told to. */
class ListedPods implements PodSource {
  readonly name = "test";
  pods: V1Pod[] = [];
  fail = false;
  calls = 0;
  async listPods(): Promise<V1Pod[]> {
    this.calls++;
    if (this.fail) throw new AgentError("pod-source", "kubelet unreachable");
    return this.pods;
  }
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
