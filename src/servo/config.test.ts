import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { ConfigError, parseYamlText } from "../config/index.js";
import {
  isOnGrid,
  loadServoConfig,
  parseComponentKey,
  parseServoConfig,
  settlementSeconds,
  stepsBetween,
  type ServoConfig,
} from "./config.js";

const SEED = "test/fixtures/servo/seed.yaml";
const COMPONENT = "k8s.application.components.web-main/main";

type Doc = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- test documents are edited freely

function seedDoc(): Doc {
  return parseYamlText(readFileSync(SEED, "utf8"), SEED)[0] as Doc;
}

/** seedWith loads the seed document after `edit` changed it. */
function seedWith(edit: (doc: Doc) => void): ServoConfig {
  const doc = seedDoc();
  edit(doc);
  return parseServoConfig(doc, "servo.yaml");
}

/** rejects asserts that loading fails with a ConfigError whose message matches every pattern. */
function rejects(load: () => unknown, ...patterns: RegExp[]): ConfigError {
  let caught: unknown;
  try {
    load();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof ConfigError, `expected a ConfigError, got ${String(caught)}`);
  assert.match(caught.message, /^servo\.yaml: \d+ problems?:/);
  for (const p of patterns) assert.match(caught.message, p);
  return caught;
}

test("Verifies that the seed's example loads exactly as written, with the seed's defaults", () => {
  const text = readFileSync(SEED, "utf8");
  assert.match(text, /^k8s:\n {2}adjust_on: data\["control"\]\["userdata"\]\["deploy_to"\] == "main"\n/);
  const config = loadServoConfig(SEED);
  assert.equal(config.file, SEED);
  const { adjustOn, ...main } = config.main;
  assert.equal(adjustOn?.source, 'data["control"]["userdata"]["deploy_to"] == "main"');
  assert.deepEqual(main, {
    name: "k8s",
    namespace: "app2",
    onFail: "rollback",
    component: {
      key: "web-main/main",
      deployment: "web-main",
      container: "main",
      settings: {
        replicas: { min: 1, max: 3, step: 1, pinned: false },
        cpu: { min: 0.125, max: 2, step: 0.125, pinned: false, selector: "both" },
        mem: { min: 0.125, max: 2, step: 0.125, pinned: false, selector: "both" },
      },
      env: { COMMIT_DELAY: { type: "range", min: 1, max: 100, step: 1, default: 20, pinned: false } },
    },
  });
  assert.ok(config.tuning);
  const { adjustOn: tuningOn, ...tuning } = config.tuning;
  assert.equal(tuningOn?.source, 'data["control"]["userdata"]["deploy_to"] == "tuning"');
  assert.deepEqual(tuning, {
    deployTo: "tuning",
    component: "opsani-tuning",
    podName: "opsani-tuning",
    mainSection: "k8s",
    settlementSeconds: 130,
    onFail: "destroy",
    cpuSelector: "both",
    memSelector: "both",
    cpu: { min: 0.125, max: 2, step: 0.125 },
    mem: { min: 0.125, max: 2, step: 0.125 },
    replicas: { min: 0, max: 1, step: 1 },
  });
  assert.equal(config.measure, undefined);
  assert.equal(config.optimizer, undefined);
});

test("Verifies that an empty k8slive section takes every default the seed documents", () => {
  const config = seedWith((doc) => {
    doc.k8slive = null;
    delete doc.k8s.application.components["web-main/main"].settings.cpu;
  });
  const tuning = config.tuning;
  assert.ok(tuning);
  assert.equal(tuning.adjustOn, undefined);
  assert.deepEqual(
    { ...tuning },
    {
      deployTo: "tuning",
      component: "opsani-tuning",
      podName: "opsani-tuning",
      mainSection: "k8s",
      settlementSeconds: 0,
      onFail: "destroy",
      cpuSelector: "both",
      memSelector: "both",
      // No cpu guard rails on the main component: servo-k8slive's own defaults.
      cpu: { min: 0.125, max: 4, step: 0.125 },
      mem: { min: 0.125, max: 2, step: 0.125 },
      replicas: { min: 0, max: 1, step: 1 },
    },
  );
});

