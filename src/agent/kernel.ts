/**
 * Parsers for the cgroup files as the kernel writes them. Pure: text in, numbers out. Values
 * that mean "no limit" ("max" on v2, -1 or a page-rounded LLONG_MAX on v1) become Infinity so
 * the two versions read alike; a file that is empty or malformed gives undefined rather than a
 * guess.
 */

/** V1_UNLIMITED: v1 reports "no memory limit" as LLONG_MAX rounded down to a page, ~9.22e18. */
const V1_UNLIMITED = 2 ** 62;

/** parseSingleValue reads a one-number file ("123\n", "max\n", "-1\n"). */
export function parseSingleValue(text: string): number | undefined {
  const word = text.trim();
  if (word === "max") return Infinity;
  if (word === "" || !/^-?\d+$/.test(word)) return undefined;
  const n = Number(word);
  if (n === -1 || n >= V1_UNLIMITED) return Infinity;
  return n;
}

/**
 * keyedValue finds `key value` in a flat-keyed file (cpu.stat, memory.stat) without splitting
 * the whole file: memory.stat has ~60 lines and we want two of them.
 */
export function keyedValue(text: string, key: string): number | undefined {
  let from = 0;
  for (;;) {
    const at = text.indexOf(key, from);
    if (at < 0) return undefined;
    const end = at + key.length;
    if ((at === 0 || text.charCodeAt(at - 1) === 10) && text.charCodeAt(end) === 32) {
      const eol = text.indexOf("\n", end);
      const n = Number(text.slice(end + 1, eol < 0 ? undefined : eol));
      return Number.isFinite(n) ? n : undefined;
    }
    from = end;
  }
}

/** PressureLine is one line of a PSI file: percentages over 10/60/300 s and the total stall in µs. */
export interface PressureLine {
  avg10: number;
  avg60: number;
  avg300: number;
  totalUsec: number;
}

/** Pressure is a PSI file: `some` (at least one task stalled) and `full` (all stalled). */
export interface Pressure {
  some?: PressureLine;
  full?: PressureLine;
}

/**
 * parsePressure reads cpu.pressure, memory.pressure or io.pressure:
 * `some avg10=0.00 avg60=0.00 avg300=0.00 total=0`, then the same for `full`. Kernels before 5.13
 * have no `full` line in cpu.pressure.
 */
export function parsePressure(text: string): Pressure {
  const out: Pressure = {};
  for (const line of text.split("\n")) {
    const kind = line.startsWith("some ") ? "some" : line.startsWith("full ") ? "full" : undefined;
    if (!kind) continue;
    const fields: Record<string, number> = {};
    for (const pair of line.slice(5).split(" ")) {
      const eq = pair.indexOf("=");
      if (eq > 0) fields[pair.slice(0, eq)] = Number(pair.slice(eq + 1));
    }
    const { avg10, avg60, avg300, total } = fields;
    if ([avg10, avg60, avg300, total].every((v) => v !== undefined && Number.isFinite(v))) {
      out[kind] = { avg10: avg10!, avg60: avg60!, avg300: avg300!, totalUsec: total! };
    }
  }
  return out;
}

/** CpuMax is v2's cpu.max: quota µs per period µs; quota Infinity when "max". */
export interface CpuMax {
  quotaUsec: number;
  periodUsec: number;
}

/** parseCpuMax reads cpu.max ("max 100000", "150000 100000"). */
export function parseCpuMax(text: string): CpuMax | undefined {
  const [quota, period] = text.trim().split(/\s+/);
  const periodUsec = Number(period);
  if (quota === undefined || !Number.isInteger(periodUsec) || periodUsec <= 0) return undefined;
  const quotaUsec = quota === "max" ? Infinity : Number(quota);
  if (!(quotaUsec === Infinity || Number.isInteger(quotaUsec))) return undefined;
  return { quotaUsec, periodUsec };
}

/** parseCpuList reads a kernel cpu list ("0-3,8,10-11") into sorted, distinct cpu numbers. */
export function parseCpuList(text: string): number[] | undefined {
  const trimmed = text.trim();
  if (trimmed === "") return [];
  const cpus = new Set<number>();
  for (const part of trimmed.split(",")) {
    const m = /^\s*(\d+)(?:-(\d+))?\s*$/.exec(part);
    if (!m) return undefined;
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo || hi - lo > 65536) return undefined;
    for (let c = lo; c <= hi; c++) cpus.add(c);
  }
  return [...cpus].sort((a, b) => a - b);
}

/** formatCpuList writes cpus in the kernel's canonical form: [0,1,2,3,8] -> "0-3,8". */
export function formatCpuList(cpus: readonly number[]): string {
  const sorted = [...new Set(cpus)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length;) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === (sorted[j] as number) + 1) j++;
    parts.push(i === j ? String(sorted[i]) : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(",");
}

/**
 * sharesToWeight converts cgroup v1 cpu.shares to v2 cpu.weight with the mapping runc and crun
 * adopted in 2025: exponential in log2(shares), so the defaults line up (1024 -> 100) and both
 * ends too (2 -> 1, 262144 -> 10000). The older linear formula mapped 1024 to 39, which made a
 * pod with one core's request weigh less than an unconfigured cgroup.
 */
export function sharesToWeight(shares: number): number {
  if (shares <= 2) return 1;
  if (shares >= 262144) return 10000;
  const l = Math.log2(shares);
  const exponent = (l * l + 125 * l) / 612 - 7 / 34;
  return Math.min(10000, Math.ceil(Number(Math.pow(10, exponent).toFixed(6))));
}
