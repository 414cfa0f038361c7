import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError } from "../config/index.js";
import { SwarmError } from "../swarm/index.js";
import { assignFromFiles, formatAssignment, type AssignFlags } from "./swarm.js";

const dir = mkdtempSync(join(tmpdir(), "kubewise-swarm-"));
function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

const jobs = file("jobs.yaml", "- stream:c\n- stream:a\n- stream:b\n- stream:d\n- stream:e\n");
const twoWorkers = file("workers.json", '["w-1", "w-0"]');
const threeWorkers = file("workers3.yaml", "workers: [w-0, w-1, w-2]\n");

function flags(overrides: Partial<AssignFlags>): AssignFlags {
  return { jobs, workers: twoWorkers, dedicated: [], output: "json", ...overrides };
}

function assertFails(f: AssignFlags, type: typeof SwarmError | typeof ConfigError, message: RegExp): void {
  assert.throws(
    () => assignFromFiles(f),
    (err: unknown) => {
      assert.ok(err instanceof type, String(err));
      assert.match(err.message, message);
      return true;
    },
  );
}

test("Verifies that assign prints JSON worker -> jobs in ordinal order", () => {
  const { next } = assignFromFiles(flags({}));
  assert.equal(
    formatAssignment("json", undefined, next),
    '{\n  "w-0": [\n    "stream:a",\n    "stream:b",\n    "stream:c"\n  ],\n  "w-1": [\n    "stream:d",\n    "stream:e"\n  ]\n}\n',
  );
});

test("Verifies that the JSON output works as --previous, and only the new worker's share moves", () => {
  const first = assignFromFiles(flags({}));
  const previous = file("previous.json", formatAssignment("json", undefined, first.next));
  const { next } = assignFromFiles(flags({ workers: threeWorkers, previous }));
  assert.deepEqual(next.get("w-0"), ["stream:a", "stream:b"]);
  assert.deepEqual(next.get("w-1"), ["stream:d", "stream:e"]);
  assert.deepEqual(next.get("w-2"), ["stream:c"]);
});

test("Verifies that --previous takes the ConfigMap and --output config bumps only changed versions", () => {
  const configMap = file(
    "cm.yaml",
    [
      "apiVersion: v1",
      "kind: ConfigMap",
      "metadata: {name: swarm-worker-config}",
      "data:",
      "  config.yml: |",
      "    workloads:",
      "      w-0: {jobs: [stream:a, stream:b, stream:c], version: 4}",
      "      w-1: {jobs: [stream:d, stream:e], version: 7}",
      "",
    ].join("\n"),
  );
  const { previous, next } = assignFromFiles(
    flags({ workers: threeWorkers, previous: configMap, output: "config" }),
  );
  assert.match(
    formatAssignment("config", previous, next),
    /w-0:\n {4}jobs:\n {6}- stream:a\n {6}- stream:b\n {4}version: 5\n/,
  );
  assert.match(
    formatAssignment("config", previous, next),
    /w-1:\n[^]*version: 7\n {2}w-2:\n[^]*version: 0\n$/,
  );
});

test("Verifies that dedicated jobs come from the flag and from a file", () => {
  const dedicatedFile = file("dedicated.yaml", "- stream:e\n");
  const { next } = assignFromFiles(flags({ workers: threeWorkers, dedicated: ["stream:a"], dedicatedFile }));
  assert.deepEqual([...next.values()], [["stream:a"], ["stream:e"], ["stream:b", "stream:c", "stream:d"]]);
});

test("Verifies the errors: duplicate jobs, no workers, unknown dedicated jobs, too few workers, bad files", () => {
  assertFails(
    flags({ jobs: file("dup.yaml", "[a, b, a]") }),
    SwarmError,
    /^--jobs .*dup\.yaml: jobs listed more than once: "a"$/,
  );
  assertFails(flags({ workers: file("none.yaml", "[]") }), SwarmError, /none\.yaml: lists no workers/);
  assertFails(
    flags({ workers: file("dupw.yaml", "[w-0, w-0]") }),
    SwarmError,
    /^--workers .*: workers listed more than once/,
  );
  assertFails(
    flags({ dedicated: ["stream:zzz"] }),
    SwarmError,
    /^--dedicated: dedicated jobs that are not in the job list: "stream:zzz"$/,
  );
  assertFails(
    flags({ workers: file("one.yaml", "[w-0]"), dedicated: ["stream:a"] }),
    SwarmError,
    /^1 dedicated job needs a worker of its own plus one for the 4 shared jobs \(2 workers\), but the pool has 1/,
  );
  assertFails(
    flags({ jobs: join(dir, "missing.yaml") }),
    ConfigError,
    /missing\.yaml: 1 problem:\n {2}\(document\): file not found/,
  );
  assertFails(flags({ jobs: file("bad.yaml", "jobs: [a\n") }), ConfigError, /bad\.yaml: .*line 2/s);
  assertFails(
    flags({ previous: file("prev.yaml", "[a]") }),
    ConfigError,
    /prev\.yaml: .*must be a mapping of worker to job list/s,
  );
});
