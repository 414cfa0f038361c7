import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse, stringify } from "yaml";
import { loadServiceSpec, parseServiceSpec } from "./spec.js";
import { renderService, type Manifest, type RenderOptions } from "./render.js";
import { toYaml } from "./yaml.js";
import { servoConfig } from "./tuning.js";

/**
 * Golden files, kwok style: every testdata/<case>.input.yaml (with optional <case>.options.yaml
 * holding render options and `variables`) renders to <case>.output.yaml, and a spec with a
 * tuning: block also to <case>.servo.yaml. UPDATE_GOLDEN=1 rewrites the outputs; review the diff.
 */
const testdata = join(dirname(fileURLToPath(import.meta.url)), "testdata");
const update = process.env.UPDATE_GOLDEN === "1";
const cases = readdirSync(testdata)
  .filter((f) => f.endsWith(".input.yaml"))
  .map((f) => f.slice(0, -".input.yaml".length))
  .sort();

interface CaseOptions extends RenderOptions {
  variables?: Record<string, string>;
}

function renderCase(name: string): {
  output: string;
  servo?: string;
  manifests: Manifest[];
  namespace: string;
} {
  const optionsFile = join(testdata, `${name}.options.yaml`);
  const options = (existsSync(optionsFile) ? parse(readFileSync(optionsFile, "utf8")) : {}) as CaseOptions;
  const { variables, ...render } = options;
  const spec = loadServiceSpec(join(testdata, `${name}.input.yaml`), {
    ...(variables ? { variables } : {}),
    ...(render.namespace ? { namespace: render.namespace } : {}),
  });
  const result = renderService(spec, render);
  const header = result.warnings.map((w) => `# warning: ${w}\n`).join("");
  const namespace = render.namespace ?? spec.namespace ?? "default";
  return {
    output: header + toYaml(result.manifests),
    manifests: result.manifests,
    namespace,
    ...(spec.tuning ? { servo: stringify(servoConfig(spec, { namespace }), { lineWidth: 0 }) } : {}),
  };
}

function compareGolden(file: string, actual: string): void {
  const path = join(testdata, file);
  if (update) {
    writeFileSync(path, actual);
    return;
  }
  assert.ok(existsSync(path), `${file} is missing: run with UPDATE_GOLDEN=1 to create it`);
  assert.equal(
    actual,
    readFileSync(path, "utf8"),
    `${file} differs: run with UPDATE_GOLDEN=1 and review the diff`,
  );
}

test("Verifies that the golden cases exist, including an unchanged Opta block", () => {
  assert.ok(cases.length >= 8, `expected at least 8 golden cases, found ${cases.length}`);
  assert.ok(cases.includes("opta-hello"));
});