test("Verifies that a listed cpu setting without bounds takes servo-k8s's defaults and a key without container is allowed", () => {
  const config = seedWith((doc) => {
    const c = doc.k8s.application.components["web-main/main"];
    delete doc.k8s.application.components["web-main/main"];
    doc.k8s.application.components["web-main"] = c;
    c.settings.cpu = null;
    c.settings.mem = { selector: "request_min_limit", limit_min: 0.5, pinned: true };
  });
  const component = config.main.component;
  assert.equal(component.deployment, "web-main");
  assert.equal(component.container, undefined);
  assert.deepEqual(component.settings.cpu, {
    min: 0.0125,
    max: 4,
    step: 0.0125,
    pinned: false,
    selector: "both",
  });
  assert.deepEqual(component.settings.mem, {
    min: 0.125,
    max: 4,
    step: 0.125,
    pinned: true,
    selector: "request_min_limit",
    limitMin: 0.5,
  });
});

test("Verifies that a main section with several components is rejected, naming them", () => {
  rejects(
    () =>
      seedWith((doc) => {
        doc.k8s.application.components["web-other/side"] = { settings: {} };
      }),
    /k8s\.application\.components: must hold exactly one component.* \(got \["web-main\/main","web-other\/side"\]\)/,
  );
  rejects(
    () =>
      seedWith((doc) => {
        doc.k8s.application.components = {};
      }),
    /k8s\.application\.components: must hold exactly one component.* \(got \[\]\)/,
  );
});

test("Verifies that unknown keys are rejected at every level, naming the key", () => {
  const err = rejects(
    () =>
      seedWith((doc) => {
        doc.mesure = { connector: "prometheus" };
        doc.k8slive.timeout = 600;
        doc.k8s.application.components["web-main/main"].settings.cpu.stepp = 1;
      }),
    /\(document\): unknown key "mesure" \(known keys: k8s, k8slive, measure, optimizer, remote\)/,
    /k8slive: unknown key "timeout" \(known keys: deploy_to, adjust_on, component, pod_name, main_section, settlement, on_fail, cpu_selector, mem_selector\)/,
    new RegExp(`${COMPONENT}.settings.cpu: unknown key "stepp"`),
  );
  assert.equal(err.issues.length, 3);
});

test("Verifies that on_fail values outside the allowed words are rejected with what is allowed", () => {
  rejects(
    () =>
      seedWith((doc) => {
        doc.k8s.on_fail = "foo";
      }),
    /k8s\.on_fail: must be one of "rollback", "destroy", "nop" \(got "foo"\)/,
  );
  rejects(
    () =>
      seedWith((doc) => {
        doc.k8slive.on_fail = "rollback";
      }),
    /k8slive\.on_fail: must be one of "destroy", "nop" \(got "rollback"\)/,
  );
  rejects(
    () =>
      seedWith((doc) => {
        doc.k8slive.cpu_selector = "request_min_limit";
      }),
    /k8slive\.cpu_selector: must be one of "both", "limit", "request" \(got "request_min_limit"\)/,
  );
});

test("Verifies that min > max is rejected at the field, with both values", () => {
  rejects(
    () =>
      seedWith((doc) => {
        doc.k8s.application.components["web-main/main"].settings.cpu.min = 3;
      }),
    new RegExp(`${COMPONENT}.settings.cpu.min: min must not exceed max: min is 3, max is 2 \\(got 3\\)`),
  );
  rejects(
    () =>
      seedWith((doc) => {
        doc.k8s.application.components["web-main/main"].settings.replicas = { min: 4, max: 3 };
      }),
    new RegExp(`${COMPONENT}.settings.replicas.min: min must not exceed max: min is 4, max is 3`),
  );
  // Only min given, above the default max: the message says which bound was a default.
  rejects(
    () =>
      seedWith((doc) => {
        doc.k8s.application.components["web-main/main"].settings.mem = { min: 5 };
      }),
    new RegExp(
      `${COMPONENT}.settings.mem.min: min must not exceed max: min is 5, max is 4 \\(the default\\)`,
    ),
  );
});

