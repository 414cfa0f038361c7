import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { V1Pod } from "@kubernetes/client-node";
import { containerCgroupName, podCgroupPath, type CgroupDriver, type CgroupVersion } from "../cgroups.js";
import type { ContainerRuntime, QosClass, TaskContainer } from "../tasks.js";

/**
 * Fixture cgroup trees for tests and the benchmark: the directories the kubelet and the runtime
 * create, holding files in the kernel's own formats (copied from a 6.x kernel: same keys, same
 * order, "max" and LLONG_MAX where the kernel writes them).
 */

/** FixtureValues are the numbers written into one pod's cgroup files. */
export interface FixtureValues {
  cpuUsageUsec: number;
  nrPeriods: number;
  nrThrottled: number;
  throttledUsec: number;
  memCurrent: number;
  /** memMax: bytes, or "max" for no limit. */
  memMax: number | "max";
  memPeak: number;
  pgfault: number;
  pgmajfault: number;
  inactiveFile: number;
  /** cpu.max quota in µs, or "max". */
  cpuQuotaUsec: number | "max";
  cpuPeriodUsec: number;
  cpuShares: number;
  cpuWeight: number;
  cpusetCpus: string;
  /** psi: avg10 of `some` and total µs of `some`, the same for every resource (full is half). */
  psiAvg10: number;
  psiTotalUsec: number;
}

/** fixtureValues derives distinct, plausible values for pod number i. */
export function fixtureValues(i: number): FixtureValues {
  return {
    cpuUsageUsec: 1_000_000 * (i + 1) + 123,
    nrPeriods: 1000 + i,
    nrThrottled: 10 + i,
    throttledUsec: 50_000 * (i + 1),
    memCurrent: 64 * 2 ** 20 + i * 4096,
    memMax: i % 3 === 0 ? "max" : 256 * 2 ** 20,
    memPeak: 96 * 2 ** 20 + i * 4096,
    pgfault: 5000 + i,
    pgmajfault: 7 + i,
    inactiveFile: 8 * 2 ** 20,
    cpuQuotaUsec: i % 2 === 0 ? "max" : 50_000,
    cpuPeriodUsec: 100_000,
    cpuShares: 1024,
    cpuWeight: 100,
    cpusetCpus: "",
    psiAvg10: 1.25,
    psiTotalUsec: 2_000_000 + i,
  };
}

/** FixturePodSpec describes a pod to create with makePod. */
export interface FixturePodSpec {
  name: string;
  namespace?: string;
  uid?: string;
  qos: QosClass;
  runtime?: ContainerRuntime;
  containers?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  phase?: string;
}

/** uidFor makes a stable, valid pod UID from a number. */
export function uidFor(i: number): string {
  const hex = i.toString(16).padStart(12, "0");
  return `0f1e2d3c-4b5a-6978-8796-${hex}`;
}

const resourcesFor: Record<QosClass, { requests?: Record<string, string>; limits?: Record<string, string> }> = {
  guaranteed: { requests: { cpu: "500m", memory: "256Mi" }, limits: { cpu: "500m", memory: "256Mi" } },
  burstable: { requests: { cpu: "250m", memory: "128Mi" }, limits: { memory: "256Mi" } },
  besteffort: {},
};

/** makePod builds a Running pod with containers whose status carries runtime container IDs. */
export function makePod(spec: FixturePodSpec): V1Pod {
  const runtime = spec.runtime ?? "containerd";
  const scheme = runtime;
  const n = spec.containers ?? 1;
  const uid = spec.uid ?? uidFor(0);
  const names = Array.from({ length: n }, (_, i) => `c${i}`);
  const qosName = { guaranteed: "Guaranteed", burstable: "Burstable", besteffort: "BestEffort" }[spec.qos];
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: spec.name,
      namespace: spec.namespace ?? "default",
      uid,
      labels: spec.labels ?? { app: spec.name },
      annotations: spec.annotations ?? {},
    },
    spec: { containers: names.map((name) => ({ name, image: "busybox", resources: resourcesFor[spec.qos] })) },
    status: {
      phase: spec.phase ?? "Running",
      qosClass: qosName,
      containerStatuses: names.map((name, i) => ({
        name,
        image: "busybox",
        imageID: "",
        ready: true,
        restartCount: 0,
        containerID: `${scheme}://${containerId(uid, i)}`,
        state: { running: { startedAt: new Date(0) } },
      })),
    },
  };
}

