import { test } from "node:test";
import assert from "node:assert/strict";
import { ConfigError } from "../config/index.js";
import type { ApplyResult } from "../kube/index.js";
import { ServoError, adjustState, type AdjustParam, type SettingValues } from "../servo/index.js";
import type { TunedSettings } from "./settings.js";
import {
  JobSettingsConnector,
  loadJobsTuneConfig,
  parseJobsTuneConfig,
  type TunedSettingsStore,
} from "./tune.js";

const base = {
  namespace: "batch",
  app_id: "render-video",
  settings: {
    cpu: { min: 0.25, max: 4, step: 0.25, default: 1 },
    mem: { min: 0.25, max: 8, step: 0.25, default: 1 },
  },
  env: {
    THREADS: { type: "range", min: 1, max: 16, step: 1, default: 4 },
    MODE: { type: "enum", values: ["fast", "safe", 3], default: "safe" },
  },
};

/** MemoryStore is a TunedSettingsStore in memory, counting writes. */
class MemoryStore implements TunedSettingsStore {
  readonly where = "memory";
  readonly apps = new Map<string, TunedSettings>();
  writes = 0;
  async read(appId: string): Promise<TunedSettings | undefined> {
    return this.apps.get(appId);
  }
  async write(appId: string, settings: TunedSettings): Promise<ApplyResult> {
    this.writes++;
    const existed = this.apps.has(appId);
    this.apps.set(appId, settings);
    return existed ? "updated" : "created";
  }
}

const param = (values: SettingValues): AdjustParam => ({
  state: adjustState(values),
  control: { duration: 0, delay: 0, warmup: 0 },
});
const noProgress = (): void => {};

/** describedValues describes the connector's component and returns setting -> value. */
async function describedValues(connector: JobSettingsConnector): Promise<Record<string, unknown>> {
  const settings = (await connector.describe())["render-video"]?.settings ?? {};
  return Object.fromEntries(Object.entries(settings).map(([name, s]) => [name, s.value]));
}

test("Verifies that a jobs tune configuration is parsed with its defaults and the measure app_id filled in", () => {
  const config = parseJobsTuneConfig({ ...base, measure: { count: 3 } }, "tune.yaml");
  assert.equal(config.resources, "both");
  assert.deepEqual(config.measure, { count: 3, app_id: "render-video" });
  assert.equal(config.optimizer, undefined);
  assert.deepEqual(config.env.MODE, {
    type: "enum",
    values: ["fast", "safe", "3"],
    default: "safe",
    pinned: false,
  });
  assert.equal(config.env.THREADS?.type, "range");
  const withOptimizer = parseJobsTuneConfig({ ...base, optimizer: { objective: "metrics.duration" } });
  assert.equal(withOptimizer.optimizer?.max_trials, 50);
});

test("Verifies that bad jobs tune configurations are reported with the file, field, value and what is allowed", () => {
  const fails = (data: Record<string, unknown>, pattern: RegExp): void => {
    assert.throws(
      () => parseJobsTuneConfig(data, "tune.yaml"),
      (err: unknown) =>
        err instanceof ConfigError && /^tune\.yaml: /.test(err.message) && pattern.test(err.message),
      JSON.stringify(data),
    );
  };
  const cpu = (over: Record<string, unknown>) => ({
    ...base,
    settings: { cpu: { ...base.settings.cpu, ...over } },
  });
  fails(
    cpu({ default: 5 }),
    /settings\.cpu\.default: must be on the grid 0\.25\.\.4 in steps of 0\.25 \(got 5\)/,
  );
  fails(cpu({ default: 1.1 }), /settings\.cpu\.default: must be on the grid/);
  fails(cpu({ min: 5 }), /settings\.cpu\.min: must not exceed max \(4\)/);
  fails(cpu({ step: 0.3 }), /settings\.cpu\.step: must divide max - min/);
  fails(cpu({ default: undefined }), /settings\.cpu\.default: is required/);
  fails({ ...base, settings: { gpu: {} } }, /settings: unknown key "gpu"/);
  fails(
    { ...base, env: { THREADS: { type: "range", min: 1, max: 16, default: 40 } } },
    /env\.THREADS\.default/,
  );
  fails(
    { ...base, env: { MODE: { type: "enum", values: ["a"], default: "b" } } },
    /env\.MODE\.default: must be one of "a"/,
  );
  fails(
    { ...base, env: { MODE: { type: "list", values: ["a"] } } },
    /env\.MODE\.type: must be one of "range", "enum"/,
  );
  fails(
    { ...base, env: { "1X": { type: "enum", values: ["a"], default: "a" } } },
    /env\.1X: must be an environment variable name/,
  );
  fails(
    { ...base, env: { cpu: { type: "enum", values: ["a"], default: "a" } } },
    /env\.cpu: is the name of a resource setting/,
  );
  fails({ ...base, settings: {}, env: {} }, /settings: nothing to tune.* \(got \{\}\)/);
  fails({ ...base, resources: "all" }, /resources: must be one of "both", "requests", "limits"/);
  fails({ ...base, namespace: "Batch" }, /namespace: must be a namespace name/);
  fails(
    { ...base, measure: { app_id: "other" } },
    /measure\.app_id: must be the tuned app_id "render-video"/,
  );
  fails({ ...base, optimizer: { objective: "x", max_trials: 0 } }, /optimizer\.max_trials/);
});

