/**
 * Work assignment: which worker runs which job. Pure (no I/O, no clock, no randomness) so that the
 * controller, the CLI and the benchmark all compute the same thing.
 *
 * The result is balanced first and sticky second, as in Kafka's StickyAssignor: shared jobs are
 * spread so that worker job counts differ by at most one, and among all balanced assignments the
 * one that moves the fewest previously assigned jobs is chosen. It runs in O(K log K + n log n) for
 * K jobs and n workers: a million jobs over a thousand workers take about a second on an idle core.
 */
import { SwarmError } from "./errors.js";
import { compareJobNames, compareWorkerNames } from "./order.js";

/**
 * Assignment maps each worker name to the jobs it runs. assignWork returns workers in ordinal order
 * (see compareWorkerNames), each with its jobs in code-unit order, and lists every worker, including
 * those with no jobs.
 */
export type Assignment = ReadonlyMap<string, readonly string[]>;

/** SwarmPolicy is the quality-of-service policy of a pool. */
export interface SwarmPolicy {
  /**
   * dedicated jobs each get a worker of their own: that worker runs only this job, and the other
   * (shared) jobs are balanced over the remaining workers. Every dedicated job must be in the job
   * list. With D dedicated jobs the pool needs at least D workers, and D+1 when there are shared
   * jobs too; otherwise assignWork throws `insufficient-workers` rather than silently sharing a
   * worker that was promised to one job. @default []
   */
  dedicated?: readonly string[];
}

/**
 * assignWork assigns every job to exactly one worker.
 *
 * - Deterministic: the result depends only on the sets of jobs, workers, dedicated jobs and on the
 *   previous assignment as a relation, never on the order of any input.
 * - Balanced: workers that run shared jobs differ by at most one job; a dedicated job's worker runs
 *   that job alone.
 * - Sticky, with the exact minimum movement: a job stays on its previous worker unless that worker
 *   is gone, became dedicated to another job, or holds more jobs than its balanced share. Workers
 *   holding the most jobs are given the `+1` shares, which is what makes the number of moves the
 *   minimum over all balanced assignments. So on n -> n+1 workers the new worker takes exactly
 *   floor(K/(n+1)) jobs and nothing else moves; on removing a worker only its jobs move.
 * - Ties are broken by name: `+1` shares go to lower ordinals among equally loaded workers, a
 *   worker over its share gives up its last jobs in code-unit order, and unplaced jobs fill workers
 *   in ordinal order, sorted. So with no previous assignment the result is contiguous ranges of the
 *   sorted job names by worker ordinal (Kafka's RangeAssignor, without the original's overlap).
 * - Dedicated jobs count too: the workers given to dedicated jobs are those that make the total
 *   number of moves (dedicated and shared) the minimum. A dedicated job usually stays on its
 *   previous worker, but moves to another (a new, empty one, say) when that moves fewer jobs than
 *   pushing out its worker's shared jobs. Among equal choices more dedicated jobs stay, and then
 *   the emptiest, lowest ordinals are taken, because StatefulSets remove the highest ordinals when
 *   scaling down.
 *
 * `previous` may be stale or odd: workers and jobs that no longer exist are ignored, and a job
 * listed under several surviving workers counts as held by the first in ordinal order.
 *
 * Throws SwarmError for duplicate or empty names, jobs with no workers, unknown dedicated jobs and
 * too few workers for the dedicated jobs.
 */
