/** Rng returns a uniform number in [0, 1); every random choice the optimizer makes goes through one. */
export type Rng = () => number;

/**
 * seededRng is mulberry32: small, fast and good enough for picking candidates. The same seed gives
 * the same sequence, so a study's proposals can be replayed.
 */
export function seededRng(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * mixSeed combines numbers into one 32-bit seed (a murmur-style finaliser), so a proposal can be
 * seeded from the study seed and the trial number and a resumed study proposes what it would have.
 */
export function mixSeed(...parts: number[]): number {
  let h = 0x9e3779b9;
  for (const p of parts) {
    h = Math.imul(h ^ (p >>> 0), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}

/** randomInt returns an integer in [0, n). */
export function randomInt(rng: Rng, n: number): number {
  return Math.min(n - 1, Math.floor(rng() * n));
}
