import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { assignWork, movedJobs, type Assignment } from "./assign.js";
import { SwarmError } from "./errors.js";

// The 27 streams of the seed's example ConfigMap.
const seedStreams = [
  "stream:xxrtve1",
  "stream:xxrtve2",
  "stream:zrtve2:new",
  "stream:zrtve1:new",
  "stream:zrtve0:new",
  "stream:cctv0:updated",
  "stream:history:new",
  "stream:foo:new",
  "stream:xxctv3:new",
  "stream:cctv3:updated",
  "stream:xxctv0:updated",
  "stream:xxctv10:updated",
  "stream:xxctv11:updated",
  "stream:xxctv12:updated",
  "stream:xxctv13:updated",
  "stream:xxctv14:updated",
  "stream:yxctv1:updated",
  "stream:yxctv2:updated",
  "stream:yxctv3:updated",
  "stream:xabcn0:updated",
  "stream:xacb01:updated",
  "stream:xacb02:updated",
  "stream:xacb03:updated",
  "stream:xacb04:updated",
  "stream:sportnews0:updated",
  "stream:cars:new",
  "stream:cars:updated",
];

const runs = { numRuns: 300 };

// ---- generators -------------------------------------------------------------------------------

const jobName = fc.oneof(
  fc.nat(300).map((i) => `stream:${i}`),
  fc.string({ minLength: 1, maxLength: 4 }),
);
const jobsArb = fc.uniqueArray(jobName, { maxLength: 70 });
const workersArb = fc.uniqueArray(
  fc.nat(30).map((i) => `w-${i}`),
  { minLength: 1, maxLength: 7 },
);

/** Scenario is a job list, a worker list and an arbitrary (unbalanced, stale) previous assignment. */
interface Scenario {
  jobs: string[];
  workers: string[];
  previous: Assignment;
  seed: number;
}

/** scenarioArb gives each job at most one previous owner, among current and vanished workers. */
const scenarioArb: fc.Arbitrary<Scenario> = fc
  .tuple(jobsArb, workersArb)
  .chain(([jobs, workers]) => {
    const owners = [...workers, "gone-0", "gone-1"];
    return fc.record({
      jobs: fc.constant(jobs),
      workers: fc.constant(workers),
      owner: fc.array(fc.integer({ min: -1, max: owners.length - 1 }), {
        minLength: jobs.length,
        maxLength: jobs.length,
      }),
      stale: fc.uniqueArray(
        fc.nat(20).map((i) => `stale:${i}`),
        { maxLength: 4 },
      ),
      seed: fc.nat(),
    });
  })
  .map(({ jobs, workers, owner, stale, seed }) => {
    const owners = [...workers, "gone-0", "gone-1"];
    const previous = new Map<string, string[]>();
    jobs.forEach((job, i) => {
      const o = owner[i] ?? -1;
      if (o < 0) return;
      const w = owners[o] as string;
      previous.set(w, [...(previous.get(w) ?? []), job]);
    });
    // Jobs that no longer exist, on the first worker, must be ignored.
    if (workers[0] !== undefined) previous.set(workers[0], [...(previous.get(workers[0]) ?? []), ...stale]);
    return { jobs, workers, previous, seed };
  });

/**
 * messyScenarioArb also lists some jobs under several workers, as the original operator's
 * overlapping ranges did, and repeats some within one worker's list.
 */
const messyScenarioArb: fc.Arbitrary<Scenario> = scenarioArb.chain((sc) =>
  fc.array(fc.tuple(fc.nat(), fc.nat()), { maxLength: 8 }).map((extra) => {
    const previous = new Map([...sc.previous].map(([w, jobs]) => [w, [...jobs]]));
    const owners = [...sc.workers, "gone-0"];
    for (const [j, o] of extra) {
      const job = sc.jobs[j % Math.max(1, sc.jobs.length)];
      const w = owners[o % owners.length] as string;
      if (job !== undefined) previous.set(w, [...(previous.get(w) ?? []), job]);
    }
    return { ...sc, previous };
  }),
);

