import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { silentLogger } from "../log.js";
import { RuleAllocator, type Allocator } from "./allocator.js";
import { AllocationApplier, cpuManagerPolicy, type AllocationResult } from "./apply.js";
import {
  CgroupReader,
  containerCgroupPath,
  detectCgroupLayout,
  podCgroupPath,
  type CgroupLayout,
  type TaskAllocationState,
} from "./cgroups.js";
import { parseAgentConfig } from "./config.js";
import { taskFromPod, type QosClass, type Task } from "./tasks.js";
import {
  buildTree,
  fixtureValues,
  makePod,
  makeTempRoot,
  removeTree,
  uidFor,
  type FixtureLayout,
} from "./testdata/fixtures.js";

interface Setup {
  root: string;
  layout: CgroupLayout;
  reader: CgroupReader;
  tasks: Task[];
  stateFile: string;
}

function setUp(fixture: FixtureLayout, qos: QosClass[], labels: Record<string, string>[] = []): Setup {
  const root = makeTempRoot();
  const tasks = qos.map((q, i) =>
    taskFromPod(makePod({ name: `p${i}`, uid: uidFor(i), qos: q, containers: 2, labels: labels[i] ?? {} })),
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
  const stateFile = join(root, "cpu_manager_state");
  writeFileSync(stateFile, JSON.stringify({ policyName: "none", defaultCpuSet: "", checksum: 1 }));
  const layout = detectCgroupLayout(root, fixture.driver);
  return { root, layout, reader: new CgroupReader(layout, { readAllocations: true }), tasks, stateFile };
}

function applier(s: Setup, allocator: Allocator): AllocationApplier {
  return new AllocationApplier({
    layout: s.layout,
    reader: s.reader,
    allocator,
    cpuManager: { policy: "auto", stateFile: s.stateFile },
    log: silentLogger,
  });
}

async function round(s: Setup, a: AllocationApplier): Promise<AllocationResult[]> {
  return a.apply(s.tasks, await s.reader.readTasks(s.tasks));
}

function outcomes(results: AllocationResult[]): string[] {
  return results.map((r) => `${r.taskName} ${r.type} ${r.outcome}${r.reason ? ` ${r.reason}` : ""}`).sort();
}

const rules = parseAgentConfig({
  allocation: { rules: [{ name: "all", cpu_quota: "1500m", cpu_shares: 512, cpuset_cpus: "1-2" }] },
}).allocation.rules;

for (const fixture of [
  { version: "v2", driver: "systemd" },
  { version: "v1", driver: "cgroupfs" },
] as FixtureLayout[]) {
  test(`Verifies on ${fixture.version} that allocations are written, read back, not rewritten, and rewritten after a kubelet reset`, async () => {
    const s = setUp(fixture, ["burstable", "burstable"]);
    try {
      const a = applier(s, new RuleAllocator({ rules }));
      const first = await round(s, a);
      assert.deepEqual(outcomes(first), [
        "default/p0 cpu_quota updated",
        "default/p0 cpu_shares updated",
        "default/p0 cpuset_cpus updated",
        "default/p1 cpu_quota updated",
        "default/p1 cpu_shares updated",
        "default/p1 cpuset_cpus updated",
      ]);
      const path = podCgroupPath(fixture.driver, "burstable", s.tasks[0]!.cgroupUid);
      const cpu = s.layout.controllers.cpu + path;
      const cpuset = s.layout.controllers.cpuset + path;
      if (fixture.version === "v2") {
        assert.equal(readFileSync(join(cpu, "cpu.max"), "utf8"), "150000 100000");
        assert.equal(readFileSync(join(cpu, "cpu.weight"), "utf8"), "59", "512 shares is weight 59");
      } else {
        assert.equal(readFileSync(join(cpu, "cpu.cfs_quota_us"), "utf8"), "150000");
        assert.equal(readFileSync(join(cpu, "cpu.shares"), "utf8"), "512");
      }
      assert.equal(readFileSync(join(cpuset, "cpuset.cpus"), "utf8"), "1-2");

      // Only what differs is written: with nothing changed, no file is touched.
      const files = ["cpu.max", "cpu.cfs_quota_us", "cpu.shares", "cpu.weight"].map((f) => join(cpu, f));
      const old = new Date(2000, 0, 1);
      for (const f of files) if (statSync(f, { throwIfNoEntry: false })) utimesSync(f, old, old);
      const second = await round(s, a);
      assert.ok(
        second.every((r) => r.outcome === "unchanged"),
        outcomes(second).join("; "),
      );
      for (const f of files) {
        const st = statSync(f, { throwIfNoEntry: false });
        if (st) assert.equal(st.mtime.getTime(), old.getTime(), `${f} was rewritten`);
      }

      // The kubelet's sync resets the quota: the next iteration notices and writes it again.
      if (fixture.version === "v2") writeFileSync(join(cpu, "cpu.max"), "max 100000\n");
      else writeFileSync(join(cpu, "cpu.cfs_quota_us"), "-1\n");
      const third = await round(s, a);
      assert.deepEqual(
        third
          .filter((r) => r.outcome !== "unchanged")
          .map((r) => `${r.taskName} ${r.type} ${r.outcome} ${r.message}`),
        ["default/p0 cpu_quota updated max -> 150000"],
      );
    } finally {
      removeTree(s.root);
    }
  });
}

test("Verifies that a v1 cpuset narrows containers before the pod and widens the pod before containers", async () => {
  const s = setUp({ version: "v1", driver: "systemd" }, ["guaranteed"]);
  try {
    const dir = s.layout.controllers.cpuset + podCgroupPath("systemd", "guaranteed", s.tasks[0]!.cgroupUid);
    const containers = s.tasks[0]!.containers.map((c) => join(dir, `cri-containerd-${c.id}.scope`));
    const narrow = applier(s, new RuleAllocator({ rules: [{ name: "n", cpuset_cpus: "3" }] }));
    assert.deepEqual(outcomes(await round(s, narrow)), ["default/p0 cpuset_cpus updated"]);
    for (const c of [dir, ...containers]) assert.equal(readFileSync(join(c, "cpuset.cpus"), "utf8"), "3");
    const wide = applier(s, new RuleAllocator({ rules: [{ name: "w", cpuset_cpus: "0-5" }] }));
    assert.deepEqual(outcomes(await round(s, wide)), ["default/p0 cpuset_cpus updated"]);
    for (const c of [dir, ...containers]) assert.equal(readFileSync(join(c, "cpuset.cpus"), "utf8"), "0-5");
  } finally {
    removeTree(s.root);
  }
});

test("Verifies refusals end to end: mixed QoS shares, cpusets under the static CPU manager", async () => {
  const s = setUp({ version: "v2", driver: "cgroupfs" }, ["burstable", "guaranteed"]);
  try {
    writeFileSync(s.stateFile, JSON.stringify({ policyName: "static", defaultCpuSet: "0-7", checksum: 1 }));
    const a = applier(s, new RuleAllocator({ rules: [{ name: "r", cpu_shares: 2048, cpuset_cpus: "1" }] }));
    const results = await round(s, a);
    assert.deepEqual(outcomes(results), [
      "default/p0 cpu_shares refused mixed-qos",
      "default/p0 cpuset_cpus refused cpu-manager-static",
      "default/p1 cpu_shares refused mixed-qos",
      "default/p1 cpuset_cpus refused cpu-manager-static",
    ]);
    const weight = readFileSync(
      join(s.root, podCgroupPath("cgroupfs", "guaranteed", s.tasks[1]!.cgroupUid), "cpu.weight"),
      "utf8",
    );
    assert.equal(weight, "100\n", "nothing was written");
  } finally {
    removeTree(s.root);
  }
});

test("Verifies that a failed write and a value the kernel did not keep are reported, not thrown", async () => {
  const s = setUp({ version: "v2", driver: "systemd" }, ["burstable", "burstable"]);
  try {
    const dir0 = join(s.root, podCgroupPath("systemd", "burstable", s.tasks[0]!.cgroupUid));
    rmSync(join(dir0, "cpu.weight"));
    mkdirSync(join(dir0, "cpu.weight"));
    writeFileSync(join(dir0, "cpu.weight", "x"), "");
    class StaleReader extends CgroupReader {
      override readAllocation(path: string): TaskAllocationState {
        // The kernel clamps or ignores: what is read back is not what was written.
        return path.includes(s.tasks[1]!.cgroupUid.replace(/-/g, "_"))
          ? { ...super.readAllocation(path), cpuWeight: 7 }
          : super.readAllocation(path);
      }
    }
    const reader = new StaleReader(s.layout, { readAllocations: true });
    const a = new AllocationApplier({
      layout: s.layout,
      reader,
      allocator: new RuleAllocator({ rules: [{ name: "r", cpu_shares: 512 }] }),
      cpuManager: { policy: "none", stateFile: "/nonexistent" },
      log: silentLogger,
    });
    const samples = await reader.readTasks(s.tasks);
    // The directory in place of cpu.weight reads as "no value", which the checks refuse first.
    const results = a.apply(s.tasks, samples);
    assert.deepEqual(outcomes(results), [
      "default/p0 cpu_shares refused controller-missing",
      "default/p1 cpu_shares failed not-applied",
    ]);
    assert.match(
      results.find((r) => r.reason === "not-applied")?.message ?? "",
      /wrote cpu_shares 59 .* but read back 7/,
    );
    samples.get(s.tasks[0]!.id)!.allocation!.cpuWeight = 100;
    const forced = a.apply(s.tasks, samples);
    assert.match(forced.find((r) => r.taskName === "default/p0")?.reason ?? "", /write-failed/);
  } finally {
    removeTree(s.root);
  }
});

test("Verifies that the CPU manager policy comes from the config, the state file, or is unknown", () => {
  const root = makeTempRoot();
  try {
    const file = join(root, "state");
    assert.equal(cpuManagerPolicy({ policy: "static", stateFile: file }).policy, "static");
    assert.equal(cpuManagerPolicy({ policy: "auto", stateFile: file }).policy, "unknown");
    writeFileSync(file, '{"policyName":"static","defaultCpuSet":"0,3-7","entries":{},"checksum":14413152}');
    assert.deepEqual(cpuManagerPolicy({ policy: "auto", stateFile: file }), {
      policy: "static",
      source: `policy static in ${file}`,
    });
    writeFileSync(file, "{");
    assert.equal(cpuManagerPolicy({ policy: "auto", stateFile: file }).policy, "unknown");
  } finally {
    removeTree(root);
  }
});

for (const fixture of [
  { version: "v1", driver: "cgroupfs" },
  { version: "v2", driver: "systemd" },
] as FixtureLayout[]) {
  test(`Verifies on ${fixture.version} that a cpu quota reaches the containers: pod first when raising, containers first when lowering`, async () => {
    // Pod 1 of the fixture: pod and both containers at 50000 µs (500m), the containers' own limit.
    const s = setUp(fixture, ["burstable", "burstable"]);
    try {
      const task = s.tasks[1]!;
      const podPath = podCgroupPath(fixture.driver, "burstable", task.cgroupUid);
      const containerPaths = task.containers.map((c) => containerCgroupPath(fixture.driver, podPath, c));
      const file = fixture.version === "v2" ? "cpu.max" : "cpu.cfs_quota_us";
      const quotas = (): string[] =>
        [podPath, ...containerPaths].map(
          (p) =>
            readFileSync(join(s.layout.controllers.cpu + p, file), "utf8")
              .trim()
              .split(" ")[0]!,
        );
      const only = (r: AllocationResult[]): AllocationResult => r.find((x) => x.taskId === task.id)!;
      const run = async (cpu_quota: string): Promise<AllocationResult> =>
        only(await round(s, applier(s, new RuleAllocator({ rules: [{ name: "q", cpu_quota }] }))));

      const raised = await run("1500m");
      assert.equal(raised.outcome, "updated");
      assert.equal(raised.message, "50000 -> 150000 (and in 2 container cgroups)");
      assert.deepEqual(
        raised.cgroups?.map((c) => `${c.path} ${c.from} -> ${c.to} ${c.outcome}`),
        [podPath, ...containerPaths].map((p) => `${p} 50000 -> 150000 updated`),
      );
      assert.deepEqual(quotas(), ["150000", "150000", "150000"]);

      const lowered = await run("200m");
      assert.equal(lowered.outcome, "updated");
      assert.deepEqual(
        lowered.cgroups?.map((c) => c.path),
        [...containerPaths, podPath],
      );
      assert.deepEqual(quotas(), ["20000", "20000", "20000"]);

      // The runtime resets one container's quota: only that container is written again.
      const c0 = join(s.layout.controllers.cpu + containerPaths[0]!, file);
      writeFileSync(c0, fixture.version === "v2" ? "50000 100000\n" : "50000\n");
      const again = await run("200m");
      assert.equal(again.outcome, "updated");
      assert.equal(again.message, "20000 already on the pod; set in 1 container cgroup");
      assert.deepEqual(
        again.cgroups?.map((c) => c.outcome),
        ["unchanged", "updated", "unchanged"],
        "the pod keeps its quota (so pod first, as not lowering); only c0 differed",
      );
      assert.equal((await run("200m")).outcome, "unchanged");
    } finally {
      removeTree(s.root);
    }
  });

  test(`Verifies on ${fixture.version} that a quota is refused, not reported done, when a container's cgroup is missing`, async () => {
    const s = setUp(fixture, ["burstable"]);
    try {
      const task = s.tasks[0]!;
      const podPath = podCgroupPath(fixture.driver, "burstable", task.cgroupUid);
      const gone = containerCgroupPath(fixture.driver, podPath, task.containers[1]!);
      rmSync(s.layout.controllers.cpu + gone, { recursive: true });
      const results = await round(
        s,
        applier(s, new RuleAllocator({ rules: [{ name: "q", cpu_quota: "1500m" }] })),
      );
      assert.deepEqual(outcomes(results), ["default/p0 cpu_quota refused container-cgroup-missing"]);
      assert.match(results[0]?.message ?? "", new RegExp(`container c1 .* has no cpu cgroup at ${gone}`));
      const file = fixture.version === "v2" ? "cpu.max" : "cpu.cfs_quota_us";
      assert.match(
        readFileSync(join(s.layout.controllers.cpu + podPath, file), "utf8"),
        /^(max|-1)/,
        "pod untouched",
      );
    } finally {
      removeTree(s.root);
    }
  });
}