/** containerId makes a 64-hex container ID from the pod UID and the container index. */
export function containerId(uid: string, i: number): string {
  const base = uid.replace(/-/g, "") + i.toString(16).padStart(4, "0");
  return base.padEnd(64, "a").slice(0, 64);
}

/** FixtureLayout says what kind of hierarchy to build. */
export interface FixtureLayout {
  version: CgroupVersion;
  driver: CgroupDriver;
  /** comount puts cpu and cpuacct in one cpu,cpuacct mount with symlinks, as systemd does (v1). */
  comount?: boolean;
  /** hybrid adds v1's unified mount (systemd's "hybrid" mode), which carries PSI files. */
  hybrid?: boolean;
  /** kubepods is a kubelet's custom pod parent (config cgroup_parent). */
  kubepods?: string;
}

/** FixturePod is a pod to lay out: its QoS, cgroup UID, containers and values. */
export interface FixturePod {
  qos: QosClass;
  uid: string;
  containers: TaskContainer[];
  values: FixtureValues;
}

/** makeTempRoot creates an empty directory for a tree; remove it with removeTree. */
export function makeTempRoot(prefix = "kubewise-cgroup-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** removeTree deletes a fixture tree. */
export function removeTree(root: string): void {
  rmSync(root, { recursive: true, force: true });
}

/** buildTree lays out the kubepods hierarchy and every pod's cgroup under root. */
export function buildTree(root: string, layout: FixtureLayout, pods: readonly FixturePod[]): void {
  if (layout.version === "v2") {
    writeFileSync(join(root, "cgroup.controllers"), "cpuset cpu io memory hugetlb pids rdma misc\n");
    writeFileSync(join(root, "cpuset.cpus.effective"), "0-7\n");
  } else {
    setUpV1Mounts(root, layout);
  }
  for (const qos of ["guaranteed", "burstable", "besteffort"] as const) {
    const parent = podCgroupPath(layout.driver, qos, "x", layout.kubepods).replace(/\/[^/]*$/, "");
    for (const dir of hierarchyDirs(root, layout, parent)) {
      mkdirSync(dir.path, { recursive: true });
      if (dir.controller === "cpuset" || layout.version === "v2") writeCpusetParent(dir.path, layout.version);
    }
  }
  for (const pod of pods) writePod(root, layout, pod);
}

function setUpV1Mounts(root: string, layout: FixtureLayout): void {
  if (layout.comount) {
    mkdirSync(join(root, "cpu,cpuacct"), { recursive: true });
    symlinkSync("cpu,cpuacct", join(root, "cpu"));
    symlinkSync("cpu,cpuacct", join(root, "cpuacct"));
  } else {
    mkdirSync(join(root, "cpu"), { recursive: true });
    mkdirSync(join(root, "cpuacct"), { recursive: true });
  }
  for (const c of ["memory", "cpuset", "pids", "systemd"]) mkdirSync(join(root, c), { recursive: true });
  writeFileSync(join(root, "cpuset", "cpuset.effective_cpus"), "0-7\n");
  if (layout.hybrid) mkdirSync(join(root, "unified"), { recursive: true });
}

interface Dir {
  controller: "cpu" | "cpuacct" | "memory" | "cpuset" | "unified" | "v2";
  path: string;
}

/** hierarchyDirs lists the directory of one cgroup in every hierarchy the layout has. */
function hierarchyDirs(root: string, layout: FixtureLayout, path: string): Dir[] {
  if (layout.version === "v2") return [{ controller: "v2", path: root + path }];
  const dirs: Dir[] = [
    { controller: "cpu", path: join(root, "cpu") + path },
    { controller: "cpuacct", path: join(root, "cpuacct") + path },
    { controller: "memory", path: join(root, "memory") + path },
    { controller: "cpuset", path: join(root, "cpuset") + path },
  ];
  if (layout.hybrid) dirs.push({ controller: "unified", path: join(root, "unified") + path });
  return dirs;
}

function writeCpusetParent(dir: string, version: CgroupVersion): void {
  if (version === "v2") {
    writeFileSync(join(dir, "cpuset.cpus.effective"), "0-7\n");
  } else {
    writeFileSync(join(dir, "cpuset.cpus"), "0-7\n");
    writeFileSync(join(dir, "cpuset.effective_cpus"), "0-7\n");
  }
}

function writePod(root: string, layout: FixtureLayout, pod: FixturePod): void {
  const path = podCgroupPath(layout.driver, pod.qos, pod.uid, layout.kubepods);
  for (const dir of hierarchyDirs(root, layout, path)) {
    mkdirSync(dir.path, { recursive: true });
    for (const [name, text] of Object.entries(podFiles(dir.controller, pod.values))) {
      writeFileSync(join(dir.path, name), text);
    }
    for (const c of pod.containers) {
      const child = join(dir.path, containerCgroupName(layout.driver, c));
      mkdirSync(child, { recursive: true });
      if (dir.controller === "cpuset") writeFileSync(join(child, "cpuset.cpus"), pod.values.cpusetCpus || "0-7");
      // Each container has its own quota (its cpu limit), as the runtime sets it.
      for (const [name, text] of Object.entries(containerCpuFiles(dir.controller, pod.values))) {
        writeFileSync(join(child, name), text);
      }
    }
  }
}

function containerCpuFiles(controller: Dir["controller"], v: FixtureValues): Record<string, string> {
  if (controller === "v2") return { "cpu.max": `${v.cpuQuotaUsec} ${v.cpuPeriodUsec}\n` };
  if (controller !== "cpu") return {};
  return {
    "cpu.cfs_quota_us": `${v.cpuQuotaUsec === "max" ? -1 : v.cpuQuotaUsec}\n`,
    "cpu.cfs_period_us": `${v.cpuPeriodUsec}\n`,
  };
}

function podFiles(controller: Dir["controller"], v: FixtureValues): Record<string, string> {
  switch (controller) {
    case "v2":
      return { ...v2CpuFiles(v), ...v2MemoryFiles(v), ...psiFiles(v), "cpuset.cpus": `${v.cpusetCpus}\n`, "cpuset.cpus.effective": `${v.cpusetCpus || "0-7"}\n` };
    case "cpu":
      return {
        "cpu.stat": `nr_periods ${v.nrPeriods}\nnr_throttled ${v.nrThrottled}\nthrottled_time ${v.throttledUsec * 1000}\nnr_bursts 0\nburst_time 0\n`,
        "cpu.cfs_quota_us": `${v.cpuQuotaUsec === "max" ? -1 : v.cpuQuotaUsec}\n`,
        "cpu.cfs_period_us": `${v.cpuPeriodUsec}\n`,
        "cpu.shares": `${v.cpuShares}\n`,
      };
    case "cpuacct":
      return { "cpuacct.usage": `${v.cpuUsageUsec * 1000}\n`, "cpuacct.stat": `user ${v.cpuUsageUsec / 20000}\nsystem 3\n` };
    case "memory":
      return v1MemoryFiles(v);
    case "cpuset":
      return { "cpuset.cpus": `${v.cpusetCpus || "0-7"}\n`, "cpuset.effective_cpus": `${v.cpusetCpus || "0-7"}\n`, "cpuset.mems": "0\n" };
    case "unified":
      return psiFiles(v);
  }
}

function v2CpuFiles(v: FixtureValues): Record<string, string> {
  const user = Math.floor(v.cpuUsageUsec * 0.7);
  return {
    "cpu.stat":
      `usage_usec ${v.cpuUsageUsec}\nuser_usec ${user}\nsystem_usec ${v.cpuUsageUsec - user}\n` +
      `core_sched.force_idle_usec 0\nnr_periods ${v.nrPeriods}\nnr_throttled ${v.nrThrottled}\n` +
      `throttled_usec ${v.throttledUsec}\nnr_bursts 0\nburst_usec 0\n`,
    "cpu.max": `${v.cpuQuotaUsec} ${v.cpuPeriodUsec}\n`,
    "cpu.weight": `${v.cpuWeight}\n`,
    "cpu.weight.nice": "0\n",
  };
}

function v2MemoryFiles(v: FixtureValues): Record<string, string> {
  const anon = v.memCurrent - v.inactiveFile - 4 * 2 ** 20;
  const stat: [string, number][] = [
    ["anon", anon], ["file", v.inactiveFile + 4 * 2 ** 20], ["kernel", 1_249_280], ["kernel_stack", 98_304],
    ["pagetables", 258_048], ["sec_pagetables", 0], ["percpu", 1_440], ["sock", 0], ["vmalloc", 0],
    ["shmem", 0], ["zswap", 0], ["zswapped", 0], ["file_mapped", 2_433_024], ["file_dirty", 0],
    ["file_writeback", 0], ["swapcached", 0], ["anon_thp", 0], ["file_thp", 0], ["shmem_thp", 0],
    ["inactive_anon", anon], ["active_anon", 4096], ["inactive_file", v.inactiveFile],
    ["active_file", 4 * 2 ** 20], ["unevictable", 0], ["slab_reclaimable", 300_000],
    ["slab_unreclaimable", 400_000], ["slab", 700_000], ["workingset_refault_anon", 0],
    ["workingset_refault_file", 12], ["workingset_activate_anon", 0], ["workingset_activate_file", 3],
    ["workingset_restore_anon", 0], ["workingset_restore_file", 0], ["workingset_nodereclaim", 0],
    ["pgscan", 0], ["pgsteal", 0], ["pgscan_kswapd", 0], ["pgscan_direct", 0], ["pgscan_khugepaged", 0],
    ["pgsteal_kswapd", 0], ["pgsteal_direct", 0], ["pgsteal_khugepaged", 0], ["pgfault", v.pgfault],
    ["pgmajfault", v.pgmajfault], ["pgrefill", 0], ["pgactivate", 40], ["pgdeactivate", 0],
    ["pglazyfree", 0], ["pglazyfreed", 0], ["zswpin", 0], ["zswpout", 0], ["zswpwb", 0],
    ["thp_fault_alloc", 0], ["thp_collapse_alloc", 0], ["thp_swpout", 0], ["thp_swpout_fallback", 0],
  ];
  return {
    "memory.current": `${v.memCurrent}\n`,
    "memory.max": `${v.memMax}\n`,
    "memory.peak": `${v.memPeak}\n`,
    "memory.min": "0\n",
    "memory.low": "0\n",
    "memory.high": "max\n",
    "memory.stat": stat.map(([k, n]) => `${k} ${n}\n`).join(""),
  };
}

function v1MemoryFiles(v: FixtureValues): Record<string, string> {
  const local: [string, number][] = [
    ["cache", 0], ["rss", 0], ["rss_huge", 0], ["shmem", 0], ["mapped_file", 0], ["dirty", 0],
    ["writeback", 0], ["swap", 0], ["pgpgin", 0], ["pgpgout", 0], ["pgfault", 0], ["pgmajfault", 0],
    ["inactive_anon", 0], ["active_anon", 0], ["inactive_file", 0], ["active_file", 0], ["unevictable", 0],
  ];
  const total: [string, number][] = [
    ["cache", v.inactiveFile], ["rss", v.memCurrent - v.inactiveFile], ["rss_huge", 0], ["shmem", 0],
    ["mapped_file", 2_433_024], ["dirty", 0], ["writeback", 0], ["swap", 0], ["pgpgin", 36_642],
    ["pgpgout", 31_415], ["pgfault", v.pgfault], ["pgmajfault", v.pgmajfault], ["inactive_anon", 0],
    ["active_anon", v.memCurrent - v.inactiveFile], ["inactive_file", v.inactiveFile], ["active_file", 0],
    ["unevictable", 0],
  ];
  const limit = v.memMax === "max" ? 9223372036854771712n : BigInt(v.memMax);
  const stat =
    local.map(([k, n]) => `${k} ${n}\n`).join("") +
    `hierarchical_memory_limit ${limit}\nhierarchical_memsw_limit 9223372036854771712\n` +
    total.map(([k, n]) => `total_${k} ${n}\n`).join("");
  return {
    "memory.usage_in_bytes": `${v.memCurrent}\n`,
    "memory.limit_in_bytes": `${limit}\n`,
    "memory.max_usage_in_bytes": `${v.memPeak}\n`,
    "memory.soft_limit_in_bytes": "9223372036854771712\n",
    "memory.stat": stat,
  };
}

function psiFiles(v: FixtureValues): Record<string, string> {
  const line = (kind: string, avg10: number, total: number): string =>
    `${kind} avg10=${avg10.toFixed(2)} avg60=${(avg10 / 2).toFixed(2)} avg300=${(avg10 / 4).toFixed(2)} total=${total}\n`;
  const file = line("some", v.psiAvg10, v.psiTotalUsec) + line("full", v.psiAvg10 / 2, Math.floor(v.psiTotalUsec / 2));
  return { "cpu.pressure": file, "memory.pressure": file, "io.pressure": file };
}
