import { test } from "node:test";
import assert from "node:assert/strict";
import type { V1Container } from "../../kube/index.js";
import {
  applyEnv,
  applyResourcesPatch,
  checkEnvValue,
  checkRange,
  readResource,
  resourcePatch,
  type ResourcesPatch,
} from "./resources.js";

const both: V1Container = {
  name: "c",
  resources: { requests: { cpu: "250m", memory: "256Mi" }, limits: { cpu: "1", memory: "1Gi" } },
};
const limitsOnly: V1Container = { name: "c", resources: { limits: { cpu: "1500m" } } };

test("Verifies that readResource reads the request first, the limit first for selector limit, else 0", () => {
  assert.equal(readResource(both, "cpu", "both"), 0.25);
  assert.equal(readResource(both, "cpu", "request"), 0.25);
  assert.equal(readResource(both, "cpu", "limit"), 1, "limit reads the limit first, as documented");
  assert.equal(readResource(both, "mem", "both"), 0.25);
  assert.equal(readResource(limitsOnly, "cpu", "both"), 1.5, "no request: the limit");
  assert.equal(readResource(limitsOnly, "mem", "both"), 0, "neither: 0");
  assert.equal(readResource({ name: "c" }, "cpu", "limit"), 0);
});

test("Verifies that each selector writes the documented requests and limits", () => {
  const write = (
    sel: "both" | "request" | "limit" | "request_min_limit",
    value: number,
    limitMin?: number,
  ): ResourcesPatch => resourcePatch({ requests: {}, limits: {} }, "cpu", value, sel, limitMin);
  assert.deepEqual(write("both", 0.5), { requests: { cpu: "500m" }, limits: { cpu: "500m" } });
  assert.deepEqual(write("request", 0.5), { requests: { cpu: "500m" }, limits: { cpu: null } });
  assert.deepEqual(write("limit", 0.5), { requests: { cpu: null }, limits: { cpu: "500m" } });
  assert.deepEqual(write("request_min_limit", 0.5, 1), { requests: { cpu: "500m" }, limits: { cpu: "1" } });
  assert.deepEqual(write("request_min_limit", 2, 1), { requests: { cpu: "2" }, limits: { cpu: "2" } });
  const mem = resourcePatch({ requests: {}, limits: {} }, "mem", 0.375, "both");
  assert.deepEqual(mem, { requests: { memory: "384Mi" }, limits: { memory: "384Mi" } });
});

test("Verifies that a patch applied to a container sets and clears fields and drops empty maps", () => {
  const c: V1Container = structuredClone(both);
  applyResourcesPatch(c, { requests: { cpu: "2" }, limits: { cpu: null, memory: null } });
  assert.deepEqual(c.resources, { requests: { cpu: "2", memory: "256Mi" } });
  applyEnv(c, { A: "1" });
  applyEnv(c, { A: "2", B: "x" });
  assert.deepEqual(c.env, [
    { name: "A", value: "2" },
    { name: "B", value: "x" },
  ]);
});

test("Verifies that out-of-range and unknown values are refused with the component, setting and range", () => {
  assert.equal(checkRange("web", "cpu", 0.5, { min: 0.125, max: 2, step: 0.125 }), 0.5);
  assert.throws(
    () => checkRange("web", "cpu", 3, { min: 0.125, max: 2, step: 0.125 }),
    /component web setting cpu: 3 is outside 0\.125\.\.2/,
  );
  assert.throws(() => checkRange("web", "cpu", "abc", { min: 0, max: 1, step: 0.5 }), /"abc" is outside/);
  const level = { type: "enum" as const, values: ["low", "high"], default: "low", pinned: false };
  assert.equal(checkEnvValue("web", "LEVEL", "high", level), "high");
  assert.throws(
    () => checkEnvValue("web", "LEVEL", "mid", level),
    /env LEVEL: "mid" is not one of low, high/,
  );
  assert.equal(
    checkEnvValue("web", "N", 7, { type: "range", min: 1, max: 10, step: 1, default: 5, pinned: false }),
    "7",
  );
});
