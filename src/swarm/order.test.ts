import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { compareWorkerNames } from "./order.js";

const name = fc.oneof(
  fc.nat(120).map((i) => `swarm-worker-${i}`),
  fc.stringMatching(/^[a-z0-9-]{1,6}$/),
  fc.string({ maxLength: 5 }),
);

test("Verifies that worker names sort by ordinal, not by characters", () => {
  const names = ["swarm-worker-10", "swarm-worker-2", "swarm-worker-0", "swarm-worker-1", "other-0"];
  assert.deepEqual(names.sort(compareWorkerNames), [
    "other-0",
    "swarm-worker-0",
    "swarm-worker-1",
    "swarm-worker-2",
    "swarm-worker-10",
  ]);
  // Ordinals longer than a double's precision still compare exactly.
  assert.ok(compareWorkerNames("w-90071992547409921", "w-90071992547409922") < 0);
  // Leading zeros tie on value and fall back to characters, so distinct names never compare equal.
  assert.ok(compareWorkerNames("w-01", "w-1") !== 0);
});

test("Verifies that compareWorkerNames is a total order (antisymmetric, transitive, zero only on equal)", () => {
  fc.assert(
    fc.property(name, name, name, (a, b, c) => {
      assert.equal(Math.sign(compareWorkerNames(a, b)), 0 - Math.sign(compareWorkerNames(b, a)));
      assert.equal(compareWorkerNames(a, b) === 0, a === b);
      if (compareWorkerNames(a, b) < 0 && compareWorkerNames(b, c) < 0)
        assert.ok(compareWorkerNames(a, c) < 0);
    }),
    { numRuns: 2000 },
  );
});
