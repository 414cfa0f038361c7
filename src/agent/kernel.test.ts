import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  formatCpuList,
  keyedValue,
  parseCpuList,
  parseCpuMax,
  parsePressure,
  parseSingleValue,
  sharesToWeight,
} from "./kernel.js";

test("Verifies that single-value files read 'max', -1 and v1's page-rounded LLONG_MAX as unlimited", () => {
  assert.equal(parseSingleValue("123456\n"), 123456);
  assert.equal(parseSingleValue("max\n"), Infinity);
  assert.equal(parseSingleValue("-1\n"), Infinity);
  assert.equal(parseSingleValue("9223372036854771712\n"), Infinity);
  assert.equal(parseSingleValue(""), undefined);
  assert.equal(parseSingleValue("12 34"), undefined);
});

test("Verifies that keyedValue finds whole keys only, not keys that end with the same text", () => {
  const stat = "total_pgfault 999\npgfault 17\npgmajfault 3\nthrottled_usec 5\n";
  assert.equal(keyedValue(stat, "pgfault"), 17);
  assert.equal(keyedValue(stat, "pgmajfault"), 3);
  assert.equal(keyedValue(stat, "total_pgfault"), 999);
  assert.equal(keyedValue(stat, "throttled"), undefined);
  assert.equal(keyedValue("usage_usec 42", "usage_usec"), 42);
});

test("Verifies that PSI files parse with and without a full line", () => {
  const p = parsePressure(
    "some avg10=1.50 avg60=0.75 avg300=0.10 total=123456\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=7\n",
  );
  assert.deepEqual(p.some, { avg10: 1.5, avg60: 0.75, avg300: 0.1, totalUsec: 123456 });
  assert.equal(p.full?.totalUsec, 7);
  const old = parsePressure("some avg10=0.00 avg60=0.00 avg300=0.00 total=5\n");
  assert.equal(old.full, undefined);
  assert.deepEqual(parsePressure("garbage\n"), {});
});

test("Verifies that cpu.max parses a quota or max and rejects nonsense", () => {
  assert.deepEqual(parseCpuMax("max 100000\n"), { quotaUsec: Infinity, periodUsec: 100000 });
  assert.deepEqual(parseCpuMax("150000 100000\n"), { quotaUsec: 150000, periodUsec: 100000 });
  assert.equal(parseCpuMax("150000\n"), undefined);
  assert.equal(parseCpuMax("x 100000"), undefined);
});

test("Verifies that cpu lists round-trip in the kernel's canonical form", () => {
  assert.deepEqual(parseCpuList("0-3,8,10-11\n"), [0, 1, 2, 3, 8, 10, 11]);
  assert.deepEqual(parseCpuList("\n"), []);
  assert.equal(parseCpuList("3-1"), undefined);
  assert.equal(parseCpuList("a"), undefined);
  assert.equal(formatCpuList([8, 0, 1, 2, 3, 3, 11, 10]), "0-3,8,10-11");
  fc.assert(
    fc.property(fc.uniqueArray(fc.integer({ min: 0, max: 255 }), { maxLength: 40 }), (cpus) => {
      assert.deepEqual(
        parseCpuList(formatCpuList(cpus)),
        [...cpus].sort((a, b) => a - b),
      );
    }),
  );
});

test("Verifies that shares map to weights with the defaults and both ends aligned, monotonically", () => {
  assert.equal(sharesToWeight(2), 1);
  assert.equal(sharesToWeight(1024), 100);
  assert.equal(sharesToWeight(262144), 10000);
  let last = 0;
  for (let s = 2; s <= 262144; s += 97) {
    const w = sharesToWeight(s);
    assert.ok(w >= last && w >= 1 && w <= 10000, `shares ${s} -> ${w}`);
    last = w;
  }
});