test("Verifies that a step must divide the range exactly, in decimal", () => {
  rejects(
    () =>
      seedWith((doc) => {
        doc.k8s.application.components["web-main/main"].settings.cpu.step = 0.3;
      }),
    new RegExp(
      `${COMPONENT}.settings.cpu.step: step 0.3 must divide max - min \\(2 - 0.125\\) into whole steps \\(got 0.3\\)`,
    ),
  );
  rejects(
    () =>
      seedWith((doc) => {
        doc.k8s.application.components["web-main/main"].env.COMMIT_DELAY.step = 7;
      }),
    /env\.COMMIT_DELAY\.step: step 7 must divide max - min \(100 - 1\)/,
  );
  rejects(
    () =>
      seedWith((doc) => {
        doc.k8s.application.components["web-main/main"].env.RATIO = {
          type: "range",
          min: 0,
          max: 0.5,
          default: 0,
        };
      }),
    /env\.RATIO\.max: step 1 \(the default\) must divide max - min \(0\.5 - 0\) into whole steps \(got 0\.5\)/,
  );
  const ratio = seedWith((doc) => {
    doc.k8s.application.components["web-main/main"].env.RATIO = {
      type: "range",
      min: 0.125,
      max: 0.875,
      step: 0.125,
      default: 0.375,
      unit: "fraction",
    };
  });
  assert.deepEqual(ratio.main.component.env.RATIO, {
    type: "range",
    min: 0.125,
    max: 0.875,
    step: 0.125,
    default: 0.375,
    unit: "fraction",
    pinned: false,
  });
  // 0.1..0.3 by 0.1 fails in binary floating point ((0.3 - 0.1) / 0.1 = 1.9999999999999998).
  const config = seedWith((doc) => {
    doc.k8s.application.components["web-main/main"].settings.cpu = { min: 0.1, max: 0.3, step: 0.1 };
    doc.k8s.application.components["web-main/main"].settings.mem = { min: 0.125, max: 64, step: 0.125 };
  });
  assert.deepEqual(config.tuning?.cpu, { min: 0.1, max: 0.3, step: 0.1 });
});

test("Verifies the exact grid arithmetic on awkward decimals and exponents", () => {
  assert.equal(stepsBetween(0.125, 2, 0.125), 15);
  assert.equal(stepsBetween(0.1, 0.3, 0.1), 2);
  assert.equal(stepsBetween(0.0125, 4, 0.0125), 319);
  assert.equal(stepsBetween(1e-7, 3e-7, 1e-7), 2);
  assert.equal(stepsBetween(0, 1e21, 1e20), 10);
  assert.equal(stepsBetween(0.125, 2, 0.3), undefined);
  assert.equal(stepsBetween(0, 1, 0), undefined);
  assert.equal(isOnGrid(0.7, { min: 0.1, max: 1, step: 0.2 }), true);
  assert.equal(isOnGrid(0.8, { min: 0.1, max: 1, step: 0.2 }), false);
  assert.equal(isOnGrid(1.1, { min: 0.1, max: 1, step: 0.2 }), false);
});

test("Verifies that an env setting without a default is rejected, saying what the default is for", () => {
  rejects(
    () =>
      seedWith((doc) => {
        delete doc.k8s.application.components["web-main/main"].env.COMMIT_DELAY.default;
      }),
    new RegExp(
      `${COMPONENT}.env.COMMIT_DELAY.default: is required: the value used when the container has no such variable yet`,
    ),
  );
  rejects(
    () =>
      seedWith((doc) => {
        doc.k8s.application.components["web-main/main"].env.GC = { type: "enum", values: ["G1", "Parallel"] };
      }),
    /env\.GC\.default: is required/,
  );
});

