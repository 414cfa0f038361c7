import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  CgroupReader,
  containerCgroupPath,
  detectCgroupLayout,
  podCgroupCandidates,
  podCgroupPath,
  type CgroupDriver,
  type FileReader,
} from "./cgroups.js";
import { AgentError } from "./errors.js";
import { taskFromPod, type QosClass, type Task } from "./tasks.js";
import {
  buildTree,
  fixtureValues,
  makePod,
  makeTempRoot,
  removeTree,
  uidFor,
  type FixtureLayout,
  type FixturePod,
} from "./testdata/fixtures.js";

const uid = "1a2b3c4d-0000-1111-2222-333344445555";

test("Verifies pod cgroup paths for every QoS class and driver (guaranteed has no QoS level)", () => {
  const cases: [CgroupDriver, QosClass, string][] = [
    ["cgroupfs", "guaranteed", `/kubepods/pod${uid}`],
    ["cgroupfs", "burstable", `/kubepods/burstable/pod${uid}`],
    ["cgroupfs", "besteffort", `/kubepods/besteffort/pod${uid}`],
    ["systemd", "guaranteed", "/kubepods.slice/kubepods-pod1a2b3c4d_0000_1111_2222_333344445555.slice"],
    [
      "systemd",
      "burstable",
      "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1a2b3c4d_0000_1111_2222_333344445555.slice",
    ],
    [
      "systemd",
      "besteffort",
      "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1a2b3c4d_0000_1111_2222_333344445555.slice",
    ],
  ];
  for (const [driver, qos, want] of cases)
    assert.equal(podCgroupPath(driver, qos, uid), want, `${driver}/${qos}`);
  assert.deepEqual(podCgroupCandidates("cgroupfs", "burstable", uid), [
    `/kubepods/burstable/pod${uid}`,
    "/kubepods/burstable/pod1a2b3c4d000011112222333344445555",
  ]);
});

test("Verifies container cgroup names for containerd, CRI-O and Docker under both drivers", () => {
  const pod = "/p";
  const id = "abc123";
  const cases: [CgroupDriver, "containerd" | "cri-o" | "docker", string][] = [
    ["systemd", "containerd", "/p/cri-containerd-abc123.scope"],
    ["systemd", "cri-o", "/p/crio-abc123.scope"],
    ["systemd", "docker", "/p/docker-abc123.scope"],
    ["cgroupfs", "containerd", "/p/abc123"],
    ["cgroupfs", "cri-o", "/p/crio-abc123"],
    ["cgroupfs", "docker", "/p/abc123"],
  ];
  for (const [driver, runtime, want] of cases) {
    assert.equal(containerCgroupPath(driver, pod, { name: "c", runtime, id }), want, `${driver}/${runtime}`);
  }
});

test("Verifies layout detection: v2, v1 separate, v1 co-mounted, hybrid, and a missing root", () => {
  const layouts: [FixtureLayout, string, string, boolean][] = [
    [{ version: "v2", driver: "systemd" }, "", "", true],
    [{ version: "v1", driver: "cgroupfs" }, "/cpu", "/cpuacct", false],
    [{ version: "v1", driver: "cgroupfs", comount: true }, "/cpu", "/cpuacct", false],
    [{ version: "v1", driver: "systemd", hybrid: true }, "/cpu", "/cpuacct", true],
  ];
  for (const [fixture, cpu, cpuacct, psi] of layouts) {
    const root = makeTempRoot();
    try {
      buildTree(root, fixture, []);
      const layout = detectCgroupLayout(root, fixture.driver);
      assert.equal(layout.version, fixture.version);
      assert.equal(layout.controllers.cpu, root + cpu);
      assert.equal(layout.controllers.cpuacct, root + cpuacct);
      assert.equal(layout.psiRoot !== undefined, psi, JSON.stringify(fixture));
    } finally {
      removeTree(root);
    }
  }
  const root = makeTempRoot();
  try {
    mkdirSync(join(root, "cpu,cpuacct"));
    mkdirSync(join(root, "memory"));
    const layout = detectCgroupLayout(root, "cgroupfs");
    assert.equal(layout.controllers.cpuacct, join(root, "cpu,cpuacct"), "found by name without symlinks");
  } finally {
    removeTree(root);
  }
  assert.throws(() => detectCgroupLayout("/nonexistent/cgroup", "systemd"), AgentError);
});

