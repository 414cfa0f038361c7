import { test } from "node:test";
import assert from "node:assert/strict";
import { KubeConfig } from "@kubernetes/client-node";
import { parse, stringify } from "yaml";
import { ConfigError } from "../config/index.js";
import { KubeClient } from "../kube/index.js";
import {
  LocalOptimizer,
  TrialStore,
  assembleServo,
  compileObjective,
  optimizerConfigSchema,
  parseServoConfig,
} from "../servo/index.js";
import { DeployError } from "./errors.js";
import { parseServiceSpec } from "./spec.js";
import { MAIN_ADJUST_ON, servoConfig, servoConfigNotes } from "./tuning.js";

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
    optimizer: {
      study: "web-main",
      db: ".kubewise/web-main/optimizer.db",
      objective:
        '(components["web-main/web-main"].cpu + 0.25 * components["web-main/web-main"].mem) * components["web-main/web-main"].replicas',
      direction: "minimize",
      max_trials: 20,
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
    { min: 0.1, max: 3.975, step: 0.125 },
    "request 100m is below the default 0.125; max moves in to keep whole steps, as the servo needs",
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
    "step not dividing the range (the servo's rule)",
    { cpu: { min: 0.1, max: 2 } },
    /tuning\.cpu\.step: step 0\.125 must divide max - min \(2 - 0\.1\) into whole steps/,
  ],
  [
    "unknown measure connector",
    { cpu: true, measure: { connector: "datadog" } },
    /tuning\.measure\.connector: must be one of "prometheus", "synthetic", "jobs"/,
  ],
  [
    "measure without metrics",
    { cpu: true, measure: { connector: "prometheus", metrics: {} } },
    /tuning\.measure\.metrics: must define at least one metric/,
  ],
  [
    "measure not a map",
    { cpu: true, measure: "prometheus" },
    /tuning\.measure: must be the servo's measure section/,
  ],
  [
    "optimizer without objective",
    { cpu: true, optimizer: { max_trials: 5 } },
    /tuning\.optimizer\.objective: /,
  ],
  [
    "optimizer max_trials",
    { cpu: true, optimizer: { objective: "settings.cpu", max_trials: 0 } },
    /tuning\.optimizer\.max_trials: /,
  ],
  [
    "optimizer objective not CEL",
    { cpu: true, optimizer: { objective: "settings.cpu +" } },
    /tuning\.optimizer\.objective: /,
  ],
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

const prometheus = {
  connector: "prometheus",
  base_url: "http://prometheus.monitoring:9090",
  metrics: {
    latency_p90: {
      query:
        'histogram_quantile(0.9, sum(rate(http_request_duration_seconds_bucket{service="web-main"}[1m])) by (le)) * 1000',
      unit: "ms",
      reduce: "avg",
    },
  },
};

/**
 * acceptedByServoRun does what `kubewise servo run -c FILE` does with a file, short of talking to
 * a cluster: read it, assemble the connectors, and build the local optimizer from the optimizer
 * section (the step that stops with "no --optimizer URL and no optimizer section").
 */
function acceptedByServoRun(text: string) {
  const config = parseServoConfig(parse(text), "servo.yaml");
  const parts = assembleServo(config, { client: new KubeClient(new KubeConfig(), "test") });
  assert.ok(config.optimizer, "an optimizer section, so servo run needs no --optimizer URL");
  const store = TrialStore.open(":memory:");
  try {
    const optimizer = new LocalOptimizer({ config: optimizerConfigSchema.parse(config.optimizer), store });
    assert.equal(optimizer.summary().trials, 0);
  } finally {
    store.close();
  }
  return { config, parts };
}

test("Verifies that the printed servo config is accepted by `servo run`: default optimizer on the tuning pod, the block's measure", () => {
  const spec = parseServiceSpec({
    ...base,
    resource_request: { cpu: "250m", memory: "256Mi" },
    tuning: { cpu: true, mem: true, live: true, measure: prometheus },
  });
  const { config, parts } = acceptedByServoRun(stringify(servoConfig(spec), { lineWidth: 0 }));
  assert.equal(config.measure?.connector, "prometheus");
  assert.ok(parts.measurer, "a measure connector");
  assert.ok(parts.tuning, "the k8slive connector");
  const optimizer = config.optimizer;
  assert.ok(optimizer);
  assert.equal(optimizer.direction, "minimize");
  assert.equal(optimizer.db, ".kubewise/web-main/optimizer.db");
  assert.equal(optimizer.max_trials, 20);
  assert.deepEqual(optimizer.tune, ["opsani-tuning"]);
  assert.deepEqual(optimizer.userdata, { deploy_to: "tuning" });
  // The objective is the tuning pod's cost: cheaper settings score lower.
  const objective = compileObjective(optimizer);
  const cost = (cpu: number, mem: number) =>
    objective.evaluate({ metrics: {}, settings: { "opsani-tuning": { cpu, mem, replicas: 1 } } }).objective;
  assert.equal(cost(0.5, 1), 0.75);
  assert.ok((cost(0.25, 0.5) ?? 0) < (cost(1, 2) ?? 0));
  const notes = servoConfigNotes(spec);
  assert.equal(notes.length, 1);
  assert.match(notes[0] ?? "", /^tuning\.optimizer: none given, so the printed one minimises the cost/);
});

test("Verifies that the block's own optimizer is passed through, and a missing measure is named as the section to add", () => {
  const optimizer = {
    study: "web",
    objective: 'components["web-main/web-main"].cpu',
    direction: "minimize",
    constraints: ["metrics.latency_p90 <= 50.0"],
    max_trials: 8,
  };
  const spec = parseServiceSpec({ ...base, tuning: { cpu: true, optimizer } });
  const printed = servoConfig(spec);
  assert.deepEqual(printed.optimizer, optimizer, "as written");
  assert.equal(printed.measure, undefined, "no measure is made up");
  const { config, parts } = acceptedByServoRun(stringify(printed));
  assert.equal(config.optimizer?.max_trials, 8);
  assert.equal(parts.measurer, undefined);
  assert.deepEqual(servoConfigNotes(spec).length, 1);
  assert.match(
    servoConfigNotes(spec)[0] ?? "",
    /^tuning\.measure: missing, .*add a measure section to the tuning block \(connector: prometheus/,
  );
});

test("Verifies that a live block's own optimizer without userdata.deploy_to is noted, since nothing would be adjusted", () => {
  const optimizer = { objective: 'components["opsani-tuning"].cpu', direction: "minimize" };
  const notes = (extra: object) =>
    servoConfigNotes(
      parseServiceSpec({
        ...base,
        tuning: { cpu: true, live: true, measure: prometheus, optimizer: { ...optimizer, ...extra } },
      }),
    );
  assert.match(
    notes({}).join("\n"),
    /tuning\.optimizer: has no userdata\.deploy_to.*add userdata: \{deploy_to: tuning\}/,
  );
  assert.deepEqual(notes({ userdata: { deploy_to: "tuning" } }), []);
});

test("Verifies that with only env tuned and no tuning pod, no optimizer is made up and the note says to add one", () => {
  const spec = parseServiceSpec({
    ...base,
    env_vars: { X: "5" },
    tuning: { env: { X: { type: "range", min: 1, max: 10, step: 1, default: 5 } }, measure: prometheus },
  });
  const config = servoConfig(spec);
  assert.equal(config.optimizer, undefined);
  assert.deepEqual(parseServoConfig(parse(stringify(config))).measure?.connector, "prometheus");
  assert.match(servoConfigNotes(spec).join("\n"), /^tuning\.optimizer: missing, .*add an optimizer section/);
});
