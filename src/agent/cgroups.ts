import { closeSync, existsSync, openSync, readdirSync, readSync, statSync } from "node:fs";
import { join } from "node:path";
import { setImmediate as yieldToLoop } from "node:timers/promises";
import { AgentError } from "./errors.js";
import {
  keyedValue,
  parseCpuList,
  parseCpuMax,
  parsePressure,
  parseSingleValue,
  formatCpuList,
  type Pressure,
} from "./kernel.js";
import type { QosClass, Task, TaskContainer } from "./tasks.js";

/**
 * Cgroups: where the kubelet puts a pod's cgroup (for each QoS class, cgroup driver and
 * container runtime, on cgroup v1 and v2) and reading what the kernel accounts there.
 *
 * Metrics are read at the pod cgroup, not per container: the pod cgroup's counters include its
 * containers' past and present, so a container restart cannot make a counter go backwards (the
 * problem WCA had to patch, issue #374), and one read covers every container.
 */

/** CgroupDriver is the kubelet's cgroupDriver. */
export type CgroupDriver = "systemd" | "cgroupfs";
/** CgroupVersion: v1 (one hierarchy per controller) or v2 (unified). */
export type CgroupVersion = "v1" | "v2";
/** Controller is a v1 controller the agent reads or writes. */
export type Controller = "cpu" | "cpuacct" | "memory" | "cpuset";

/** CgroupLayout is where the hierarchy is mounted and how the kubelet names things in it. */
export interface CgroupLayout {
  root: string;
  version: CgroupVersion;
  driver: CgroupDriver;
  /** controllers maps each v1 controller to its mount (cpu may be cpu,cpuacct); on v2 all are the root. */
  controllers: Partial<Record<Controller, string>>;
  /** psiRoot is where pressure files live: the v2 root, or v1's unified mount in hybrid mode. */
  psiRoot?: string;
  /** kubepods is the cgroup holding every pod (config cgroup_parent); the driver's default when absent. */
  kubepods?: string;
}

const v1Controllers: Controller[] = ["cpu", "cpuacct", "memory", "cpuset"];

/**
 * detectCgroupLayout looks at the mounted hierarchy: v2 when the root has cgroup.controllers,
 * else v1 with a directory per controller (co-mounted ones such as cpu,cpuacct are found by
 * name). `version` forces the answer instead of detecting it.
 */
export function detectCgroupLayout(
  root: string,
  driver: CgroupDriver,
  version: "auto" | CgroupVersion = "auto",
  kubepods?: string,
): CgroupLayout {
  const layout = detectHierarchy(root, driver, version);
  if (kubepods === undefined) return layout;
  const problem = kubepodsProblem(driver, kubepods);
  if (problem) throw new AgentError("config", `cgroup_parent ${JSON.stringify(kubepods)} ${problem}`);
  return { ...layout, kubepods };
}

function detectHierarchy(root: string, driver: CgroupDriver, version: "auto" | CgroupVersion): CgroupLayout {
  if (!existsSync(root))
    throw new AgentError("cgroup", `cgroup root ${root} does not exist (see --cgroup-root)`);
  const isV2 = version === "v2" || (version === "auto" && existsSync(join(root, "cgroup.controllers")));
  if (isV2) {
    const controllers = Object.fromEntries(v1Controllers.map((c) => [c, root]));
    return { root, version: "v2", driver, controllers, psiRoot: root };
  }
  const entries = readdirSync(root);
  const controllers: Partial<Record<Controller, string>> = {};
  for (const c of v1Controllers) {
    const dir = entries.includes(c) ? c : entries.find((e) => e.split(",").includes(c));
    if (dir) controllers[c] = join(root, dir);
  }
  if (Object.keys(controllers).length === 0) {
    throw new AgentError(
      "cgroup",
      `${root} has neither cgroup.controllers (v2) nor cpu/cpuacct/memory/cpuset directories (v1)`,
    );
  }
  const unified = join(root, "unified");
  return { root, version: "v1", driver, controllers, ...(existsSync(unified) ? { psiRoot: unified } : {}) };
}

/**
 * kubepodsPath is the cgroup under which the kubelet puts every pod: `kubepods` (config
 * cgroup_parent, for a kubelet started with --cgroup-root) or the driver's default.
 */
export function kubepodsPath(driver: CgroupDriver, kubepods?: string): string {
  return kubepods ?? (driver === "systemd" ? "/kubepods.slice" : "/kubepods");
}