for (const name of cases) {
  test(`Verifies that ${name}.input.yaml renders to its golden output`, () => {
    const { output, servo, manifests, namespace } = renderCase(name);
    compareGolden(`${name}.output.yaml`, output);
    const servoFile = `${name}.servo.yaml`;
    if (servo !== undefined) compareGolden(servoFile, servo);
    else
      assert.ok(
        !existsSync(join(testdata, servoFile)),
        `${servoFile} exists but the spec has no tuning block`,
      );

    // Whatever the golden says, these hold for every rendered object.
    for (const m of manifests) {
      assert.ok(m.metadata.name.length <= 63, `${m.kind} name ${m.metadata.name} is longer than 63`);
      assert.match(m.metadata.name, /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
      assert.equal(m.metadata.namespace, namespace);
      assert.equal(m.metadata.labels?.["app.kubernetes.io/managed-by"], "kubewise");
      if (m.kind === "CronJob") assert.ok(m.metadata.name.length <= 52);
    }
    const keys = manifests.map((m) => `${m.kind}/${m.metadata.name}`);
    assert.equal(new Set(keys).size, keys.length, `duplicate objects: ${keys.join(", ")}`);
    // The output is YAML kubectl (YAML 1.1) and 1.2 readers read back into the same objects.
    for (const version of ["1.1", "1.2"] as const) {
      const docs = output.split(/^---$/m).map((d) => parse(d, { version }) as unknown);
      assert.deepEqual(docs, JSON.parse(JSON.stringify(manifests)));
    }
  });
}

test("Verifies that rendering is deterministic: same spec twice, and maps in another order", () => {
  const base = {
    name: "web",
    image: "nginx:1.27",
    port: { http: 80 },
    pod_labels: { b: "2", a: "1" },
    pod_annotations: { "z.io/x": "1", "a.io/y": "2" },
  };
  const reordered = {
    ...base,
    pod_labels: { a: "1", b: "2" },
    pod_annotations: { "a.io/y": "2", "z.io/x": "1" },
  };
  const once = toYaml(renderService(parseServiceSpec(base)).manifests);
  assert.equal(toYaml(renderService(parseServiceSpec(base)).manifests), once);
  assert.equal(toYaml(renderService(parseServiceSpec(reordered)).manifests), once);
});

test("Verifies that the Service selects the Deployment's pods and not the CronJob's", () => {
  const spec = parseServiceSpec({
    name: "web",
    image: "nginx:1.27",
    port: { http: 80 },
    cron_jobs: [{ commands: ["true"], schedule: "@daily" }],
  });
  const { manifests } = renderService(spec);
  const byKind = (k: string) =>
    manifests.find((m) => m.kind === k) as Manifest & { spec: Record<string, never> };
  const selector = (byKind("Service").spec as unknown as { selector: Record<string, string> }).selector;
  const podLabels = (obj: unknown, path: string[]) =>
    path.reduce((o: unknown, k) => (o as Record<string, unknown>)[k], obj) as Record<string, string>;
  const deploymentPods = podLabels(byKind("Deployment"), ["spec", "template", "metadata", "labels"]);
  const cronPods = podLabels(byKind("CronJob"), [
    "spec",
    "jobTemplate",
    "spec",
    "template",
    "metadata",
    "labels",
  ]);
  const matches = (labels: Record<string, string>) =>
    Object.entries(selector).every(([k, v]) => labels[k] === v);
  assert.ok(matches(deploymentPods));
  assert.ok(!matches(cronPods));
});

test("Verifies that an autoscaled Deployment leaves replicas to the HPA and a fixed one sets them", () => {
  const replicasOf = (doc: object) => {
    const deployment = renderService(parseServiceSpec(doc)).manifests.find((m) => m.kind === "Deployment");
    return (deployment?.spec as { replicas?: number }).replicas;
  };
  assert.equal(replicasOf({ name: "a", image: "x", min_containers: 2, max_containers: 4 }), undefined);
  assert.equal(replicasOf({ name: "a", image: "x", replicas: 3 }), 3);
});

test("Verifies the resource defaults: 100m/128Mi requests, limits twice that, CPU limit switchable off", () => {
  const resourcesOf = (doc: object) => {
    const deployment = renderService(parseServiceSpec(doc)).manifests.find((m) => m.kind === "Deployment");
    return (
      deployment as unknown as { spec: { template: { spec: { containers: { resources: unknown }[] } } } }
    ).spec.template.spec.containers[0]?.resources;
  };
  assert.deepEqual(resourcesOf({ name: "a", image: "x" }), {
    requests: { cpu: "100m", memory: "128Mi" },
    limits: { cpu: "200m", memory: "256Mi" },
  });
  assert.deepEqual(resourcesOf({ name: "a", image: "x", resource_request: { cpu: "1.0", memory: "1G" } }), {
    requests: { cpu: "1", memory: "1G" },
    limits: { cpu: "2", memory: "2G" },
  });
  assert.deepEqual(resourcesOf({ name: "a", image: "x", resource_limits: { cpu: false, memory: 300 } }), {
    requests: { cpu: "100m", memory: "128Mi" },
    limits: { memory: "300Mi" },
  });
  assert.deepEqual(resourcesOf({ name: "a", image: "x", resource_limits: { cpu: null } }), {
    requests: { cpu: "100m", memory: "128Mi" },
    limits: { memory: "256Mi" },
  });
});

test("Verifies that a bad namespace or tag given at render time is a DeployError", () => {
  const spec = parseServiceSpec({ name: "a", image: "AUTO" });
  assert.throws(() => renderService(spec, { namespace: "Not_OK" }), {
    name: "DeployError",
    message: /namespace/,
  });
  assert.throws(() => renderService(spec, { tag: "bad tag" }), {
    name: "DeployError",
    message: /tag: "bad tag"/,
  });
});
