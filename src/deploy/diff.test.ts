import { test } from "node:test";
import assert from "node:assert/strict";
import { diffObjects, formatChange } from "./diff.js";

const deployment = (image: string, env: Record<string, string>, replicas?: number) => ({
  apiVersion: "apps/v1",
  kind: "Deployment",
  metadata: {
    name: "web",
    resourceVersion: String(Math.random()),
    generation: 3,
    managedFields: [{ manager: "kubewise" }],
    labels: { "app.kubernetes.io/name": "web" },
  },
  spec: {
    ...(replicas === undefined ? {} : { replicas }),
    template: {
      spec: {
        containers: [
          { name: "web", image, env: Object.entries(env).map(([name, value]) => ({ name, value })) },
          { name: "sidecar", image: "proxy:1" },
        ],
      },
    },
  },
  status: { replicas: Math.random() },
});

test("Verifies that equal objects differ in nothing, whatever the server-kept metadata and status say", () => {
  assert.deepEqual(diffObjects(deployment("a:1", { A: "1" }), deployment("a:1", { A: "1" })), []);
});

test("Verifies that named list items are matched by name: one env var added is one change", () => {
  const changes = diffObjects(
    deployment("a:1", { A: "1", C: "3" }),
    deployment("a:2", { A: "1", B: "2", C: "3" }, 2),
  );
  assert.deepEqual(changes.map(formatChange), [
    '~ spec.template.spec.containers[web].image: "a:1" -> "a:2"',
    '+ spec.template.spec.containers[web].env[B]: {"name":"B","value":"2"}',
    "+ spec.replicas: 2",
  ]);
});

test("Verifies that removed fields and map keys with dots are shown with readable paths", () => {
  const before = {
    metadata: { name: "x", labels: { "app.kubernetes.io/name": "x", keep: "1" } },
    spec: { ports: [80, 443] },
  };
  const after = { metadata: { name: "x", labels: { keep: "1" } }, spec: { ports: [80] } };
  assert.deepEqual(diffObjects(before, after), [
    { path: 'metadata.labels["app.kubernetes.io/name"]', op: "removed", before: "x" },
    { path: "spec.ports[1]", op: "removed", before: 443 },
  ]);
});

test("Verifies that keys holding undefined count as absent, as the typed client objects carry them", () => {
  assert.deepEqual(diffObjects({ spec: { a: 1, b: undefined } }, { spec: { a: 1 } }), []);
  assert.deepEqual(diffObjects({ spec: { a: undefined } }, { spec: { a: 2 } }), [
    { path: "spec.a", op: "added", after: 2 },
  ]);
});

test("Verifies that long values are cut in the printed plan", () => {
  const line = formatChange({ path: "x", op: "added", after: "y".repeat(200) });
  assert.ok(line.length < 90);
  assert.ok(line.endsWith("…"));
});