test("Verifies that the connector describes the defaults before any adjust and the stored values after one", async () => {
  const config = parseJobsTuneConfig(base);
  const store = new MemoryStore();
  const connector = new JobSettingsConnector(config, { store, now: () => new Date("2026-01-02T03:04:05Z") });
  assert.deepEqual(await describedValues(connector), {
    cpu: 1,
    mem: 1,
    THREADS: 4,
    MODE: "safe",
  });
  const before = (await connector.describe())["render-video"]?.settings;
  assert.deepEqual(
    [before?.cpu?.unit, before?.mem?.max, before?.THREADS?.step, before?.MODE?.values],
    ["cores", 8, 1, ["fast", "safe", "3"]],
  );

  const outcome = await connector.adjust(
    param({ "render-video": { cpu: 0.5, THREADS: 8, MODE: 3 } }),
    noProgress,
  );
  assert.deepEqual(outcome, { adjusted: true, reason: "success" });
  assert.deepEqual(store.apps.get("render-video"), {
    cpu: 0.5,
    mem: 1, // not requested: kept at its current value
    env: { THREADS: "8", MODE: "3" },
    resources: "both",
    version: "adjust-2026-01-02T03:04:05.000Z",
  });
  assert.deepEqual(await describedValues(connector), {
    cpu: 0.5,
    mem: 1,
    THREADS: 8,
    MODE: "3",
  });
  // A later adjust keeps what the earlier one set and was not asked to change.
  await connector.adjust(param({ "render-video": { mem: 2.25 } }), noProgress);
  const later = store.apps.get("render-video");
  assert.deepEqual([later?.cpu, later?.mem, later?.env], [0.5, 2.25, { THREADS: "8", MODE: "3" }]);
});

test("Verifies that the connector refuses unknown settings and values off the grid, writing nothing, and skips other components", async () => {
  const config = parseJobsTuneConfig({ ...base, resources: "limits" });
  const store = new MemoryStore();
  const connector = new JobSettingsConnector(config, { store });
  const refused = async (values: Record<string, number | string>, pattern: RegExp): Promise<void> => {
    await assert.rejects(
      connector.adjust(param({ "render-video": values }), noProgress),
      (err: unknown) =>
        err instanceof ServoError &&
        err.reason === "adjust-failed" &&
        err.status === "failed" &&
        pattern.test(err.message),
      JSON.stringify(values),
    );
  };
  await refused(
    { gpu: 1 },
    /component render-video has no setting gpu \(its settings: cpu, mem, THREADS, MODE\)/,
  );
  await refused({ cpu: 4.25 }, /setting cpu: 4\.25 is outside 0\.25\.\.4/);
  await refused({ cpu: 0.3 }, /setting cpu: 0\.3 is not on the grid 0\.25\.\.4 in steps of 0\.25/);
  await refused({ mem: "lots" }, /setting mem: "lots" is outside/);
  await refused({ THREADS: 2.5 }, /setting THREADS: 2\.5 is not on the grid/);
  await refused({ MODE: "slow" }, /env MODE: "slow" is not one of fast, safe, 3/);
  assert.equal(store.writes, 0);

  const skipped = await connector.adjust(param({ "web/main": { cpu: 1 } }), noProgress);
  assert.equal(skipped.adjusted, false);
  assert.match(skipped.reason, /no component render-video/);
  assert.equal(store.writes, 0);

  await connector.adjust(param({ "render-video": { cpu: "1.75" } }), noProgress);
  assert.equal(store.apps.get("render-video")?.cpu, 1.75);
  assert.equal(store.apps.get("render-video")?.resources, "limits");
});

test("Verifies that a store failure is an adjust-failed ServoError naming the app and the store", async () => {
  const config = parseJobsTuneConfig(base);
  const store: TunedSettingsStore = {
    where: "configmap batch/kubewise-jobs-settings",
    read: async () => undefined,
    write: async () => {
      throw new Error("forbidden");
    },
  };
  const connector = new JobSettingsConnector(config, { store });
  await assert.rejects(
    connector.adjust(param({ "render-video": { cpu: 2 } }), noProgress),
    (err: unknown) =>
      err instanceof ServoError &&
      err.reason === "adjust-failed" &&
      /app render-video: cannot write configmap batch\/kubewise-jobs-settings: forbidden/.test(err.message),
  );
});

test("Verifies that the shipped example examples/jobs/tune.yaml loads", () => {
  const config = loadJobsTuneConfig(new URL("../../examples/jobs/tune.yaml", import.meta.url).pathname);
  assert.equal(config.app_id, "render-video");
  assert.deepEqual(config.measure, { count: 5, app_id: "render-video" });
  assert.equal(config.optimizer?.measure.warmup, 0);
});
