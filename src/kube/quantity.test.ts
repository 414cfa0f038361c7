import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  formatCpu,
  formatMemory,
  formatMemoryGiB,
  parseCpu,
  parseMemory,
  parseMemoryGiB,
  parseQuantity,
  QuantityError,
} from "./quantity.js";

test("Verifies that cpu strings parse to cores", () => {
  assert.equal(parseCpu("250m"), 0.25);
  assert.equal(parseCpu("1.5"), 1.5);
  assert.equal(parseCpu(2), 2);
  assert.equal(parseCpu("100u"), 0.0001);
  assert.equal(parseCpu("1e-1"), 0.1);
});

test("Verifies that cores format like kubectl shows them", () => {
  assert.equal(formatCpu(0.25), "250m");
  assert.equal(formatCpu(2), "2");
  assert.equal(formatCpu(0.125), "125m");
  assert.equal(formatCpu(1.5), "1500m");
  assert.equal(formatCpu(0.0001), "1m");
});

test("Verifies that memory parses in binary and decimal units", () => {
  assert.equal(parseMemory("512Mi"), 512 * 2 ** 20);
  assert.equal(parseMemory("1G"), 1e9);
  assert.equal(parseMemoryGiB("1Gi"), 1);
  assert.equal(parseMemoryGiB("128Mi"), 0.125);
  assert.equal(parseMemory("1k"), 1000);
  assert.equal(parseMemory(1024), 1024);
});

test("Verifies that memory formats with the largest exact binary suffix", () => {
  assert.equal(formatMemoryGiB(0.5), "512Mi");
  assert.equal(formatMemoryGiB(2), "2Gi");
  assert.equal(formatMemoryGiB(0.125), "128Mi");
  assert.equal(formatMemory(1000), "1000");
  assert.equal(formatMemory(1536 * 2 ** 20), "1536Mi");
});

test("Verifies that values on 0.125 step grids round-trip exactly", () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 512 }), (k) => {
      const v = k * 0.125;
      assert.equal(parseMemoryGiB(formatMemoryGiB(v)), v);
      assert.equal(parseCpu(formatCpu(v)), v);
    }),
  );
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 100000 }), (milli) => {
      const cores = milli / 1000;
      assert.equal(parseCpu(formatCpu(cores)), cores);
    }),
  );
});

test("Verifies that garbage is rejected with the value and the accepted forms", () => {
  for (const bad of ["", "abc", "1.2.3", "5 Mi", "Mi", "1mi", "--1"]) {
    assert.throws(
      () => parseQuantity(bad, "mem"),
      (err: unknown) => {
        assert.ok(err instanceof QuantityError);
        assert.match(err.message, /^mem: ".*" is not a Kubernetes quantity \(examples:/);
        return true;
      },
    );
  }
  assert.throws(() => parseCpu("-1"), /negative/);
  assert.throws(() => formatCpu(Number.NaN), QuantityError);
});