/**
 * kubepodsProblem says what is wrong with a cgroup_parent, or undefined: an absolute cgroup path
 * without empty, `.` or `..` parts, and with the systemd driver a slice (the kubelet's systemd
 * names nest: --cgroup-root=/custom.slice gives /custom.slice/custom-kubepods.slice).
 */
export function kubepodsProblem(driver: CgroupDriver, kubepods: string): string | undefined {
  if (!kubepods.startsWith("/")) return 'must be an absolute cgroup path such as "/kubepods"';
  const parts = kubepods.slice(1).split("/");
  if (parts.some((p) => p === "" || p === "." || p === ".."))
    return "must not have empty, '.' or '..' parts, nor end with '/'";
  if (driver === "systemd" && !/^[^-][^/]*\.slice$/.test(parts[parts.length - 1] ?? ""))
    return 'must end in a systemd slice such as "/kubepods.slice" with cgroup_driver systemd';
  return undefined;
}

/**
 * podCgroupPath is the pod's cgroup, relative to a hierarchy's root:
 * - cgroupfs: /kubepods/burstable/pod<uid>, /kubepods/besteffort/pod<uid>, /kubepods/pod<uid>
 * - systemd:  /kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_>.slice and
 *   /kubepods.slice/kubepods-pod<uid_>.slice for guaranteed (uid_ has `-` as `_`, which systemd
 *   reserves for hierarchy). Guaranteed pods have no QoS level in either driver; WCA's systemd
 *   path put one there.
 * A cgroup_parent replaces /kubepods (/custom/burstable/pod<uid>) or, with systemd, the slice
 * and the prefix of the names under it (/custom.slice/custom-kubepods.slice/custom-kubepods-pod<uid_>.slice).
 */
export function podCgroupPath(driver: CgroupDriver, qos: QosClass, uid: string, kubepods?: string): string {
  const parent = kubepodsPath(driver, kubepods);
  if (driver === "cgroupfs") {
    return qos === "guaranteed" ? `${parent}/pod${uid}` : `${parent}/${qos}/pod${uid}`;
  }
  // systemd slice names carry their ancestors: the prefix is the kubepods slice's own name.
  const prefix = parent.slice(parent.lastIndexOf("/") + 1).replace(/\.slice$/, "");
  const u = uid.replace(/-/g, "_");
  return qos === "guaranteed"
    ? `${parent}/${prefix}-pod${u}.slice`
    : `${parent}/${prefix}-${qos}.slice/${prefix}-${qos}-pod${u}.slice`;
}

/**
 * podCgroupCandidates lists where the pod's cgroup may be: named after the UID, then after the
 * UID without dashes (static pods on some kubelets, WCA fix 658cc24).
 */
export function podCgroupCandidates(
  driver: CgroupDriver,
  qos: QosClass,
  uid: string,
  kubepods?: string,
): string[] {
  const paths = [
    podCgroupPath(driver, qos, uid, kubepods),
    podCgroupPath(driver, qos, uid.replace(/-/g, ""), kubepods),
  ];
  return [...new Set(paths)];
}

/**
 * containerCgroupName is the container's cgroup under its pod: with systemd a scope named by
 * runtime (cri-containerd-<id>.scope, crio-<id>.scope, docker-<id>.scope); with cgroupfs the
 * bare ID, except CRI-O which writes crio-<id>.
 */
export function containerCgroupName(driver: CgroupDriver, container: TaskContainer): string {
  const prefix = { containerd: "cri-containerd", "cri-o": "crio", docker: "docker" }[container.runtime];
  if (driver === "systemd") return `${prefix}-${container.id}.scope`;
  return container.runtime === "cri-o" ? `crio-${container.id}` : container.id;
}

/** containerCgroupPath joins the pod's cgroup and the container's name in it. */
export function containerCgroupPath(driver: CgroupDriver, podPath: string, container: TaskContainer): string {
  return `${podPath}/${containerCgroupName(driver, container)}`;
}

/** cgroupDir is the directory of a cgroup for a controller (on v2 the controller does not matter). */
export function cgroupDir(layout: CgroupLayout, controller: Controller, path: string): string | undefined {
  const base = layout.controllers[controller];
  return base === undefined ? undefined : base + path;
}

/** TaskAllocationState is what a pod's cgroup currently allows, as read back from it. */
export interface TaskAllocationState {
  /** cpuQuota in cores; Infinity when unlimited. */
  cpuQuota?: number;
  cpuPeriodUsec?: number;
  /** cpuShares on v1; on v2 undefined and cpuWeight set instead. */
  cpuShares?: number;
  cpuWeight?: number;
  /** cpusetCpus in canonical form ("0-3,8"); "" when the cgroup sets none (v2: inherited). */
  cpusetCpus?: string;
}

