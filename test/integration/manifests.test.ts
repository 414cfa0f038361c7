import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import {
  applyObject,
  deleteObject,
  describeObject,
  ignoreNotFound,
  waitForDeleted,
  waitForObject,
  type KubernetesObject,
  type V1CustomResourceDefinition,
  type V1Namespace,
} from "../../src/kube/index.js";
import { testCluster } from "./support/cluster.js";

// Every kustomize base under manifests/ must be accepted by a real API server, as `kubectl apply -k`
// would send it: built with the cluster's own kubectl, then server-side applied with dry-run, so
// admission, defaulting and schema validation all run while nothing is persisted.
//
// Two kinds of object cannot be dry-run alone, because the rest of a base depends on them
// existing: CustomResourceDefinitions (a custom resource of a CRD that does not exist cannot be
// validated) and Namespaces (a dry-run namespace does not exist for the objects in it). Those are
// applied for real first; whatever this test created is deleted afterwards, and waited for, so the
// next base or run can create it again. The namespaces are not rewritten to a test namespace: the
// bases refer to them from cluster-scoped objects too (ClusterRoleBinding subjects, webhook
// services), and a test that rewrote them would no longer check the manifests as shipped.

const manifestsDir = "manifests";
const bases = readdirSync(manifestsDir)
  .filter((d) => existsSync(join(manifestsDir, d, "kustomization.yaml")))
  .sort();

/** build renders a base with the cluster's kubectl (the same kustomize `kubectl apply -k` runs). */
function build(dir: string): KubernetesObject[] {
  const { state } = testCluster();
  const yaml = execFileSync(join(state.binDir, "kubectl"), ["kustomize", dir], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  });
  return parseAllDocuments(yaml)
    .map((d) => d.toJS() as KubernetesObject | null)
    .filter((o): o is KubernetesObject => o !== null);
}

const isCrd = (o: KubernetesObject): boolean =>
  o.kind === "CustomResourceDefinition" && (o.apiVersion ?? "").startsWith("apiextensions.k8s.io/");
const isNamespace = (o: KubernetesObject): boolean => o.kind === "Namespace" && o.apiVersion === "v1";

/** ensureNamespace makes the namespace exist (from the base's own object when it has one). */
async function ensureNamespace(
  t: TestContext,
  name: string,
  fromBase: KubernetesObject | undefined,
): Promise<"existing" | "created"> {
  const { client } = testCluster();
  const target = { apiVersion: "v1", kind: "Namespace", name };
  let existing = await ignoreNotFound(client.core.readNamespace({ name }));
  if (existing?.metadata?.deletionTimestamp) {
    // Left Terminating by an earlier run: objects cannot go into it, so let it finish.
    await waitForDeleted(client, target, { timeoutMs: 120_000 });
    existing = undefined;
  }
  if (existing) return "existing";
  const namespace: V1Namespace = fromBase ?? { apiVersion: "v1", kind: "Namespace", metadata: { name } };
  await applyObject(client, namespace);
  t.after(async () => {
    await deleteObject(client, namespace);
    await waitForDeleted(client, target, { timeoutMs: 120_000 });
  });
  return "created";
}

/** ensureCrd applies a CRD for real and waits until its API is served. */
async function ensureCrd(t: TestContext, crd: V1CustomResourceDefinition): Promise<"created" | "updated"> {
  const { client } = testCluster();
  const name = crd.metadata?.name ?? "";
  const target = { apiVersion: "apiextensions.k8s.io/v1", kind: "CustomResourceDefinition", name };
  const { result } = await applyObject(client, crd);
  if (result === "created") {
    t.after(async () => {
      await deleteObject(client, crd);
      await waitForDeleted(client, target, { timeoutMs: 120_000 });
    });
  }
  await waitForObject<V1CustomResourceDefinition, true>(
    client,
    target,
    (c) =>
      c?.status?.conditions?.some((x) => x.type === "Established" && x.status === "True")
        ? { state: "done", value: true }
        : { state: "waiting" },
    { timeoutMs: 60_000 },
  );
  return result === "created" ? "created" : "updated";
}

test("Verifies that manifests/ holds kustomize bases to check", () => {
  assert.deepEqual(bases, ["agent", "jobs", "swarm"], `bases found: ${bases.join(", ")}`);
});

for (const base of bases) {
  test(`Verifies that every object of manifests/${base} is accepted by the API server (server-side dry-run)`, async (t) => {
    const { client } = testCluster();
    const objects = build(join(manifestsDir, base));
    assert.ok(objects.length > 0, `kubectl kustomize manifests/${base} built nothing`);
    const checked: string[] = [];

    for (const crd of objects.filter(isCrd)) {
      const how = await ensureCrd(t, crd as V1CustomResourceDefinition);
      checked.push(`${describeObject(crd)} (applied for real: ${how})`);
    }
    const namespaceObjects = new Map(objects.filter(isNamespace).map((o) => [o.metadata?.name ?? "", o]));
    const needed = new Set([
      ...namespaceObjects.keys(),
      ...objects.map((o) => o.metadata?.namespace).filter((n): n is string => !!n),
    ]);
    const dryRun: KubernetesObject[] = [];
    for (const name of [...needed].sort()) {
      const fromBase = namespaceObjects.get(name);
      const how = await ensureNamespace(t, name, fromBase);
      if (!fromBase) {
        if (how === "created") t.diagnostic(`namespace ${name} is not in the base; created for the check`);
        continue;
      }
      // An existing namespace is still the base's object to check: dry-run it with the rest.
      if (how === "existing") dryRun.push(fromBase);
      else checked.push(`${describeObject(fromBase)} (applied for real: created)`);
    }
    dryRun.push(...objects.filter((o) => !isCrd(o) && !isNamespace(o)));

    const refused: string[] = [];
    for (const obj of dryRun) {
      try {
        const { object } = await applyObject(client, obj, { dryRun: true });
        assert.equal(object.kind, obj.kind);
        assert.equal(object.metadata?.name, obj.metadata?.name);
        checked.push(`${describeObject(obj)} (dry-run)`);
      } catch (err) {
        refused.push(`${describeObject(obj)}: ${(err as Error).message}`);
      }
    }
    for (const line of checked) t.diagnostic(`accepted ${line}`);
    assert.deepEqual(refused, [], `manifests/${base}: the API server refused:\n${refused.join("\n")}`);
    assert.equal(checked.length, objects.length, "every object of the base was checked");
  });
}