function fixturePod(
  i: number,
  qos: QosClass,
  runtime: "containerd" | "cri-o" | "docker" = "containerd",
): { task: Task; fixture: FixturePod } {
  const task = taskFromPod(makePod({ name: `p${i}`, uid: uidFor(i), qos, runtime, containers: 2 }));
  return {
    task,
    fixture: { qos, uid: task.cgroupUid, containers: task.containers, values: fixtureValues(i) },
  };
}

for (const fixture of [
  { version: "v2", driver: "systemd" },
  { version: "v2", driver: "cgroupfs" },
  { version: "v1", driver: "cgroupfs" },
  { version: "v1", driver: "systemd", comount: true, hybrid: true },
] as FixtureLayout[]) {
  test(`Verifies that a ${fixture.version}/${fixture.driver} tree reads back the values written, for every QoS class and runtime`, async () => {
    const root = makeTempRoot();
    try {
      const pods = [
        fixturePod(0, "guaranteed", "containerd"),
        fixturePod(1, "burstable", "cri-o"),
        fixturePod(2, "besteffort", "docker"),
      ];
      buildTree(
        root,
        fixture,
        pods.map((p) => p.fixture),
      );
      const reader = new CgroupReader(detectCgroupLayout(root, fixture.driver), { readAllocations: true });
      const samples = await reader.readTasks(pods.map((p) => p.task));
      assert.equal(samples.size, 3);
      for (const [i, { task }] of pods.entries()) {
        const v = fixtureValues(i);
        const s = samples.get(task.id);
        assert.ok(s, task.name);
        assert.equal(s.path, podCgroupPath(fixture.driver, task.qos, task.cgroupUid));
        assert.equal(s.cpuUsageSeconds, v.cpuUsageUsec / 1e6);
        assert.equal(s.cpuPeriods, v.nrPeriods);
        assert.equal(s.cpuThrottledPeriods, v.nrThrottled);
        assert.equal(s.cpuThrottledSeconds, v.throttledUsec / 1e6);
        assert.equal(s.memUsageBytes, v.memCurrent);
        assert.equal(s.memWorkingSetBytes, v.memCurrent - v.inactiveFile);
        assert.equal(s.memLimitBytes, v.memMax === "max" ? Infinity : v.memMax);
        assert.equal(s.memMaxUsageBytes, v.memPeak);
        // v1 memory.soft_limit_in_bytes unset (LLONG_MAX rounded to pages), v2 memory.low 0.
        assert.equal(s.memSoftLimitBytes, fixture.version === "v2" ? 0 : Infinity);
        assert.ok(Math.abs((s.lastSeenSeconds ?? 0) - Date.now() / 1000) < 5, "last seen is the read time");
        assert.equal(s.pageFaults, v.pgfault);
        assert.equal(s.majorPageFaults, v.pgmajfault);
        assert.equal(s.subcontainers, 2);
        if (fixture.version === "v2" || fixture.hybrid) {
          assert.deepEqual(s.pressure.memory?.some, {
            avg10: 1.25,
            avg60: 0.63,
            avg300: 0.31,
            totalUsec: v.psiTotalUsec,
          });
          assert.equal(s.pressure.io?.full?.totalUsec, Math.floor(v.psiTotalUsec / 2));
        } else {
          assert.deepEqual(s.pressure, {});
        }
        assert.equal(
          s.allocation?.cpuQuota,
          v.cpuQuotaUsec === "max" ? Infinity : v.cpuQuotaUsec / v.cpuPeriodUsec,
        );
        if (fixture.version === "v2") assert.equal(s.allocation?.cpuWeight, 100);
        else assert.equal(s.allocation?.cpuShares, 1024);
      }
    } finally {
      removeTree(root);
    }
  });
}

test("Verifies that v1 without the unified mount has no PSI, and a pod without a cgroup is skipped", async () => {
  const root = makeTempRoot();
  try {
    const a = fixturePod(0, "burstable");
    const missing = fixturePod(1, "burstable");
    buildTree(root, { version: "v1", driver: "cgroupfs" }, [a.fixture]);
    const reader = new CgroupReader(detectCgroupLayout(root, "cgroupfs"));
    const samples = await reader.readTasks([a.task, missing.task]);
    assert.deepEqual([...samples.keys()], [a.task.id]);
    assert.deepEqual(samples.get(a.task.id)?.pressure, {});
    assert.equal(samples.get(a.task.id)?.allocation, undefined, "allocations are read only when asked");
  } finally {
    removeTree(root);
  }
});

