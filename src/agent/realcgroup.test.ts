import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { silentLogger } from "../log.js";
import { RuleAllocator } from "./allocator.js";
import { AllocationApplier, type AllocationResult } from "./apply.js";
import {
  CgroupReader,
  detectCgroupLayout,
  kubepodsPath,
  podCgroupPath,
  type CgroupLayout,
} from "./cgroups.js";
import { taskFromPod, type Task } from "./tasks.js";
import { containerId, makePod } from "./testdata/fixtures.js";

/**
 * The agent against the kernel itself: a pod-shaped cgroup made where a kubelet would make it,
 * a busy process moved in, and the reader and allocator pointed at /sys/fs/cgroup. Runs only
 * where the machine allows it (root, writable cgroups, and no kubelet whose tree we could
 * disturb); otherwise the test is skipped and says why.
 */

const ROOT = "/sys/fs/cgroup";
const uid = `7e57c9a0-0000-4000-8000-${String(process.pid).padStart(12, "0")}`;

interface Made {
  dirs: string[];
  layout: CgroupLayout;
  task: Task;
  busy: ChildProcess;
}

function whyNot(): string | undefined {
  if (process.platform !== "linux") return "not Linux";
  if (!existsSync(ROOT)) return `${ROOT} does not exist`;
  if (process.getuid?.() !== 0) return "not root: cannot create cgroups";
  let layout: CgroupLayout;
  try {
    layout = detectCgroupLayout(ROOT, "cgroupfs");
  } catch (err) {
    return (err as Error).message;
  }
  const probe = layout.controllers.cpu ?? ROOT;
  if (existsSync(probe + kubepodsPath("cgroupfs")) || existsSync(probe + kubepodsPath("systemd"))) {
    return "this machine has a kubelet's kubepods cgroup; not touching it";
  }
  if (layout.version === "v1" && (!layout.controllers.cpu || !layout.controllers.cpuacct))
    return "v1 without cpu/cpuacct";
  return undefined;
}

function write(file: string, text: string): void {
  writeFileSync(file, text);
}

/** makeCgroups creates kubepods/burstable/pod<uid>/<container> and moves a busy loop into it. */
function makeCgroups(): Made {
  const layout = detectCgroupLayout(ROOT, "cgroupfs");
  const pod = makePod({ name: "real", uid, qos: "burstable", containers: 1 });
  const task = taskFromPod(pod);
  const podPath = podCgroupPath("cgroupfs", "burstable", uid);
  const container = `${podPath}/${containerId(uid, 0)}`;
  const dirs: string[] = [];
  const hierarchies =
    layout.version === "v2"
      ? [ROOT]
      : ([layout.controllers.cpu, layout.controllers.cpuacct, layout.controllers.cpuset].filter(
          Boolean,
        ) as string[]);
  for (const base of [...new Set(hierarchies)]) {
    for (const rel of ["/kubepods", "/kubepods/burstable", podPath, container]) {
      const dir = base + rel;
      mkdirSync(dir);
      dirs.push(dir);
      if (base === layout.controllers.cpuset && layout.version === "v1") {
        // A new v1 cpuset has no cpus or mems; copy the parent's, as the kubelet does.
        const parent = join(dir, "..");
        write(join(dir, "cpuset.cpus"), readFileSync(join(parent, "cpuset.cpus"), "utf8"));
        write(join(dir, "cpuset.mems"), readFileSync(join(parent, "cpuset.mems"), "utf8"));
      }
      if (layout.version === "v2" && rel !== container)
        write(join(dir, "cgroup.subtree_control"), "+cpu +cpuset");
    }
  }
  const busy = spawn("sh", ["-c", "while :; do :; done"], { stdio: "ignore" });
  const procs =
    layout.version === "v2"
      ? [ROOT + container]
      : [layout.controllers.cpu + container, layout.controllers.cpuacct + container];
  for (const dir of procs) write(join(dir, "cgroup.procs"), String(busy.pid));
  return { dirs, layout, task, busy };
}

async function cleanUp(made: Made | undefined): Promise<void> {
  if (!made) return;
  if (made.busy.exitCode === null) {
    const exited = new Promise((r) => made.busy.once("exit", r));
    made.busy.kill("SIGKILL");
    await exited;
  }
  for (const dir of [...made.dirs].reverse()) {
    try {
      rmdirSync(dir);
    } catch {
      // already gone, or busy for a moment after the kill: nothing else to do in a test
    }
  }
}