test("Verifies that a default outside its range or values is rejected", () => {
  rejects(
    () =>
      seedWith((doc) => {
        doc.k8s.application.components["web-main/main"].env.COMMIT_DELAY.default = 200;
      }),
    /env\.COMMIT_DELAY\.default: must be within \[1, 100\] and on the grid min \+ k\*1 \(got 200\)/,
  );
  rejects(
    () =>
      seedWith((doc) => {
        doc.k8s.application.components["web-main/main"].env.GC = {
          type: "enum",
          values: ["G1", "Parallel"],
          default: "CMS",
        };
      }),
    /env\.GC\.default: must be one of "G1", "Parallel" \(got "CMS"\)/,
  );
  rejects(
    () =>
      seedWith((doc) => {
        doc.k8s.application.components["web-main/main"].env.GC = { type: "list", values: [] };
      }),
    /env\.GC\.type: must be one of "range", "enum" \(got "list"\)/,
  );
});

test("Verifies that enum env values are kept as strings, as env values are", () => {
  const config = seedWith((doc) => {
    doc.k8s.application.components["web-main/main"].env.WORKERS = {
      type: "enum",
      values: [1, 2, 4],
      default: 2,
    };
  });
  assert.deepEqual(config.main.component.env.WORKERS, {
    type: "enum",
    values: ["1", "2", "4"],
    default: "2",
    pinned: false,
  });
});

test("Verifies that main_section must name a section of the file, and may name another one", () => {
  rejects(
    () =>
      seedWith((doc) => {
        doc.k8slive.main_section = "web";
      }),
    /k8slive\.main_section: must name a section of this file holding the main component; sections present: "k8s", "k8slive" \(got "web"\)/,
    /\(document\): unknown key "k8s"/,
  );
  const config = seedWith((doc) => {
    doc.web = doc.k8s;
    delete doc.k8s;
    doc.k8slive.main_section = "web";
  });
  assert.equal(config.main.name, "web");
  assert.equal(config.tuning?.mainSection, "web");
  rejects(
    () =>
      seedWith((doc) => {
        doc.k8slive.main_section = "measure";
      }),
    /k8slive\.main_section: must name the main section, not one of "k8slive", "measure", "optimizer"/,
  );
  rejects(
    () => parseServoConfig({ measure: { connector: "synthetic" } }, "servo.yaml"),
    /needs a "k8s" section/,
  );
});

test("Verifies that an adjust_on syntax error is reported at load time, naming the field", () => {
  rejects(
    () =>
      seedWith((doc) => {
        doc.k8s.adjust_on = 'data["control" == "main"';
      }),
    /k8s\.adjust_on: is not a valid CEL expression: .* at column \d+ \(got "data\[\\"control\\" == \\"main\\""\)/,
  );
  rejects(
    () =>
      seedWith((doc) => {
        doc.k8slive.adjust_on = 'deploy_to == "tuning"';
      }),
    /k8slive\.adjust_on: is not a valid CEL expression: Unknown variable: deploy_to/,
  );
  rejects(
    () =>
      seedWith((doc) => {
        doc.k8slive.adjust_on = "1 + 2";
      }),
    /k8slive\.adjust_on: must be a condition \(a bool\), but it yields int/,
  );
});

test("Verifies the selector rules: request_min_limit needs limit_min, and only it takes one", () => {
  rejects(
    () =>
      seedWith((doc) => {
        doc.k8s.application.components["web-main/main"].settings.cpu.selector = "request_min_limit";
      }),
    new RegExp(`${COMPONENT}.settings.cpu.limit_min: is required with selector request_min_limit`),
  );
  rejects(
    () =>
      seedWith((doc) => {
        doc.k8s.application.components["web-main/main"].settings.cpu.limit_min = 1;
      }),
    /settings\.cpu\.limit_min: is only used with selector request_min_limit, not both \(got 1\)/,
  );
});