test("Verifies that a static pod's cgroup named by the UID without dashes is found", async () => {
  const root = makeTempRoot();
  try {
    const p = fixturePod(3, "guaranteed");
    buildTree(root, { version: "v2", driver: "cgroupfs" }, [
      { ...p.fixture, uid: p.task.cgroupUid.replace(/-/g, "") },
    ]);
    const reader = new CgroupReader(detectCgroupLayout(root, "cgroupfs"));
    const s = reader.readTask(p.task);
    assert.equal(s?.path, `/kubepods/pod${p.task.cgroupUid.replace(/-/g, "")}`);
  } finally {
    removeTree(root);
  }
});

test("Verifies that each file is read once per pod per iteration, and a cgroup that vanishes is looked for again", async () => {
  const root = makeTempRoot();
  try {
    const p = fixturePod(0, "burstable");
    buildTree(root, { version: "v2", driver: "systemd" }, [p.fixture]);
    const reads: string[] = [];
    const counting: FileReader = (file) => {
      reads.push(file);
      try {
        return readFileSync(file, "latin1");
      } catch {
        return undefined;
      }
    };
    const reader = new CgroupReader(detectCgroupLayout(root, "systemd"), {
      readFile: counting,
      readAllocations: true,
    });
    await reader.readTasks([p.task]);
    assert.equal(new Set(reads).size, reads.length, `duplicate reads: ${reads.join(", ")}`);
    // cpu.stat, memory.{stat,current,max,peak,low}, {cpu,memory,io}.pressure, cpu.max, cpu.weight, cpuset.cpus
    assert.equal(reads.length, 12);
    const dir = root + podCgroupPath("systemd", "burstable", p.task.cgroupUid);
    rmSync(dir, { recursive: true });
    assert.equal((await reader.readTasks([p.task])).size, 0);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "memory.current"), "4096\n");
    assert.equal((await reader.readTasks([p.task])).get(p.task.id)?.memUsageBytes, 4096);
  } finally {
    removeTree(root);
  }
});

test("Verifies that a custom cgroup_parent (kubelet --cgroup-root) places pods under it for both drivers", async () => {
  assert.equal(
    podCgroupPath("cgroupfs", "burstable", uid, "/custom/kubepods"),
    `/custom/kubepods/burstable/pod${uid}`,
  );
  assert.equal(
    podCgroupPath("cgroupfs", "guaranteed", uid, "/custom/kubepods"),
    `/custom/kubepods/pod${uid}`,
  );
  const u = uid.replace(/-/g, "_");
  assert.equal(
    podCgroupPath("systemd", "besteffort", uid, "/custom.slice/custom-kubepods.slice"),
    `/custom.slice/custom-kubepods.slice/custom-kubepods-besteffort.slice/custom-kubepods-besteffort-pod${u}.slice`,
  );
  assert.equal(
    podCgroupPath("systemd", "guaranteed", uid, "/custom.slice/custom-kubepods.slice"),
    `/custom.slice/custom-kubepods.slice/custom-kubepods-pod${u}.slice`,
  );
  for (const fixture of [
    { version: "v1", driver: "cgroupfs", kubepods: "/custom/kubepods" },
    { version: "v2", driver: "systemd", kubepods: "/custom.slice/custom-kubepods.slice" },
  ] as FixtureLayout[]) {
    const root = makeTempRoot();
    try {
      const p = fixturePod(2, "burstable");
      buildTree(root, fixture, [p.fixture]);
      const custom = new CgroupReader(detectCgroupLayout(root, fixture.driver, "auto", fixture.kubepods));
      const s = custom.readTask(p.task);
      assert.equal(s?.path, podCgroupPath(fixture.driver, "burstable", p.task.cgroupUid, fixture.kubepods));
      assert.equal(s?.subcontainers, p.task.containers.length);
      const plain = new CgroupReader(detectCgroupLayout(root, fixture.driver));
      assert.equal(plain.readTask(p.task), undefined, "not found under the default parent");
      assert.throws(
        () => detectCgroupLayout(root, "systemd", "auto", "/custom/kubepods"),
        (err: unknown) =>
          err instanceof AgentError &&
          /cgroup_parent "\/custom\/kubepods" must end in a systemd slice/.test(err.message),
      );
    } finally {
      removeTree(root);
    }
  }
});