/** TaskSample is what was read from one pod's cgroup in one iteration; absent files give absent fields. */
export interface TaskSample {
  /** path is the pod cgroup, relative to a hierarchy root. */
  path: string;
  cpuUsageSeconds?: number;
  cpuPeriods?: number;
  cpuThrottledPeriods?: number;
  cpuThrottledSeconds?: number;
  memUsageBytes?: number;
  /** memWorkingSetBytes is usage minus inactive file cache, as the kubelet evicts by. */
  memWorkingSetBytes?: number;
  memLimitBytes?: number;
  memMaxUsageBytes?: number;
  /** memSoftLimitBytes: memory.soft_limit_in_bytes (v1), memory.low (v2); +Inf when unset on v1. */
  memSoftLimitBytes?: number;
  pageFaults?: number;
  majorPageFaults?: number;
  pressure: { cpu?: Pressure; memory?: Pressure; io?: Pressure };
  /** subcontainers counts the pod's containers (from its status) whose cgroup was found. */
  subcontainers: number;
  /** lastSeenSeconds is when the cgroup was read, in seconds since the epoch (WCA's task_last_seen). */
  lastSeenSeconds?: number;
  allocation?: TaskAllocationState;
}

/** FileReader reads one small kernel file, or undefined when it does not exist. */
export type FileReader = (file: string) => string | undefined;

/** gone are the errors that mean "no such file here" (ENODEV: the cgroup was removed mid-read). */
const gone = new Set(["ENOENT", "ENOTDIR", "EISDIR", "ENODEV"]);

/**
 * readSmallFile reads a cgroup file into one buffer reused for every read: cgroup files are
 * small and report no useful size, so this skips the stat and the allocation readFileSync makes.
 * A file that is not there reads as undefined; other errors (EACCES) throw, as they mean the
 * agent is misconfigured rather than a pod being odd.
 */
export const readSmallFile: FileReader = (() => {
  const buf = Buffer.allocUnsafe(64 * 1024);
  return (file: string): string | undefined => {
    let fd: number;
    try {
      fd = openSync(file, "r");
    } catch (err) {
      if (gone.has((err as NodeJS.ErrnoException).code ?? "")) return undefined;
      throw err;
    }
    try {
      let length = 0;
      let n: number;
      let text = "";
      while ((n = readSync(fd, buf, length, buf.length - length, null)) > 0) {
        length += n;
        if (length === buf.length) {
          text += buf.toString("latin1", 0, length);
          length = 0;
        }
      }
      return text + buf.toString("latin1", 0, length);
    } catch (err) {
      if (gone.has((err as NodeJS.ErrnoException).code ?? "")) return undefined;
      throw err;
    } finally {
      closeSync(fd);
    }
  };
})();

/** ReaderOptions tune a CgroupReader. */
export interface ReaderOptions {
  /** readAllocations also reads quota, shares/weight and cpuset (for the allocator). @default false */
  readAllocations?: boolean;
  /** readFile is the file reader; tests and the benchmark swap it. @default readSmallFile */
  readFile?: FileReader;
  /** chunk is how many pods are read between yields to the event loop. @default 50 */
  chunk?: number;
}

/**
 * CgroupReader reads pods' cgroups, each file once per iteration. Where a pod's cgroup is
 * found is remembered (a pod's path never changes), so the search costs stats only once.
 */
export class CgroupReader {
  readonly layout: CgroupLayout;
  private readonly readFile: FileReader;
  private readonly readAllocations: boolean;
  private readonly chunk: number;
  private readonly paths = new Map<string, string>();
  /** psiPaths holds, on v1 hybrid, the pod paths that also exist in the unified hierarchy. */
  private readonly psiPaths = new Set<string>();

  constructor(layout: CgroupLayout, options: ReaderOptions = {}) {
    this.layout = layout;
    this.readFile = options.readFile ?? readSmallFile;
    this.readAllocations = options.readAllocations ?? false;
    this.chunk = options.chunk ?? 50;
  }

  /** findPodPath returns the pod's cgroup path, or undefined while it has none (not started, gone). */
  findPodPath(task: Task): string | undefined {
    const key = `${task.qos}/${task.cgroupUid}`;
    const known = this.paths.get(key);
    if (known !== undefined) return known;
    const probe = this.layout.controllers.cpu ?? this.layout.controllers.memory ?? this.layout.root;
    for (const path of podCgroupCandidates(
      this.layout.driver,
      task.qos,
      task.cgroupUid,
      this.layout.kubepods,
    )) {
      if (statSync(probe + path, { throwIfNoEntry: false })?.isDirectory()) {
        this.paths.set(key, path);
        const psi = this.layout.version === "v1" && this.layout.psiRoot !== undefined;
        if (psi && existsSync(this.layout.psiRoot + path)) this.psiPaths.add(path);
        return path;
      }
    }
    return undefined;
  }