// ---- helpers ------------------------------------------------------------------------------------

/** shuffled permutes a copy with a seeded PRNG (mulberry32), so failures replay. */
function shuffled<T>(items: readonly T[], seed: number): T[] {
  let s = seed >>> 0;
  const rand = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

function shuffledAssignment(a: Assignment, seed: number): Assignment {
  return new Map(shuffled([...a], seed).map(([w, jobs], i) => [w, shuffled(jobs, seed + i + 1)]));
}

function ownerOf(a: Assignment): Map<string, string> {
  const owner = new Map<string, string>();
  for (const [w, jobs] of a) for (const j of jobs) owner.set(j, w);
  return owner;
}

function loads(a: Assignment): number[] {
  return [...a.values()].map((jobs) => jobs.length);
}

/** stayingMoves counts jobs whose previous worker survives but that now run elsewhere. */
function stayingMoves(previous: Assignment, next: Assignment): number {
  const before = ownerOf(previous);
  const after = ownerOf(next);
  let moves = 0;
  for (const [job, w] of after) {
    const was = before.get(job);
    if (was !== undefined && next.has(was) && was !== w) moves++;
  }
  return moves;
}

/**
 * minimumMoves is the least number of jobs that must leave a surviving worker in any balanced
 * assignment, by brute force over which workers get the `+1` shares: an independent check of the
 * greedy choice inside assignWork.
 */
function minimumMoves(jobs: readonly string[], workers: readonly string[], previous: Assignment): number {
  const current = new Set(jobs);
  const held = workers.map((w) => (previous.get(w) ?? []).filter((j) => current.has(j)).length);
  const base = Math.floor(jobs.length / workers.length);
  const extra = jobs.length % workers.length;
  let bestKept = -1;
  for (let mask = 0; mask < 1 << workers.length; mask++) {
    if (popcount(mask) !== extra) continue;
    const kept = held.reduce((sum, h, i) => sum + Math.min(h, base + ((mask >> i) & 1)), 0);
    bestKept = Math.max(bestKept, kept);
  }
  return held.reduce((a, b) => a + b, 0) - bestKept;
}

function popcount(n: number): number {
  let c = 0;
  for (let x = n; x > 0; x >>= 1) c += x & 1;
  return c;
}

function assertComplete(jobs: readonly string[], workers: readonly string[], a: Assignment): void {
  assert.deepEqual([...a.keys()].sort(), [...workers].sort(), "every worker listed, and only those");
  const all = [...a.values()].flat();
  assert.equal(all.length, jobs.length, "no job twice");
  assert.deepEqual(new Set(all), new Set(jobs), "every job once");
}

function spread(values: readonly number[]): number {
  return values.length === 0 ? 0 : Math.max(...values) - Math.min(...values);
}

// ---- properties ---------------------------------------------------------------------------------

test("Verifies that every job is assigned exactly once, to a listed worker, whatever the previous", () => {
  fc.assert(
    fc.property(messyScenarioArb, ({ jobs, workers, previous }) => {
      assertComplete(jobs, workers, assignWork(jobs, workers, previous));
      assertComplete(jobs, workers, assignWork(jobs, workers));
    }),
    runs,
  );
});

test("Verifies that job counts differ by at most one", () => {
  fc.assert(
    fc.property(messyScenarioArb, ({ jobs, workers, previous }) => {
      assert.ok(spread(loads(assignWork(jobs, workers, previous))) <= 1);
      assert.ok(spread(loads(assignWork(jobs, workers))) <= 1);
    }),
    runs,
  );
});

test("Verifies that the result does not depend on the order of any input", () => {
  fc.assert(
    fc.property(messyScenarioArb, fc.uniqueArray(fc.nat(5)), ({ jobs, workers, previous, seed }, pick) => {
      const dedicated = jobs.filter((_, i) => pick.includes(i)).slice(0, workers.length - 1);
      const policy = { dedicated };
      const reordered = { dedicated: shuffled(dedicated, seed + 3) };
      const a = assignWork(jobs, workers, previous, policy);
      const b = assignWork(
        shuffled(jobs, seed),
        shuffled(workers, seed + 1),
        shuffledAssignment(previous, seed + 2),
        reordered,
      );
      assert.deepEqual([...b], [...a], "same entries in the same order");
      const fresh = assignWork(jobs, workers, undefined, policy);
      assert.deepEqual(
        [...assignWork(shuffled(jobs, seed), shuffled(workers, seed + 1), undefined, reordered)],
        [...fresh],
      );
    }),
    runs,
  );
});

test("Verifies that jobs move exactly the minimum number of times balance requires", () => {
  fc.assert(
    fc.property(scenarioArb, ({ jobs, workers, previous }) => {
      const next = assignWork(jobs, workers, previous);
      assert.equal(stayingMoves(previous, next), minimumMoves(jobs, workers, previous));
    }),
    runs,
  );
});

test("Verifies that feeding an assignment back as previous changes nothing", () => {
  fc.assert(
    fc.property(messyScenarioArb, ({ jobs, workers, previous }) => {
      const once = assignWork(jobs, workers, previous);
      assert.deepEqual([...assignWork(jobs, workers, once)], [...once]);
    }),
    runs,
  );
});

/** balancedArb is a balanced assignment reached through an arbitrary history, plus a fresh name. */
const balancedArb = scenarioArb.map(({ jobs, workers, previous, seed }) => ({
  jobs,
  workers,
  current: assignWork(jobs, workers, previous),
  seed,
}));

test("Verifies that on n -> n+1 workers exactly floor(K/(n+1)) jobs move, all to the new worker", () => {
  fc.assert(
    fc.property(balancedArb, ({ jobs, workers, current }) => {
      const added = "w-new";
      const next = assignWork(jobs, [...workers, added], current);
      const moved = movedJobs(current, next);
      const share = Math.floor(jobs.length / (workers.length + 1));
      assert.equal(moved.length, share);
      assert.deepEqual(moved, [...(next.get(added) ?? [])]);
    }),
    runs,
  );
});

test("Verifies that on removing any worker only that worker's jobs move", () => {
  fc.assert(
    fc.property(
      balancedArb.filter(({ workers }) => workers.length >= 2),
      fc.nat(),
      ({ jobs, workers, current }, k) => {
        const removed = workers[k % workers.length] as string;
        const next = assignWork(
          jobs,
          workers.filter((w) => w !== removed),
          current,
        );
        assert.deepEqual(movedJobs(current, next), [...(current.get(removed) ?? [])].sort());
        assert.ok(spread(loads(next)) <= 1);
      },
    ),
    runs,
  );
});

test("Verifies that adding a job moves no other job", () => {
  fc.assert(
    fc.property(balancedArb, ({ jobs, workers, current }) => {
      const next = assignWork([...jobs, "job:added"], workers, current);
      assert.deepEqual(movedJobs(current, next), []);
      assert.ok(spread(loads(next)) <= 1);
    }),
    runs,
  );
});

test("Verifies that removing a job moves one other job only when balance requires it", () => {
  fc.assert(
    fc.property(
      balancedArb.filter(({ jobs }) => jobs.length > 0),
      fc.nat(),
      ({ jobs, current }, k) => {
        const removed = jobs[k % jobs.length] as string;
        const holder = ownerOf(current).get(removed) as string;
        const before = loads(current);
        const low = Math.min(...before);
        // Balance forces a move only when the holder drops to low-1 while another worker has low+1.
        const forced = (current.get(holder)?.length ?? 0) === low && before.includes(low + 1) ? 1 : 0;
        const next = assignWork(
          jobs.filter((j) => j !== removed),
          [...current.keys()],
          current,
        );
        assert.equal(movedJobs(current, next).length, forced);
      },
    ),
    runs,
  );
});

// ---- QoS: dedicated jobs ------------------------------------------------------------------------

/** dedicatedArb: jobs, a dedicated subset, and enough workers (one per dedicated job, plus one). */
const dedicatedArb = fc
  .tuple(fc.uniqueArray(jobName, { minLength: 1, maxLength: 40 }), fc.nat(), fc.integer({ min: 1, max: 4 }))
  .map(([jobs, k, spare]) => {
    const dedicated = jobs.filter((_, i) => (k >> i) % 2 === 1).slice(0, 5);
    const workers = Array.from({ length: dedicated.length + spare }, (_, i) => `w-${i}`);
    return { jobs, dedicated, workers };
  });

test("Verifies that each dedicated job runs alone and the shared jobs stay balanced", () => {
  fc.assert(
    fc.property(dedicatedArb, scenarioArb, ({ jobs, dedicated, workers }, { previous }) => {
      const a = assignWork(jobs, workers, previous, { dedicated });
      assertComplete(jobs, workers, a);
      const owner = ownerOf(a);
      for (const d of dedicated) assert.deepEqual(a.get(owner.get(d) as string), [d]);
      const dedicatedWorkers = new Set(dedicated.map((d) => owner.get(d)));
      const shared = [...a].filter(([w]) => !dedicatedWorkers.has(w)).map(([, js]) => js.length);
      assert.ok(spread(shared) <= 1);
    }),
    runs,
  );
});

test("Verifies that a dedicated job keeps its worker when that worker survives", () => {
  fc.assert(
    fc.property(dedicatedArb, ({ jobs, dedicated, workers }) => {
      const before = assignWork(jobs, workers);
      const owner = ownerOf(before);
      const after = assignWork(jobs, workers, before, { dedicated });
      // Where two dedicated jobs shared a worker, the first in name order keeps it.
      const winners = new Map<string, string>();
      for (const d of [...dedicated].sort())
        if (!winners.has(owner.get(d) as string)) winners.set(owner.get(d) as string, d);
      for (const [w, d] of winners) assert.deepEqual(after.get(w), [d]);
      // And once placed, nothing moves on a recomputation.
      assert.deepEqual([...assignWork(jobs, workers, after, { dedicated })], [...after]);
    }),
    runs,
  );
});

/**
 * minimumMovesDedicated is the least number of jobs that must leave a surviving worker, by brute
 * force over every placement of the dedicated jobs on distinct workers and, for each, over the
 * `+1` shares of the remaining workers (minimumMoves): independent of placeDedicated's reasoning.
 */
function minimumMovesDedicated(
  jobs: readonly string[],
  workers: readonly string[],
  previous: Assignment,
  dedicated: readonly string[],
): number {
  const current = new Set(jobs);
  const isDedicated = new Set(dedicated);
  const owner = new Map<string, string>();
  for (const w of workers) for (const j of previous.get(w) ?? []) if (current.has(j)) owner.set(j, w);
  const shared = jobs.filter((j) => !isDedicated.has(j));
  let best = Infinity;
  const place = (i: number, used: readonly string[]): void => {
    if (i === dedicated.length) {
      const rest = workers.filter((w) => !used.includes(w));
      if (rest.length === 0 && shared.length > 0) return;
      let moves = dedicated.filter((d, k) => owner.has(d) && owner.get(d) !== used[k]).length;
      // Shared jobs held by a dedicated worker all move.
      moves += shared.filter((j) => used.includes(owner.get(j) ?? "")).length;
      if (rest.length > 0) {
        const kept = new Map(
          rest.map((w) => [w, (previous.get(w) ?? []).filter((j) => !isDedicated.has(j))]),
        );
        moves += minimumMoves(shared, rest, kept);
      }
      best = Math.min(best, moves);
      return;
    }
    for (const w of workers) if (!used.includes(w)) place(i + 1, [...used, w]);
  };
  place(0, []);
  return best;
}

test("Verifies that with dedicated jobs, jobs move exactly the minimum number of times over all placements", () => {
  fc.assert(
    fc.property(scenarioArb, fc.uniqueArray(fc.nat(69), { maxLength: 3 }), (sc, pick) => {
      const { jobs, workers, previous } = sc;
      const dedicated = [...new Set(pick.map((i) => jobs[i % Math.max(1, jobs.length)]))].filter(
        (j): j is string => j !== undefined,
      );
      const needed = dedicated.length + (jobs.length > dedicated.length ? 1 : 0);
      fc.pre(needed <= workers.length);
      const next = assignWork(jobs, workers, previous, { dedicated });
      assert.equal(stayingMoves(previous, next), minimumMovesDedicated(jobs, workers, previous, dedicated));
    }),
    { numRuns: 500 },
  );
});

test("Verifies that scaling w-0=[a,b,c,d], w-1=[e,f,g,h] to three workers and dedicating h moves h alone", () => {
  const previous = new Map([
    ["w-0", ["a", "b", "c", "d"]],
    ["w-1", ["e", "f", "g", "h"]],
  ]);
  const jobs = ["a", "b", "c", "d", "e", "f", "g", "h"];
  const next = assignWork(jobs, ["w-0", "w-1", "w-2"], previous, { dedicated: ["h"] });
  assert.deepEqual(
    [...next],
    [
      ["w-0", ["a", "b", "c", "d"]],
      ["w-1", ["e", "f", "g"]],
      ["w-2", ["h"]],
    ],
  );
  assert.deepEqual(movedJobs(previous, next), ["h"]);
  // With no spare worker, h still stays and its worker's shared jobs go.
  const two = assignWork(jobs, ["w-0", "w-1"], previous, { dedicated: ["h"] });
  assert.deepEqual(two.get("w-1"), ["h"]);
});

// ---- examples -----------------------------------------------------------------------------------

test("Verifies that the seed's 27 streams split 14/13 over two workers with no overlap or gap", () => {
  const a = assignWork(seedStreams, ["swarm-worker-1", "swarm-worker-0"]);
  assert.deepEqual([...a.keys()], ["swarm-worker-0", "swarm-worker-1"]);
  assert.deepEqual(loads(a), [14, 13]);
  assertComplete(seedStreams, ["swarm-worker-0", "swarm-worker-1"], a);
  // With no previous assignment the result is contiguous ranges of the sorted names.
  assert.deepEqual([...a.values()].flat(), [...seedStreams].sort());
});

test("Verifies that scaling the seed's pool to three moves 9 streams, all to the new worker", () => {
  const two = assignWork(seedStreams, ["swarm-worker-0", "swarm-worker-1"]);
  const three = assignWork(seedStreams, ["swarm-worker-0", "swarm-worker-1", "swarm-worker-2"], two);
  assert.deepEqual(loads(three), [9, 9, 9]);
  assert.deepEqual(movedJobs(two, three), [...(three.get("swarm-worker-2") ?? [])]);
  assert.equal(movedJobs(two, three).length, 9);
});

test("Verifies that workers come out in ordinal order, w-2 before w-10", () => {
  const a = assignWork(["a", "b", "c"], ["w-10", "w-2", "w-1"]);
  assert.deepEqual([...a.keys()], ["w-1", "w-2", "w-10"]);
});

test("Verifies that the original operator's overlapping output is repaired without extra moves", () => {
  // The original wrote job 13 under both workers and job 26 under none (research §B.3).
  const jobs = Array.from({ length: 27 }, (_, i) => `j${String(i).padStart(2, "0")}`);
  const broken = new Map([
    ["swarm-worker-0", jobs.slice(0, 14)],
    ["swarm-worker-1", jobs.slice(13, 26)],
  ]);
  const a = assignWork(jobs, ["swarm-worker-0", "swarm-worker-1"], broken);
  assertComplete(jobs, ["swarm-worker-0", "swarm-worker-1"], a);
  assert.deepEqual(a.get("swarm-worker-0"), jobs.slice(0, 14));
  assert.deepEqual(a.get("swarm-worker-1"), jobs.slice(14));
});

test("Verifies that no jobs give every worker an empty list, and no workers and no jobs is empty", () => {
  assert.deepEqual(
    [...assignWork([], ["w-0", "w-1"])],
    [
      ["w-0", []],
      ["w-1", []],
    ],
  );
  assert.equal(assignWork([], []).size, 0);
});

test("Verifies that as many dedicated jobs as workers, and no shared jobs, is allowed", () => {
  const a = assignWork(["a", "b"], ["w-0", "w-1"], undefined, { dedicated: ["b", "a"] });
  assert.deepEqual(
    [...a],
    [
      ["w-0", ["a"]],
      ["w-1", ["b"]],
    ],
  );
});

test("Verifies that a dedicated job without a previous worker takes the emptiest, lowest ordinal", () => {
  const previous = new Map([
    ["w-0", ["a", "b"]],
    ["w-1", ["c"]],
    ["w-2", ["d"]],
  ]);
  const a = assignWork(["a", "b", "c", "d", "e"], ["w-0", "w-1", "w-2", "w-3"], previous, {
    dedicated: ["e"],
  });
  assert.deepEqual(a.get("w-3"), ["e"]);
  assert.deepEqual(movedJobs(previous, a), []);
});

function assertSwarmError(fn: () => unknown, reason: string, message: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof SwarmError, String(err));
    assert.equal(err.reason, reason);
    assert.match(err.message, message);
    return true;
  });
}