export function assignWork(
  jobs: readonly string[],
  workers: readonly string[],
  previous?: Assignment,
  policy: SwarmPolicy = {},
): Assignment {
  const jobIndex = indexNames(jobs, "job");
  const workerIndex = indexNames(workers, "worker");
  const dedicated = checkDedicated(jobIndex, policy.dedicated ?? []);
  const sharedJobCount = jobs.length - dedicated.size;
  checkCapacity(jobs.length, workers.length, dedicated.size, sharedJobCount);

  const ordered = [...workerIndex.keys()].sort(compareWorkerNames);
  const { held, claimed } = heldJobs(ordered, jobIndex, previous);
  const dedicatedTo = placeDedicated(ordered, held, dedicated, sharedJobCount);
  const dedicatedWorkers = new Set(dedicatedTo.values());
  const shared = ordered.filter((w) => !dedicatedWorkers.has(w));

  // free collects the shared jobs without a place: never held, held by a worker that is now
  // dedicated, or (below) evicted from a worker over its share.
  const free: string[] = [];
  for (let i = 0; i < jobs.length; i++) {
    const j = jobs[i] as string;
    if (claimed[i] === 0 && !dedicated.has(j)) free.push(j);
  }
  const kept = new Map<string, string[]>();
  for (const w of ordered) {
    const list = (held.get(w) ?? []).filter((j) => !dedicated.has(j));
    if (!dedicatedWorkers.has(w)) kept.set(w, list);
    else for (const j of list) free.push(j);
  }
  const targets = balancedTargets(shared, kept, sharedJobCount);
  evictOverTarget(shared, kept, targets, free);
  free.sort(compareJobNames);

  const result = new Map<string, readonly string[]>();
  const workerOfDedicated = new Map([...dedicatedTo].map(([job, w]) => [w, job]));
  let next = 0;
  for (const w of ordered) {
    const job = workerOfDedicated.get(w);
    if (job !== undefined) {
      result.set(w, [job]);
      continue;
    }
    const list = kept.get(w) ?? [];
    const spare = (targets.get(w) ?? 0) - list.length;
    for (let i = 0; i < spare; i++) list.push(free[next++] as string);
    result.set(w, list.sort(compareJobNames));
  }
  return result;
}

/**
 * movedJobs lists, in code-unit order, the jobs of `next` that were assigned in `previous` but now
 * run on a worker that did not hold them there. New jobs are not moves; jobs whose previous worker
 * is gone are.
 */
export function movedJobs(previous: Assignment, next: Assignment): string[] {
  const holders = new Map<string, Set<string> | string>();
  for (const [w, list] of previous) {
    for (const j of list) {
      const h = holders.get(j);
      if (h === undefined) holders.set(j, w);
      else if (typeof h === "string") holders.set(j, new Set([h, w]));
      else h.add(w);
    }
  }
  const moved: string[] = [];
  for (const [w, list] of next) {
    for (const j of list) {
      const h = holders.get(j);
      if (h === undefined) continue;
      if (typeof h === "string" ? h !== w : !h.has(w)) moved.push(j);
    }
  }
  return moved.sort(compareJobNames);
}

/**
 * indexNames maps each name to its position, rejecting empty and repeated names. A Map lookup per
 * previous entry plus a flag array is much cheaper than building Sets of a million strings.
 */
function indexNames(names: readonly string[], what: "job" | "worker"): Map<string, number> {
  const index = new Map<string, number>();
  const duplicates = new Set<string>();
  for (let i = 0; i < names.length; i++) {
    const name = names[i];
    if (typeof name !== "string" || name === "") {
      throw new SwarmError(
        "invalid-name",
        `${what} names must be non-empty strings (got ${JSON.stringify(name)})`,
      );
    }
    const size = index.size;
    index.set(name, i);
    if (index.size === size) duplicates.add(name);
  }
  if (duplicates.size > 0) {
    const reason = what === "job" ? "duplicate-job" : "duplicate-worker";
    throw new SwarmError(reason, `${what}s listed more than once: ${listNames(duplicates)}`);
  }
  return index;
}

function checkDedicated(jobs: ReadonlyMap<string, number>, dedicated: readonly string[]): Set<string> {
  const set = new Set(dedicated);
  const unknown = [...set].filter((j) => !jobs.has(j));
  if (unknown.length > 0) {
    throw new SwarmError(
      "unknown-dedicated-job",
      `dedicated jobs that are not in the job list: ${listNames(unknown)}`,
    );
  }
  return set;
}