  /** readTasks reads every task's cgroup, yielding to the event loop between chunks. */
  async readTasks(tasks: readonly Task[]): Promise<Map<string, TaskSample>> {
    const out = new Map<string, TaskSample>();
    const live = new Set<string>();
    for (let i = 0; i < tasks.length; i++) {
      if (i > 0 && i % this.chunk === 0) await yieldToLoop();
      const task = tasks[i] as Task;
      live.add(`${task.qos}/${task.cgroupUid}`);
      const sample = this.readTask(task);
      if (sample) out.set(task.id, sample);
    }
    for (const [key, path] of this.paths) {
      if (live.has(key)) continue;
      this.paths.delete(key);
      this.psiPaths.delete(path);
    }
    return out;
  }

  /** readTask reads one pod's cgroup; undefined when the pod has no cgroup on this node. */
  readTask(task: Task): TaskSample | undefined {
    const path = this.findPodPath(task);
    if (path === undefined) return undefined;
    const sample = this.layout.version === "v2" ? this.readV2(path) : this.readV1(path);
    if (sample.cpuUsageSeconds === undefined && sample.memUsageBytes === undefined) {
      // The cgroup went away between finding and reading it: look again next time.
      this.paths.delete(`${task.qos}/${task.cgroupUid}`);
      this.psiPaths.delete(path);
      return undefined;
    }
    sample.subcontainers = this.countContainers(path, task.containers);
    sample.lastSeenSeconds = Date.now() / 1000;
    if (this.readAllocations) sample.allocation = this.readAllocation(path);
    return sample;
  }

  private file(controller: Controller, path: string, name: string): string | undefined {
    const dir = cgroupDir(this.layout, controller, path);
    return dir === undefined ? undefined : this.readFile(`${dir}/${name}`);
  }

  private readV2(path: string): TaskSample {
    const dir = this.layout.root + path;
    const cpuStat = this.readFile(`${dir}/cpu.stat`);
    const memStat = this.readFile(`${dir}/memory.stat`);
    const current = this.readFile(`${dir}/memory.current`);
    const max = this.readFile(`${dir}/memory.max`);
    const peak = this.readFile(`${dir}/memory.peak`);
    const low = this.readFile(`${dir}/memory.low`);
    const usage = current === undefined ? undefined : parseSingleValue(current);
    const usageUsec = cpuStat === undefined ? undefined : keyedValue(cpuStat, "usage_usec");
    const throttledUsec = cpuStat === undefined ? undefined : keyedValue(cpuStat, "throttled_usec");
    const inactiveFile = memStat === undefined ? undefined : keyedValue(memStat, "inactive_file");
    return {
      path,
      cpuUsageSeconds: usageUsec === undefined ? undefined : usageUsec / 1e6,
      cpuPeriods: cpuStat === undefined ? undefined : keyedValue(cpuStat, "nr_periods"),
      cpuThrottledPeriods: cpuStat === undefined ? undefined : keyedValue(cpuStat, "nr_throttled"),
      cpuThrottledSeconds: throttledUsec === undefined ? undefined : throttledUsec / 1e6,
      memUsageBytes: usage,
      memWorkingSetBytes: workingSet(usage, inactiveFile),
      memLimitBytes: max === undefined ? undefined : parseSingleValue(max),
      memMaxUsageBytes: peak === undefined ? undefined : parseSingleValue(peak),
      memSoftLimitBytes: low === undefined ? undefined : parseSingleValue(low),
      pageFaults: memStat === undefined ? undefined : keyedValue(memStat, "pgfault"),
      majorPageFaults: memStat === undefined ? undefined : keyedValue(memStat, "pgmajfault"),
      pressure: this.readPressure(dir),
      subcontainers: 0,
    };
  }

