/**
 * The assignment schemes kubewise's assignWork is measured against. Each maps job i (of a fixed
 * job list) to a worker ordinal in [0, n), as an Int32Array, and is stateless: it recomputes from
 * the job list and n alone, which is how these schemes are used.
 */

/** Baseline is one scheme: a name and its assignment of K jobs to n workers. */
export interface Baseline {
  name: string;
  assign(jobs: readonly string[], n: number): Int32Array;
}

/**
 * contiguousRanges is the original operator's scheme with its start offset fixed: the job list, in
 * its configured order, cut into n contiguous ranges by worker ordinal, the first K mod n one job
 * longer (Kafka's RangeAssignor: start = base*i + min(i, extra)).
 */
export const contiguousRanges: Baseline = {
  name: "contiguous ranges",
  assign(jobs, n) {
    const owner = new Int32Array(jobs.length);
    const base = Math.floor(jobs.length / n);
    const extra = jobs.length % n;
    for (let i = 0; i < n; i++) {
      const start = base * i + Math.min(i, extra);
      owner.fill(i, start, start + base + (i < extra ? 1 : 0));
    }
    return owner;
  },
};

/** moduloHashing is `fnv32a(job) mod n` (Prometheus hashmod, Argo CD's legacy sharding). */
export const moduloHashing: Baseline = {
  name: "modulo hashing",
  assign(jobs, n) {
    const owner = new Int32Array(jobs.length);
    for (let j = 0; j < jobs.length; j++) owner[j] = fnv1a(jobs[j] as string) % n;
    return owner;
  },
};

/**
 * rendezvousHashing is highest random weight: each job goes to the worker with the largest
 * hash(job, worker). O(K*n): it is the one baseline whose cost grows with the pool.
 */
export const rendezvousHashing: Baseline = {
  name: "rendezvous hashing",
  assign(jobs, n) {
    const workerHash = new Uint32Array(n);
    for (let w = 0; w < n; w++) workerHash[w] = fnv1a(workerName(w));
    const owner = new Int32Array(jobs.length);
    for (let j = 0; j < jobs.length; j++) {
      const h = Math.imul(fnv1a(jobs[j] as string), 0x9e3779b1);
      let best = -1;
      let bestScore = -1;
      for (let w = 0; w < n; w++) {
        const score = fmix32(h ^ (workerHash[w] as number));
        if (score > bestScore) {
          bestScore = score;
          best = w;
        }
      }
      owner[j] = best;
    }
    return owner;
  },
};

/** workerName is the StatefulSet pod name of ordinal i, shared by every scheme. */
export function workerName(i: number): string {
  return `swarm-worker-${i}`;
}

/** fnv1a is 32-bit FNV-1a over the UTF-16 code units (the names here are ASCII). */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** fmix32 is MurmurHash3's finaliser: it spreads every input bit over the output. */
function fmix32(x: number): number {
  let h = x;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