function checkCapacity(jobs: number, workers: number, dedicated: number, shared: number): void {
  if (jobs > 0 && workers === 0) {
    throw new SwarmError("no-workers", `no workers to run the ${count(jobs, "job")}`);
  }
  const needed = dedicated + (shared > 0 ? 1 : 0);
  if (needed > workers) {
    const plus = shared > 0 ? ` plus one for the ${count(shared, "shared job")}` : "";
    throw new SwarmError(
      "insufficient-workers",
      `${count(dedicated, "dedicated job")} ${dedicated === 1 ? "needs a worker of its own" : "need a worker each"}` +
        `${plus} (${count(needed, "worker")}), ` +
        `but the pool has ${workers}; add workers or dedicate fewer jobs`,
    );
  }
}

/**
 * heldJobs returns, for each surviving worker, the current jobs it held in `previous`; a job held
 * by several workers goes to the first in ordinal order, so `previous` need not be well formed.
 */
function heldJobs(
  ordered: readonly string[],
  jobs: ReadonlyMap<string, number>,
  previous: Assignment | undefined,
): { held: Map<string, string[]>; claimed: Uint8Array } {
  const held = new Map<string, string[]>();
  // claimed[i] is 1 when jobs' i-th job is held by a surviving worker.
  const claimed = new Uint8Array(jobs.size);
  if (previous === undefined) return { held, claimed };
  for (const w of ordered) {
    const list: string[] = [];
    for (const j of previous.get(w) ?? []) {
      const i = jobs.get(j);
      if (i === undefined || claimed[i] === 1) continue;
      claimed[i] = 1;
      list.push(j);
    }
    held.set(w, list);
  }
  return { held, claimed };
}

/**
 * placeDedicated maps each dedicated job to its own worker (see SwarmPolicy.dedicated), choosing
 * the set of dedicated workers that moves the fewest jobs in total. Whatever the choice, the
 * shared workers number m = n - D and get shares of floor(S/m) or one more, so the choice costs:
 * - one move per dedicated job that leaves its surviving worker (a chosen worker keeps one of the
 *   dedicated jobs it held, the first in name order; the others it held must go);
 * - every shared job a chosen worker held;
 * - the shared jobs the remaining workers hold beyond their shares, which is fewest when the
 *   `+1` shares go to the workers holding more than floor(S/m) (see balancedTargets).
 * So a worker w costs c(w) = min(held shared, floor(S/m)) - (1 if it held a dedicated job), plus
 * one for each worker holding more than floor(S/m) that is chosen once fewer than S mod m such
 * workers remain. Choosing the k cheapest of those "big" workers and the D-k cheapest others, for
 * the best k, is therefore exact. Ties prefer more dedicated jobs staying, then fewer big workers,
 * then the order below (cheaper, then emptier, then lower ordinal, because StatefulSets remove the
 * highest ordinals when scaling down).
 */