test("Verifies that component keys and names must be Kubernetes names", () => {
  assert.deepEqual(parseComponentKey("web-main/main"), { deployment: "web-main", container: "main" });
  assert.deepEqual(parseComponentKey("web.v1"), { deployment: "web.v1" });
  assert.equal(parseComponentKey("Web/main"), undefined);
  assert.equal(parseComponentKey("a/b/c"), undefined);
  assert.equal(parseComponentKey("web/"), undefined);
  rejects(
    () =>
      seedWith((doc) => {
        doc.k8s.application.components = { "Web_Main/main": {} };
      }),
    /components\.Web_Main\/main: component key must be "deployment" or "deployment\/container"/,
  );
  rejects(
    () =>
      seedWith((doc) => {
        doc.k8s.namespace = "App2";
        doc.k8slive.pod_name = "Tuning Pod";
      }),
    /k8s\.namespace: must be a namespace name: lower-case letters, digits and "-" \(got "App2"\)/,
    /k8slive\.pod_name: must be a pod name/,
  );
});

test("Verifies that settlement precedence is control > main section > k8slive", () => {
  const seed = loadServoConfig(SEED);
  assert.equal(settlementSeconds(seed, "tuning"), 130);
  assert.equal(settlementSeconds(seed, "main"), 0);
  assert.equal(settlementSeconds(seed, "tuning", { settlement: 5 }), 5);
  assert.equal(settlementSeconds(seed, "main", { settlement: 0 }), 0);
  const withMain = seedWith((doc) => {
    doc.k8s.settlement = "1m";
  });
  assert.equal(settlementSeconds(withMain, "tuning"), 60);
  assert.equal(settlementSeconds(withMain, "main"), 60);
  assert.equal(settlementSeconds(withMain, "tuning", { settlement: 7 }), 7);
  const noTuning = seedWith((doc) => {
    delete doc.k8slive;
  });
  assert.equal(noTuning.tuning, undefined);
  assert.equal(settlementSeconds(noTuning, "tuning"), 0);
});

test("Verifies that the example measure sections load with their defaults", () => {
  const prom = loadServoConfig("test/fixtures/servo/prometheus.yaml");
  assert.deepEqual(prom.measure, {
    connector: "prometheus",
    baseUrl: "http://prometheus.monitoring:9090",
    timeoutSeconds: 30,
    metrics: {
      throughput: {
        query: 'sum(rate(http_requests_total{opsani_role="tuning"}[1m]))',
        unit: "rps",
        stepSeconds: 15,
        reduce: "avg",
      },
      latency_p90: {
        query:
          'histogram_quantile(0.9, sum by (le) (rate(http_request_duration_seconds_bucket{opsani_role="tuning"}[1m]))) * 1000',
        unit: "ms",
        stepSeconds: 60,
        reduce: "max",
      },
      requests_by_code: {
        query: 'sum by (code) (rate(http_requests_total{opsani_role="tuning"}[1m]))',
        unit: "rps",
        stepSeconds: 30,
      },
    },
  });
  const synthetic = loadServoConfig("test/fixtures/servo/synthetic.yaml");
  assert.deepEqual(synthetic.measure, {
    connector: "synthetic",
    seed: 7,
    noise: 0.03,
    loadRps: 300,
    delayEnv: "COMMIT_DELAY",
    timeScale: 0,
  });
  assert.equal(synthetic.optimizer?.objective, "settings.cpu + 0.25 * settings.mem");
  assert.equal(synthetic.optimizer?.direction, "minimize");
  assert.deepEqual(synthetic.optimizer?.constraints, [
    { expression: "metrics.latency_p90 <= 50.0" },
    { expression: "metrics.error_rate <= 0.5" },
  ]);
  assert.equal(synthetic.optimizer?.max_trials, 50, "the optimizer section gets its own defaults");
  const jobs = seedWith((doc) => {
    doc.measure = { connector: "jobs", namespaces: ["batch"] };
  });
  assert.deepEqual(jobs.measure, { connector: "jobs", options: { namespaces: ["batch"] } });
});

test("Verifies that the optimizer section is validated by the optimizer's schema", () => {
  rejects(
    () =>
      seedWith((doc) => {
        doc.optimizer = { objective: "metrics.throughput", direction: "up", max_trial: 3 };
      }),
    /optimizer: unknown key "max_trial"/,
    /optimizer\.direction: must be one of "maximize", "minimize" \(got "up"\)/,
  );
});