async function attempt(t: TestContext): Promise<Made | undefined> {
  const reason = whyNot();
  if (reason) {
    t.skip(`no real cgroup test: ${reason}`);
    return undefined;
  }
  try {
    return makeCgroups();
  } catch (err) {
    t.skip(`no real cgroup test: cannot create cgroups here (${(err as Error).message})`);
    return undefined;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test("Verifies on a real cgroup that cpu usage is read and a quota is written, read back and throttles", async (t) => {
  let made: Made | undefined;
  try {
    made = await attempt(t);
    if (!made) return;
    const reader = new CgroupReader(made.layout, { readAllocations: true });
    await sleep(300);
    const before = reader.readTask(made.task);
    assert.ok(before, "the pod cgroup is found where the kubelet would put it");
    assert.ok((before.cpuUsageSeconds ?? 0) > 0.05, `cpu usage ${before.cpuUsageSeconds}`);
    assert.equal(before.subcontainers, 1);
    assert.equal(before.allocation?.cpuQuota, Infinity);

    const applier = new AllocationApplier({
      layout: made.layout,
      reader,
      allocator: new RuleAllocator({ rules: [{ name: "cap", cpu_quota: "100m" }] }),
      cpuManager: { policy: "none", stateFile: "" },
      log: silentLogger,
    });
    const results = applier.apply([made.task], await reader.readTasks([made.task]));
    assert.deepEqual(
      results.map((r) => `${r.type} ${r.outcome} ${r.message}`),
      ["cpu_quota updated max -> 10000 (and in 1 container cgroup)"],
    );
    const again = applier.apply([made.task], await reader.readTasks([made.task]));
    assert.deepEqual(
      again.map((r) => r.outcome),
      ["unchanged"],
    );

    const start = reader.readTask(made.task);
    await sleep(1000);
    const end = reader.readTask(made.task);
    assert.ok(start && end);
    const used = (end.cpuUsageSeconds ?? 0) - (start.cpuUsageSeconds ?? 0);
    assert.ok(used < 0.3, `a 100m quota let the loop use ${used} s of cpu in 1 s`);
    assert.ok((end.cpuThrottledPeriods ?? 0) > (start.cpuThrottledPeriods ?? 0), "throttling is counted");
    assert.ok((end.cpuThrottledSeconds ?? 0) > 0);
  } finally {
    await cleanUp(made);
  }
});

test("Verifies on a real cgroup that shares and a cpuset (narrowed, then widened) are applied as the kernel allows", async (t) => {
  let made: Made | undefined;
  try {
    made = await attempt(t);
    if (!made) return;
    const cpus = readFileSync(
      join(
        made.layout.controllers.cpuset ?? ROOT,
        made.layout.version === "v2" ? "cpuset.cpus.effective" : "cpuset.cpus",
      ),
      "utf8",
    ).trim();
    const first = cpus.split(/[-,]/)[0] ?? "0";
    const reader = new CgroupReader(made.layout, { readAllocations: true });
    const run = async (cpuset: string): Promise<string[]> => {
      const applier = new AllocationApplier({
        layout: made!.layout,
        reader,
        allocator: new RuleAllocator({ rules: [{ name: "r", cpu_shares: 512, cpuset_cpus: cpuset }] }),
        cpuManager: { policy: "none", stateFile: "" },
        log: silentLogger,
      });
      const results = applier.apply([made!.task], await reader.readTasks([made!.task]));
      return results.map((r) => `${r.type} ${r.outcome}${r.message ? ` ${r.message}` : ""}`).sort();
    };
    const narrowed = await run(first);
    assert.equal(narrowed.length, 2, narrowed.join("; "));
    assert.match(narrowed[0] ?? "", /^cpu_shares updated/);
    assert.match(narrowed[1] ?? "", new RegExp(`^cpuset_cpus updated .* -> ${first}$`));
    assert.equal(reader.readTask(made.task)?.allocation?.cpusetCpus, first);
    const widened = await run(cpus);
    assert.deepEqual(widened, ["cpu_shares unchanged", `cpuset_cpus updated ${first} -> ${cpus}`]);
  } finally {
    await cleanUp(made);
  }
});

test("Verifies on a real v1 cgroup that a pod quota below a container's quota is applied (containers first) and raised again (pod first)", async (t) => {
  let made: Made | undefined;
  try {
    made = await attempt(t);
    if (!made) return;
    if (made.layout.version !== "v1") {
      t.skip("v2 allows a parent quota below a child's; the order matters on v1");
      return;
    }
    const podDir = `${made.layout.controllers.cpu}${podCgroupPath("cgroupfs", "burstable", uid)}`;
    const container = `${podDir}/${containerId(uid, 0)}`;
    const quota = (dir: string): string => readFileSync(join(dir, "cpu.cfs_quota_us"), "utf8").trim();
    // The container's own limit, as the runtime sets it: 500m.
    write(join(container, "cpu.cfs_quota_us"), "50000");
    // The kernel itself refuses a pod quota below it: writing the pod alone (the old way) fails.
    assert.throws(() => write(join(podDir, "cpu.cfs_quota_us"), "10000"), /EINVAL/);
    const reader = new CgroupReader(made.layout, { readAllocations: true });
    const run = async (cpuQuota: string): Promise<AllocationResult[]> => {
      const applier = new AllocationApplier({
        layout: made!.layout,
        reader,
        allocator: new RuleAllocator({ rules: [{ name: "cap", cpu_quota: cpuQuota }] }),
        cpuManager: { policy: "none", stateFile: "" },
        log: silentLogger,
      });
      return applier.apply([made!.task], await reader.readTasks([made!.task]));
    };
    const podPath = podCgroupPath("cgroupfs", "burstable", uid);
    const containerPath = `${podPath}/${containerId(uid, 0)}`;
    const [lowered] = await run("100m");
    assert.equal(lowered?.outcome, "updated", lowered?.message);
    assert.equal(lowered?.message, "max -> 10000 (and in 1 container cgroup)");
    assert.deepEqual(
      lowered?.cgroups?.map((c) => `${c.path} ${c.from} -> ${c.to} ${c.outcome}`),
      [`${containerPath} 50000 -> 10000 updated`, `${podPath} max -> 10000 updated`],
    );
    assert.deepEqual([quota(container), quota(podDir)], ["10000", "10000"]);
    assert.deepEqual(
      (await run("100m")).map((r) => r.outcome),
      ["unchanged"],
    );

    // Raising: the container alone cannot go above its pod, so the pod goes first.
    assert.throws(() => write(join(container, "cpu.cfs_quota_us"), "80000"), /EINVAL/);
    const [raised] = await run("800m");
    assert.equal(raised?.outcome, "updated", raised?.message);
    assert.deepEqual(
      raised?.cgroups?.map((c) => `${c.path} ${c.outcome}`),
      [`${podPath} updated`, `${containerPath} updated`],
    );
    assert.deepEqual([quota(container), quota(podDir)], ["80000", "80000"]);
  } finally {
    await cleanUp(made);
  }
});
