import { test } from "node:test";
import assert from "node:assert/strict";
import { ConfigError } from "../config/index.js";
import { DeployError } from "./errors.js";
import { parseServiceSpec } from "./spec.js";
import { MAIN_ADJUST_ON, servoConfig } from "./tuning.js";

const base = { name: "web-main", image: "nginx:1.27", port: { http: 8080 } };

test("Verifies that a tuning block becomes the seed's k8s section for the rendered Deployment", () => {
  const spec = parseServiceSpec({
    ...base,
    resource_request: { cpu: "250m", memory: "256Mi" },
    env_vars: { COMMIT_DELAY: "20" },
    tuning: {
      cpu: { min: "125m", max: 2, step: 0.125 },
      mem: { min: "128Mi", max: "2Gi", step: 0.125 },
      replicas: { min: 1, max: 3 },
      env: { COMMIT_DELAY: { type: "range", min: 1, max: 100, step: 1, default: 20 } },
    },
  });
  assert.deepEqual(servoConfig(spec, { namespace: "app2" }), {
    k8s: {
      namespace: "app2",
      application: {
        components: {
          "web-main/web-main": {
            settings: {
              cpu: { min: 0.125, max: 2, step: 0.125 },
              mem: { min: 0.125, max: 2, step: 0.125 },
              replicas: { min: 1, max: 3, step: 1 },
            },
            env: { COMMIT_DELAY: { type: "range", min: 1, max: 100, step: 1, default: 20 } },
          },
        },
      },
    },
  });
});

test("Verifies that live: true adds k8slive with the seed's defaults and gates the main section", () => {
  const config = servoConfig(
    parseServiceSpec({ ...base, namespace: "shop", tuning: { cpu: true, live: true } }),
  );
  assert.equal(config.k8s.adjust_on, MAIN_ADJUST_ON);
  assert.equal(config.k8s.namespace, "shop");
  assert.deepEqual(config.k8slive, {
    deploy_to: "tuning",
    component: "opsani-tuning",
    pod_name: "web-main-tuning",
    main_section: "k8s",
    settlement: 0,
    on_fail: "destroy",
    cpu_selector: "both",
    mem_selector: "both",
  });
  const own = servoConfig(
    parseServiceSpec({ ...base, tuning: { cpu: true, adjust_on: "true", live: { pod_name: "p" } } }),
  );
  assert.equal(own.k8s.adjust_on, "true");
  assert.equal(own.k8slive?.pod_name, "p");
  const off = servoConfig(parseServiceSpec({ ...base, tuning: { cpu: true, live: false } }));
  assert.equal(off.k8slive, undefined);
  assert.equal(off.k8s.adjust_on, undefined);
});

test("Verifies that default ranges stretch to include the current request and replica bounds", () => {
  const spec = parseServiceSpec({
    ...base,
    min_containers: 2,
    max_containers: 5,
    tuning: { cpu: true, mem: true, replicas: true },
  });
  const settings = servoConfig(spec).k8s.application.components["web-main/web-main"]?.settings;
  assert.deepEqual(
    settings?.cpu,
    { min: 0.1, max: 4, step: 0.125 },
    "request 100m is below the default 0.125",
  );
  assert.deepEqual(settings?.mem, { min: 0.125, max: 4, step: 0.125 });
  assert.deepEqual(settings?.replicas, { min: 2, max: 5, step: 1 });
  assert.ok(
    spec.notes.some((n) => n.startsWith("tuning.replicas:")),
    "tuning replicas under an HPA is noted",
  );
});

test("Verifies that a spec without a tuning block has no servo config", () => {
  assert.throws(
    () => servoConfig(parseServiceSpec(base)),
    (err: unknown) => err instanceof DeployError && err.reason === "notuning",
  );
});

const bad: [string, object, RegExp][] = [
  ["nothing to tune", {}, /tuning: names nothing to tune/],
  [
    "range excludes the request",
    { cpu: { min: 1, max: 2 } },
    /tuning\.cpu: range 1-2 must include the cpu request \(0\.1\)/,
  ],
  ["min above max", { mem: { min: 2, max: 1 } }, /tuning\.mem\.min: must be at most max \(1\)/],
  [
    "step too big",
    { cpu: { min: 0.1, max: 0.5, step: 1 } },
    /tuning\.cpu\.step: must fit between min and max \(0\.4\)/,
  ],
  ["unitless mem string", { mem: { max: "2" } }, /tuning\.mem\.max: needs a unit/],
  [
    "request_min_limit",
    { cpu: { selector: "request_min_limit" } },
    /tuning\.cpu\.limit_min: is required with selector request_min_limit/,
  ],
  [
    "env default",
    { env: { X: { type: "range", min: 1, max: 5, step: 1, default: 9 } } },
    /tuning\.env\.X\.default: must be within 1-5/,
  ],
  [
    "env enum default",
    { env: { X: { type: "enum", values: ["a"], default: "b" } } },
    /tuning\.env\.X\.default: must be one of the values/,
  ],
  ["env type", { env: { X: { type: "list" } } }, /tuning\.env\.X/],
  [
    "live on_fail",
    { cpu: true, live: { on_fail: "rollback" } },
    /tuning\.live\.on_fail: must be one of "destroy", "nop"/,
  ],
];

for (const [what, tuning, expected] of bad) {
  test(`Verifies that a bad tuning block is refused: ${what}`, () => {
    assert.throws(
      () => parseServiceSpec({ ...base, tuning }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.match(err.message, expected);
        return true;
      },
    );
  });
}

test("Verifies that tuning checks the env_vars value and refuses Secret-backed variables", () => {
  const range = { type: "range", min: 1, max: 10, step: 1, default: 5 };
  assert.throws(
    () => parseServiceSpec({ ...base, env_vars: { X: "50" }, tuning: { env: { X: range } } }),
    /tuning\.env\.X: range 1-10 must include the value in env_vars \(got "50"\)/,
  );
  assert.throws(
    () => parseServiceSpec({ ...base, env_vars: { X: { secret: "s" } }, tuning: { env: { X: range } } }),
    /tuning\.env\.X: X comes from a Secret; the servo tunes only plain values/,
  );
  assert.throws(
    () => parseServiceSpec({ ...base, persistent_storage: [{ size: 1, path: "/d" }], tuning: { cpu: true } }),
    /tuning: needs a Deployment, but persistent_storage makes this service a StatefulSet/,
  );
});
