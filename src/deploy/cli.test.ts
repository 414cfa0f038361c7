import { test } from "node:test";
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";
import { deployCommand, renderOutput, servoConfigOutput } from "../cli/deploy.js";

const testdata = join(dirname(fileURLToPath(import.meta.url)), "testdata");

test("Verifies that `deploy render` prints the objects as multi-document YAML in the asked namespace", () => {
  const { text, warnings } = renderOutput({
    file: join(testdata, "opta-hello.input.yaml"),
    namespace: "demo",
    var: {},
    output: "yaml",
  });
  const docs = parseAllDocuments(text).map(
    (d) => d.toJS() as { kind: string; metadata: { namespace: string } },
  );
  assert.deepEqual(
    docs.map((d) => d.kind),
    ["Service", "Deployment", "HorizontalPodAutoscaler", "Ingress"],
  );
  assert.ok(docs.every((d) => d.metadata.namespace === "demo"));
  assert.deepEqual(warnings, []);
});

test("Verifies that --var fills Opta placeholders and -o json prints a List", () => {
  const { text, warnings } = renderOutput({
    file: join(testdata, "opta-full.input.yaml"),
    var: { "parent.domain": "example.org", env: "prod", "variables.containers": "4" },
    tag: "v9",
    output: "json",
  });
  const list = JSON.parse(text) as { kind: string; items: { kind: string; spec: Record<string, unknown> }[] };
  assert.equal(list.kind, "List");
  assert.match(text, /"host": "api\.example\.org"/);
  assert.match(text, /localhost:5000\/api:v9/);
  assert.equal(list.items.find((i) => i.kind === "HorizontalPodAutoscaler")?.spec.maxReplicas, 4);
  assert.deepEqual(warnings, ["links: Opta-only field, ignored (it needs Opta's cloud modules)"]);
});

test("Verifies that `deploy servo-config` prints the k8s, k8slive and optimizer sections and names the missing measure", () => {
  const { text, warnings } = servoConfigOutput({
    file: join(testdata, "tuned.input.yaml"),
    namespace: "app2",
    var: {},
  });
  assert.match(
    text,
    /^k8s:\n {2}adjust_on: data\["control"\]\["userdata"\]\["deploy_to"\] == "main"\n {2}namespace: app2\n/,
  );
  assert.match(text, /\nk8slive:\n {2}deploy_to: tuning\n/);
  assert.match(text, /\noptimizer:\n {2}study: web-main\n {2}db: \.kubewise\/web-main\/optimizer\.db\n/);
  assert.match(
    warnings.join("\n"),
    /^tuning\.measure: missing, .*add a measure section to the tuning block/m,
  );
});

test("Verifies that the command parses repeated --var flags into one map", async () => {
  const cmd = deployCommand();
  const render = cmd.commands.find((c) => c.name() === "render");
  assert.ok(render);
  render.action(() => undefined);
  await cmd.parseAsync(["render", "-f", "x.yaml", "--var", "a=1", "--var", "b.c=x=y"], { from: "user" });
  assert.deepEqual(render.opts().var, { a: "1", "b.c": "x=y" });
  assert.equal(render.opts().output, "yaml");
});