function placeDedicated(
  ordered: readonly string[],
  held: ReadonlyMap<string, readonly string[]>,
  dedicated: ReadonlySet<string>,
  sharedJobs: number,
): Map<string, string> {
  const placed = new Map<string, string>();
  if (dedicated.size === 0) return placed;
  const size = dedicated.size;
  const sharedWorkers = ordered.length - size;
  const base = sharedWorkers > 0 ? Math.floor(sharedJobs / sharedWorkers) : 0;
  const extra = sharedWorkers > 0 ? sharedJobs % sharedWorkers : 0;
  interface Candidate {
    worker: string;
    ordinal: number;
    shared: number;
    /** own is the dedicated job it would keep: the first in name order of those it held. */
    own: string | undefined;
    cost: number;
  }
  const big: Candidate[] = [];
  const small: Candidate[] = [];
  ordered.forEach((worker, ordinal) => {
    let shared = 0;
    let own: string | undefined;
    for (const j of held.get(worker) ?? []) {
      if (!dedicated.has(j)) shared++;
      else if (own === undefined || compareJobNames(j, own) < 0) own = j;
    }
    const cost = Math.min(shared, base) - (own === undefined ? 0 : 1);
    (shared > base ? big : small).push({ worker, ordinal, shared, own, cost });
  });
  const byCost = (a: Candidate, b: Candidate): number =>
    a.cost - b.cost ||
    (a.own === undefined ? 1 : 0) - (b.own === undefined ? 1 : 0) ||
    a.shared - b.shared ||
    a.ordinal - b.ordinal;
  big.sort(byCost);
  small.sort(byCost);
  const prefix = (list: readonly Candidate[]): { cost: number[]; stays: number[] } => {
    const cost = [0];
    const stays = [0];
    list.forEach((c, i) => {
      cost.push((cost[i] as number) + c.cost);
      stays.push((stays[i] as number) + (c.own === undefined ? 0 : 1));
    });
    return { cost, stays };
  };
  const bigSums = prefix(big);
  const smallSums = prefix(small);
  let best: { k: number; cost: number; stays: number } | undefined;
  for (let k = Math.max(0, size - small.length); k <= Math.min(size, big.length); k++) {
    // Fewer big workers left to take the `+1` shares keeps fewer of their jobs in place.
    const lost = Math.max(0, extra - (big.length - k));
    const cost = (bigSums.cost[k] as number) + (smallSums.cost[size - k] as number) + lost;
    const stays = (bigSums.stays[k] as number) + (smallSums.stays[size - k] as number);
    if (best === undefined || cost < best.cost || (cost === best.cost && stays > best.stays)) {
      best = { k, cost, stays };
    }
  }
  const k = best?.k ?? 0;
  const chosen = [...big.slice(0, k), ...small.slice(0, size - k)].sort((a, b) => a.ordinal - b.ordinal);
  const open: string[] = [];
  for (const c of chosen) {
    if (c.own !== undefined) placed.set(c.own, c.worker);
    else open.push(c.worker);
  }
  let next = 0;
  for (const j of [...dedicated].sort(compareJobNames)) {
    if (!placed.has(j)) placed.set(j, open[next++] as string);
  }
  return placed;
}

/**
 * balancedTargets gives each shared worker its share: floor(S/m), plus one for the S mod m workers
 * that hold the most jobs now (lowest ordinal among equals). Any other choice of who gets the extra
 * job keeps fewer jobs in place, which is why the resulting movement is the minimum.
 */
function balancedTargets(
  shared: readonly string[],
  kept: ReadonlyMap<string, readonly string[]>,
  sharedJobs: number,
): Map<string, number> {
  const targets = new Map<string, number>();
  if (shared.length === 0) return targets;
  const base = Math.floor(sharedJobs / shared.length);
  const extra = sharedJobs % shared.length;
  const byLoad = [...shared].sort(
    (a, b) => (kept.get(b)?.length ?? 0) - (kept.get(a)?.length ?? 0) || compareWorkerNames(a, b),
  );
  byLoad.forEach((w, i) => targets.set(w, base + (i < extra ? 1 : 0)));
  return targets;
}

/** evictOverTarget trims each worker to its share, keeping its first jobs in code-unit order. */
function evictOverTarget(
  shared: readonly string[],
  kept: Map<string, string[]>,
  targets: ReadonlyMap<string, number>,
  free: string[],
): void {
  for (const w of shared) {
    const list = kept.get(w) ?? [];
    const target = targets.get(w) ?? 0;
    if (list.length <= target) continue;
    list.sort(compareJobNames);
    for (const j of list.splice(target)) free.push(j);
  }
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

function listNames(names: Iterable<string>): string {
  const all = [...names].sort(compareJobNames);
  const shown = all.slice(0, 10).map((n) => JSON.stringify(n));
  return all.length > 10 ? `${shown.join(", ")} and ${all.length - 10} more` : shown.join(", ");
}