  private readV1(path: string): TaskSample {
    const usageNs = this.file("cpuacct", path, "cpuacct.usage");
    const cpuStat = this.file("cpu", path, "cpu.stat");
    const memStat = this.file("memory", path, "memory.stat");
    const usage = this.file("memory", path, "memory.usage_in_bytes");
    const limit = this.file("memory", path, "memory.limit_in_bytes");
    const maxUsage = this.file("memory", path, "memory.max_usage_in_bytes");
    const soft = this.file("memory", path, "memory.soft_limit_in_bytes");
    const ns = single(usageNs);
    const throttledNs = cpuStat === undefined ? undefined : keyedValue(cpuStat, "throttled_time");
    const usageBytes = single(usage);
    // The pod cgroup holds no processes itself, so the hierarchical total_ counters are the pod's.
    const inactiveFile = memStat === undefined ? undefined : keyedValue(memStat, "total_inactive_file");
    // Hybrid mode: PSI comes from the unified mount when the pod's cgroup exists there too.
    const psiDir = this.psiPaths.has(path) ? `${this.layout.psiRoot}${path}` : undefined;
    return {
      path,
      cpuUsageSeconds: ns === undefined ? undefined : ns / 1e9,
      cpuPeriods: cpuStat === undefined ? undefined : keyedValue(cpuStat, "nr_periods"),
      cpuThrottledPeriods: cpuStat === undefined ? undefined : keyedValue(cpuStat, "nr_throttled"),
      cpuThrottledSeconds: throttledNs === undefined ? undefined : throttledNs / 1e9,
      memUsageBytes: usageBytes,
      memWorkingSetBytes: workingSet(usageBytes, inactiveFile),
      memLimitBytes: single(limit),
      memMaxUsageBytes: single(maxUsage),
      memSoftLimitBytes: single(soft),
      pageFaults: memStat === undefined ? undefined : keyedValue(memStat, "total_pgfault"),
      majorPageFaults: memStat === undefined ? undefined : keyedValue(memStat, "total_pgmajfault"),
      pressure: psiDir === undefined ? {} : this.readPressure(psiDir),
      subcontainers: 0,
    };
  }

  private readPressure(dir: string): TaskSample["pressure"] {
    const out: TaskSample["pressure"] = {};
    for (const resource of ["cpu", "memory", "io"] as const) {
      const text = this.readFile(`${dir}/${resource}.pressure`);
      if (text !== undefined) out[resource] = parsePressure(text);
    }
    return out;
  }

  private countContainers(path: string, containers: readonly TaskContainer[]): number {
    if (containers.length === 0) return 0;
    const dir = cgroupDir(this.layout, "cpu", path) ?? this.layout.root + path;
    let names: Set<string>;
    try {
      names = new Set(readdirSync(dir));
    } catch {
      return 0;
    }
    return containers.filter((c) => names.has(containerCgroupName(this.layout.driver, c))).length;
  }

  /**
   * readQuota reads a cgroup's cpu quota and period (cpu.max, or cpu.cfs_quota_us and
   * cpu.cfs_period_us); undefined when the files are not there (no such cgroup).
   */
  readQuota(path: string): Pick<TaskAllocationState, "cpuQuota" | "cpuPeriodUsec"> | undefined {
    if (this.layout.version === "v2") {
      const max = this.file("cpu", path, "cpu.max");
      const parsed = max === undefined ? undefined : parseCpuMax(max);
      return parsed
        ? { cpuQuota: parsed.quotaUsec / parsed.periodUsec, cpuPeriodUsec: parsed.periodUsec }
        : undefined;
    }
    const quota = this.file("cpu", path, "cpu.cfs_quota_us");
    const period = this.file("cpu", path, "cpu.cfs_period_us");
    const q = quota === undefined ? undefined : parseSingleValue(quota);
    const p = period === undefined ? undefined : parseSingleValue(period);
    return q !== undefined && p !== undefined && p > 0 ? { cpuQuota: q / p, cpuPeriodUsec: p } : undefined;
  }

  /** readAllocation reads what the pod cgroup currently allows (quota, shares/weight, cpuset). */
  readAllocation(path: string): TaskAllocationState {
    const state: TaskAllocationState = { ...this.readQuota(path) };
    if (this.layout.version === "v2") {
      const weight = this.file("cpu", path, "cpu.weight");
      if (weight !== undefined) state.cpuWeight = parseSingleValue(weight);
    } else {
      const shares = this.file("cpu", path, "cpu.shares");
      if (shares !== undefined) state.cpuShares = parseSingleValue(shares);
    }
    const cpus = this.file("cpuset", path, "cpuset.cpus");
    const list = cpus === undefined ? undefined : parseCpuList(cpus);
    if (list !== undefined) state.cpusetCpus = formatCpuList(list);
    return state;
  }
}

/** single reads a one-number file's text, if there was one. */
function single(text: string | undefined): number | undefined {
  return text === undefined ? undefined : parseSingleValue(text);
}

function workingSet(usage: number | undefined, inactiveFile: number | undefined): number | undefined {
  if (usage === undefined) return undefined;
  return Math.max(0, usage - (inactiveFile ?? 0));
}
