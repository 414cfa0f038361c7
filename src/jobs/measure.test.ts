import { test } from "node:test";
import assert from "node:assert/strict";
import { ConfigError } from "../config/index.js";
import type { KubeClient } from "../kube/index.js";
import { JOBS_METRICS } from "./connector.js";
import { WatchedJobsMeasure } from "./measure.js";

// Building the connector makes no API call; the client is only used once a MEASURE starts.
const deps = { client: {} as KubeClient, namespace: "app2" };

test("Verifies that the jobs connector watches the k8s section's namespace unless its options name others", () => {
  assert.deepEqual(new WatchedJobsMeasure({ app_id: "render" }, deps).namespaces, ["app2"]);
  assert.deepEqual(
    new WatchedJobsMeasure({ app_id: "render", namespaces: "batch, etl,batch" }, deps).namespaces,
    ["batch", "etl"],
  );
  assert.deepEqual(new WatchedJobsMeasure({ app_id: "render", namespaces: ["etl"] }, deps).namespaces, [
    "etl",
  ]);
  assert.deepEqual(new WatchedJobsMeasure({ app_id: "render" }, deps).describeMetrics(), JOBS_METRICS);
});

test("Verifies that bad options are reported by field: namespaces, app_id_path, and the measure options themselves", () => {
  const fails = (options: Record<string, unknown>, field: RegExp): void => {
    assert.throws(
      () => new WatchedJobsMeasure(options, deps),
      (err: unknown) => err instanceof ConfigError && field.test(err.message),
      JSON.stringify(options),
    );
  };
  fails({ app_id: "render", namespaces: "Batch" }, /namespaces/);
  fails({ app_id: "render", namespaces: [] }, /namespaces/);
  fails({ app_id: "render", app_id_path: "spec//env" }, /app_id_path/);
  fails({ app_id: "" }, /app_id/);
  fails({ app_id: "render", windw: 3 }, /windw/);
});