test("Verifies that bad inputs fail with a SwarmError that says what to fix", () => {
  assertSwarmError(
    () => assignWork(["a", "b", "a"], ["w-0"]),
    "duplicate-job",
    /jobs listed more than once: "a"/,
  );
  assertSwarmError(() => assignWork(["a"], ["w-0", "w-0"]), "duplicate-worker", /"w-0"/);
  assertSwarmError(() => assignWork(["a", ""], ["w-0"]), "invalid-name", /job names must be non-empty/);
  assertSwarmError(() => assignWork(["a"], []), "no-workers", /no workers to run the 1 job$/);
  assertSwarmError(
    () => assignWork(["a"], ["w-0"], undefined, { dedicated: ["x", "y"] }),
    "unknown-dedicated-job",
    /not in the job list: "x", "y"/,
  );
  assertSwarmError(
    () => assignWork(["a", "b", "c"], ["w-0", "w-1"], undefined, { dedicated: ["a", "b"] }),
    "insufficient-workers",
    /2 dedicated jobs need a worker each plus one for the 1 shared job \(3 workers\), but the pool has 2/,
  );
  assertSwarmError(
    () => assignWork(["a", "b"], ["w-0"], undefined, { dedicated: ["a", "b"] }),
    "insufficient-workers",
    /need a worker each \(2 workers\), but the pool has 1/,
  );
});

test("Verifies that a million jobs over a thousand workers scale up in seconds, not minutes", () => {
  const jobs = Array.from({ length: 1_000_000 }, (_, i) => `stream:${i}`);
  const workers = Array.from({ length: 1000 }, (_, i) => `worker-${i}`);
  // CPU time, not wall time: the machine may be shared, and this process's own work is what scales.
  const start = process.cpuUsage();
  const before = assignWork(jobs, workers);
  const after = assignWork(jobs, [...workers, "worker-1000"], before);
  const used = process.cpuUsage(start);
  const elapsed = (used.user + used.system) / 1000;
  assert.equal(after.get("worker-1000")?.length, Math.floor(1_000_000 / 1001));
  // About 2 s on one core; an O(K*n) algorithm takes minutes here.
  assert.ok(elapsed < 20_000, `took ${Math.round(elapsed)} ms of CPU`);
});
