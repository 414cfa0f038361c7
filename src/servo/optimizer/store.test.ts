import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { OptimizerError } from "./errors.js";
import { TrialStore, type Trial } from "./store.js";

const NOW = new Date("2024-05-06T07:08:09Z");

function trial(number: number, extra: Partial<Trial> = {}): Trial {
  return {
    number,
    values: { web: { cpu: 0.5 + number, gc: "g1" } },
    status: "ok",
    metrics: { rps: 10 * number },
    startedAt: NOW.toISOString(),
    finishedAt: NOW.toISOString(),
    ...extra,
  };
}

void test("Verifies that trials survive closing and reopening the database file", () => {
  const dir = mkdtempSync(join(tmpdir(), "kubewise-store-"));
  try {
    const path = join(dir, "nested", "trials.db");
    const a = TrialStore.open(path);
    a.ensureStudy("s", { objective: "x" }, NOW);
    a.addTrial("s", trial(0));
    a.addTrial("s", trial(1, { status: "rejected", reason: "unstable", message: "restarts", metrics: {} }));
    a.saveDescriptor("s", { application: { components: {} } });
    a.close();

    const b = TrialStore.open(path);
    assert.deepEqual(b.studies(), ["s"]);
    assert.deepEqual(b.trials("s"), [
      trial(0),
      trial(1, { status: "rejected", reason: "unstable", message: "restarts", metrics: {} }),
    ]);
    const study = b.ensureStudy("s", { objective: "y" }, new Date("2030-01-01T00:00:00Z"));
    assert.equal(study.createdAt, NOW.toISOString(), "reopening a study changed its creation time");
    assert.deepEqual(study.config, { objective: "y" });
    assert.deepEqual(study.descriptor, { application: { components: {} } });
    b.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

void test("Verifies that trials must be added in order, so two writers cannot both add the same number", () => {
  const store = TrialStore.open(":memory:");
  store.ensureStudy("s", {}, NOW);
  store.addTrial("s", trial(0));
  assert.throws(() => store.addTrial("s", trial(0)), OptimizerError);
  assert.throws(() => store.addTrial("s", trial(2)), /trial 2 is out of order \(next is 1\)/);
  assert.equal(store.trialCount("s"), 1);
  assert.deepEqual(store.trials("other"), []);
  assert.equal(store.study("other"), undefined);
});

void test("Verifies that an unopenable path is an OptimizerError naming it", () => {
  const dir = mkdtempSync(join(tmpdir(), "kubewise-store-"));
  try {
    const file = join(dir, "plain-file");
    writeFileSync(file, "not a folder");
    const path = join(file, "trials.db");
    assert.throws(
      () => TrialStore.open(path),
      (err: unknown) => err instanceof OptimizerError && err.reason === "store" && err.message.includes(path),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
