import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parse, parseAllDocuments } from "yaml";
import { swarmCommand, parseListen } from "../cli/swarm.js";

// The shipped manifests must agree with the code: every kustomize resource exists, the
// Deployment's arguments are flags `kubewise swarm run` accepts, and the RBAC names the account,
// namespace and Lease the Deployment uses. (The integration suite runs the controller as an
// account holding exactly these rules.)
const dir = fileURLToPath(new URL("../../manifests/swarm/", import.meta.url));
const read = (file: string): unknown => parse(readFileSync(`${dir}${file}`, "utf8"));

interface Container {
  args: string[];
  env: { name: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
  ports: { containerPort: number }[];
}
interface Deployment {
  metadata: { namespace: string };
  spec: {
    template: {
      metadata: { annotations: Record<string, string> };
      spec: { serviceAccountName: string; containers: Container[] };
    };
  };
}
interface Rbac {
  kind: string;
  metadata: { name: string; namespace?: string };
  rules?: { resources: string[]; resourceNames?: string[]; verbs: string[] }[];
  subjects?: { name: string; namespace: string }[];
}

test("Verifies that every resource of the kustomization exists", () => {
  const k = read("kustomization.yaml") as { resources: string[] };
  assert.deepEqual(
    k.resources.filter((f) => !existsSync(`${dir}${f}`)),
    [],
  );
  assert.ok(k.resources.includes("crd.yaml") && k.resources.includes("rbac.yaml"));
});

test("Verifies that the Deployment's arguments parse as `kubewise swarm run` flags and agree with its ports and env", () => {
  const d = read("deployment.yaml") as Deployment;
  const c = d.spec.template.spec.containers[0] as Container;
  assert.deepEqual(c.args.slice(0, 2), ["swarm", "run"]);
  const run = swarmCommand().commands.find((cmd) => cmd.name() === "run");
  assert.ok(run);
  const parsed = run.parseOptions(c.args.slice(2));
  assert.deepEqual(parsed.unknown, [], "every argument is a known flag");
  const opts = run.opts() as { allNamespaces?: boolean; leaseName: string; identity?: string };
  assert.equal(opts.allNamespaces, true);
  assert.equal(opts.identity, "$(POD_NAME)");
  const listen = parseListen(c.args.find((a) => a.startsWith("--listen="))?.split("=")[1] ?? "");
  assert.equal(c.ports[0]?.containerPort, listen.port);
  assert.equal(d.spec.template.metadata.annotations["prometheus.io/port"], String(listen.port));
  const env = (name: string): string | undefined =>
    c.env.find((e) => e.name === name)?.valueFrom?.fieldRef?.fieldPath;
  assert.equal(env("POD_NAME"), "metadata.name");
  assert.equal(env("POD_NAMESPACE"), "metadata.namespace", "the Lease lives in the controller's namespace");

  const rbac = parseAllDocuments(readFileSync(`${dir}rbac.yaml`, "utf8")).map((doc) => doc.toJSON() as Rbac);
  const role = rbac.find((r) => r.kind === "Role");
  assert.equal(role?.metadata.namespace, d.metadata.namespace);
  assert.deepEqual(role?.rules?.[0]?.resourceNames, [opts.leaseName]);
  for (const binding of rbac.filter((r) => r.kind.endsWith("Binding"))) {
    assert.deepEqual(binding.subjects, [
      {
        kind: "ServiceAccount",
        name: d.spec.template.spec.serviceAccountName,
        namespace: d.metadata.namespace,
      },
    ]);
  }
  const sa = read("serviceaccount.yaml") as { metadata: { name: string; namespace: string } };
  assert.deepEqual(sa.metadata, {
    name: d.spec.template.spec.serviceAccountName,
    namespace: d.metadata.namespace,
  });
});

test("Verifies that parseListen reads host:port and refuses anything else", () => {
  assert.deepEqual(parseListen("0.0.0.0:8080"), { host: "0.0.0.0", port: 8080 });
  assert.deepEqual(parseListen("[::1]:0"), { host: "::1", port: 0 });
  assert.deepEqual(parseListen(":9090"), { host: "0.0.0.0", port: 9090 });
  assert.throws(() => parseListen("8080"), /HOST:PORT/);
  assert.throws(() => parseListen("localhost:70000"), /HOST:PORT/);
});
