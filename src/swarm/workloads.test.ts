import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { ConfigError } from "../config/index.js";
import { assignWork } from "./assign.js";
import {
  assignmentOf,
  changedWorkers,
  parseWorkerConfig,
  renderWorkerConfig,
  versionWorkloads,
  type WorkerConfig,
} from "./workloads.js";

// As printed by `kubectl describe cm swarm-worker-config` in the seed (shortened); note the
// second worker has no version and a job with a trailing space.
const seedConfig = `workloads:
  swarm-worker-0:
    jobs:
      - stream:xxrtve1
      - stream:xxrtve2
    version: 0
  swarm-worker-1:
    jobs:
      - stream:cars:new
      - stream:cars:updated 
`;

test("Verifies that the seed's ConfigMap file parses, a missing version counting as 0", () => {
  const config = parseWorkerConfig(seedConfig);
  assert.deepEqual(
    [...config],
    [
      ["swarm-worker-0", { jobs: ["stream:xxrtve1", "stream:xxrtve2"], version: 0 }],
      ["swarm-worker-1", { jobs: ["stream:cars:new", "stream:cars:updated"], version: 0 }],
    ],
  );
});

test("Verifies that the original operator's top-level version and empty entries are accepted", () => {
  const config = parseWorkerConfig("workloads:\n  w-0:\n    jobs:\n  w-1:\nversion: 3\n");
  assert.deepEqual(
    [...config],
    [
      ["w-0", { jobs: [], version: 0 }],
      ["w-1", { jobs: [], version: 0 }],
    ],
  );
  assert.equal(parseWorkerConfig("").size, 0);
});

test("Verifies that a malformed file fails with the field path", () => {
  assert.throws(
    () => parseWorkerConfig("workloads:\n  w-0:\n    jobs: [a]\n    version: -1\n", "swarm/cm/config.yml"),
    (err: unknown) =>
      err instanceof ConfigError && /swarm\/cm\/config\.yml: .*workloads\.w-0\.version/s.test(err.message),
  );
  assert.throws(() => parseWorkerConfig("workloads:\n  w-0:\n    job: [a]\n"), /unknown key "job"/);
});

test("Verifies the rendered format: seed layout, ordinal order, sorted jobs, empty lists", () => {
  const config: WorkerConfig = new Map([
    ["swarm-worker-10", { jobs: [], version: 2 }],
    ["swarm-worker-2", { jobs: ["stream:b", "stream:a"], version: 1 }],
  ]);
  assert.equal(
    renderWorkerConfig(config),
    `workloads:
  swarm-worker-2:
    jobs:
      - stream:a
      - stream:b
    version: 1
  swarm-worker-10:
    jobs: []
    version: 2
`,
  );
  assert.equal(renderWorkerConfig(new Map()), "workloads: {}\n");
});

const configArb = fc
  .dictionary(
    fc.stringMatching(/^[a-z][a-z0-9-]{0,10}$/),
    fc.record({
      jobs: fc.uniqueArray(fc.string({ minLength: 1, maxLength: 12 }), { maxLength: 6 }),
      version: fc.nat(1000),
    }),
  )
  .map((d) => new Map(Object.entries(d)) as WorkerConfig);

test("Verifies that parsing a rendered config gives it back (up to order)", () => {
  fc.assert(
    fc.property(configArb, (config) => {
      const back = parseWorkerConfig(renderWorkerConfig(config));
      assert.equal(back.size, config.size);
      for (const [w, entry] of config) {
        assert.deepEqual(back.get(w), { jobs: [...entry.jobs].sort(), version: entry.version });
      }
      // Rendering is canonical: the same config always gives the same bytes.
      assert.equal(renderWorkerConfig(back), renderWorkerConfig(config));
    }),
    { numRuns: 200 },
  );
});

test("Verifies that a worker's version changes exactly when its set of jobs changes", () => {
  const jobsArb = fc.uniqueArray(
    fc.nat(60).map((i) => `j${i}`),
    { maxLength: 40 },
  );
  const workersArb = fc.uniqueArray(
    fc.nat(8).map((i) => `w-${i}`),
    { minLength: 1, maxLength: 6 },
  );
  fc.assert(
    fc.property(jobsArb, workersArb, jobsArb, workersArb, fc.nat(5), (j1, w1, j2, w2, start) => {
      const first = versionWorkloads(undefined, assignWork(j1, w1));
      for (const entry of first.values()) assert.equal(entry.version, 0);
      const bumped = new Map([...first].map(([w, e]) => [w, { ...e, version: e.version + start }]));
      const second = versionWorkloads(bumped, assignWork(j2, w2, assignmentOf(bumped)));
      for (const [w, entry] of second) {
        const before = bumped.get(w);
        if (before === undefined) assert.equal(entry.version, 0);
        else if (
          new Set(before.jobs).size === entry.jobs.length &&
          entry.jobs.every((j) => before.jobs.includes(j))
        )
          assert.equal(entry.version, before.version);
        else assert.equal(entry.version, before.version + 1);
      }
      const changed = changedWorkers(bumped, second);
      assert.deepEqual(
        changed,
        [...second.keys()].filter((w) => bumped.get(w)?.version !== second.get(w)?.version),
      );
    }),
    { numRuns: 300 },
  );
});

test("Verifies that job order alone does not bump a version", () => {
  const previous: WorkerConfig = new Map([["w-0", { jobs: ["b", "a"], version: 4 }]]);
  const next = versionWorkloads(previous, new Map([["w-0", ["a", "b"]]]));
  assert.equal(next.get("w-0")?.version, 4);
  assert.deepEqual(changedWorkers(previous, next), []);
  const grown = versionWorkloads(
    previous,
    new Map([
      ["w-0", ["a", "b", "c"]],
      ["w-1", []],
    ]),
  );
  assert.deepEqual(
    [...grown].map(([w, e]) => [w, e.version]),
    [
      ["w-0", 5],
      ["w-1", 0],
    ],
  );
  assert.deepEqual(changedWorkers(previous, grown), ["w-0", "w-1"]);
});