test("Verifies that measure sections reject bad connectors, URLs, steps and unknown keys", () => {
  rejects(
    () =>
      seedWith((doc) => {
        doc.measure = { connector: "datadog" };
      }),
    /measure\.connector: must be one of "prometheus", "synthetic", "jobs" \(got "datadog"\)/,
  );
  rejects(
    () =>
      seedWith((doc) => {
        doc.measure = {
          connector: "prometheus",
          base_url: "ftp://x",
          metrics: { t: { query: "up", step: 0, period: 60 } },
        };
      }),
    /measure\.base_url: must be an http\(s\) URL \(got "ftp:\/\/x"\)/,
    /measure\.metrics\.t: unknown key "period"/,
    /measure\.metrics\.t\.step: must be more than 0 seconds/,
  );
  rejects(
    () =>
      seedWith((doc) => {
        doc.measure = { connector: "prometheus", metrics: {} };
      }),
    /measure\.metrics: must define at least one metric/,
  );
  rejects(
    () =>
      seedWith((doc) => {
        doc.measure = { connector: "synthetic", noise: 2, loadrps: 5 };
      }),
    /measure: unknown key "loadrps"/,
  );
});

test("Verifies that a remote section names the optimizer's endpoint and token file, and a bad URL or an empty deploy_to is named", () => {
  const config = seedWith((doc) => {
    doc.remote = {
      url: "https://opt.example/accounts/acme/applications/web/servo",
      token_file: "/run/token",
    };
  });
  assert.deepEqual(config.remote, {
    url: "https://opt.example/accounts/acme/applications/web/servo",
    tokenFile: "/run/token",
  });
  assert.equal(seedWith(() => {}).remote, undefined);
  rejects(
    () =>
      seedWith((doc) => {
        doc.remote = { url: "opt.example/servo", token: "x" };
        doc.k8slive.deploy_to = "";
      }),
    /remote\.url: must be an http\(s\) URL of the optimizer's servo endpoint \(got "opt\.example\/servo"\)/,
    /remote: unknown key "token" \(known keys: url, token_file\)/,
    /k8slive\.deploy_to: must not be empty/,
  );
});

void test("Verifies that k8slive.component may not reuse the main component's name", () => {
  rejects(
    () =>
      seedWith((d) => {
        d.k8slive.component = "web-main/main";
      }),
    /k8slive\.component: must differ from the main component's name .* \(got "web-main\/main"\)/,
  );
});

void test("Verifies that a bad component key or env name quotes the key, not the whole section", () => {
  const err = rejects(
    () =>
      seedWith((d) => {
        const components = d.k8s.application.components;
        components["Web/Main"] = components["web-main/main"];
        delete components["web-main/main"];
      }),
    /components\.Web\/Main: component key must be "deployment" or "deployment\/container" .* \(got "Web\/Main"\)$/m,
  );
  assert.doesNotMatch(err.message, /got \{/);
  rejects(
    () =>
      seedWith((d) => {
        d.k8s.application.components["web-main/main"].env["1X"] = {
          type: "range",
          min: 1,
          max: 2,
          default: 1,
        };
      }),
    /env\.1X: is not a valid environment variable name.* \(got "1X"\)/,
  );
});

void test("Verifies that an optimizer objective or constraint that is not usable CEL fails at load, naming its field", () => {
  rejects(
    () =>
      seedWith((d) => {
        d.optimizer = { objective: "metrics.rps +", constraints: ["metrics.latency"] };
      }),
    /optimizer\.objective: objective "metrics\.rps \+" is not valid CEL/,
    /optimizer\.constraints\.0: constraint "metrics\.latency" must yield a condition \(bool\)/,
  );
  assert.equal(
    seedWith((d) => {
      d.optimizer = { objective: "metrics.rps / settings.cpu", constraints: ["metrics.p90 < 0.5"] };
    }).optimizer?.objective,
    "metrics.rps / settings.cpu",
  );
});
