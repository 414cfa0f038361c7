import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadTarget, parseDuration, renderOutput } from "../cli/deploy.js";
import { DeployError } from "./errors.js";
import type { Plan } from "./plan.js";
import { writePushRecord } from "./push.js";
import { formatPlan, formatRollout, formatStatus } from "./report.js";
import type { RolloutOutcome } from "./rollout.js";

const ref = (kind: string, name: string) => ({ apiVersion: "v1", kind, namespace: "shop", name });

test("Verifies that a plan prints a summary, each object with its field changes, prunes and the exit code", () => {
  const plan: Plan = {
    service: "web",
    namespace: "shop",
    namespaceExists: true,
    changed: true,
    objects: [
      { ref: ref("Service", "web"), action: "unchanged", changes: [], manifest: {} as never },
      {
        ref: ref("Deployment", "web"),
        action: "update",
        changes: [
          { path: "spec.template.spec.containers[web].image", op: "changed", before: "a:1", after: "a:2" },
        ],
        manifest: {} as never,
      },
      { ref: ref("Ingress", "web-1"), action: "create", changes: [], manifest: {} as never },
    ],
    prune: [{ ref: ref("Ingress", "web-0"), live: {} }],
    kept: [{ ref: ref("Ingress", "hand"), why: "kubewise never applied it" }],
  };
  assert.equal(
    formatPlan(plan),
    [
      "service web in namespace shop: 1 to create, 1 to update, 1 to prune, 1 unchanged",
      "= Service/web (unchanged)",
      "~ Deployment/web (update)",
      '    ~ spec.template.spec.containers[web].image: "a:1" -> "a:2"',
      "+ Ingress/web-1 (create)",
      "- Ingress/web-0 (prune: no longer in the spec)",
      "! Ingress/hand left alone: kubewise never applied it",
      "changes pending (exit code 2)",
      "",
    ].join("\n"),
  );
});

test("Verifies that a failed rollout names the failing pods, their reasons, and the rollback", () => {
  const outcome: RolloutOutcome = {
    state: "failed",
    workload: { kind: "Deployment", name: "web" },
    reason: "image-pull",
    message: "pod shop/web-1: container web cannot pull its image (ErrImagePull: not found)",
    pods: [
      {
        name: "web-1",
        phase: "Pending",
        ready: false,
        restarts: 0,
        problem: { reason: "image-pull", message: "pod shop/web-1: container web cannot pull its image" },
      },
      { name: "web-2", phase: "Running", ready: true, restarts: 0 },
    ],
    rollback: { revision: 3, ready: true, message: "rolled back to revision 3" },
  };
  const text = formatRollout(outcome);
  assert.match(text, /^rollout of Deployment\/web failed \(image-pull\): /);
  assert.match(text, /\n {2}web-1 {2}Pending {2}not ready {2}restarts 0 {2}image-pull: /);
  assert.doesNotMatch(text, /web-2/, "healthy pods are not listed as failing");
  assert.match(text, /rolled back to revision 3\n$/);
  const noRollback = formatRollout({ ...outcome, rollback: undefined } as RolloutOutcome);
  assert.match(noRollback, /--rollback-on-failure rolls it back/);
});

test("Verifies that status marks objects the spec asks for but the cluster lacks", () => {
  const text = formatStatus({
    service: "web",
    namespace: "shop",
    objects: [
      { ref: ref("Service", "web"), present: true, detail: "10.0.0.1 ports 80->http", foreign: false },
      { ref: ref("Ingress", "web-1"), present: false, detail: "not applied", foreign: false },
    ],
    pods: [],
  });
  assert.match(text, /Service\/web +present +10\.0\.0\.1 ports 80->http/);
  assert.match(text, /Ingress\/web-1 +MISSING +not applied/);
});

test("Verifies that --timeout takes seconds or durations and refuses the rest", () => {
  assert.equal(parseDuration("300"), 300_000);
  assert.equal(parseDuration("90s"), 90_000);
  assert.equal(parseDuration("5m"), 300_000);
  assert.equal(parseDuration("1m30s"), 90_000);
  assert.equal(parseDuration("1h"), 3_600_000);
  for (const bad of ["", "0", "-1", "5 minutes", "m"]) assert.throws(() => parseDuration(bad), /duration/);
});

test("Verifies that an AUTO image with nothing pushed is refused for apply, and a push record pins it", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "kubewise-target-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, "service.yaml");
  writeFileSync(file, "name: shop\nimage: AUTO\nport: { http: 8080 }\n");
  assert.throws(
    () => loadTarget({ file, var: {} }),
    (err: unknown) =>
      err instanceof DeployError && /nothing is pushed for shop: run `kubewise deploy push/.test(err.message),
  );
  const tagged = loadTarget({ file, var: {}, tag: "v2" });
  assert.match(JSON.stringify(tagged.target.manifests), /localhost:5000\/shop:v2/);
  const digest = `sha256:${"a".repeat(64)}`;
  writePushRecord(
    file,
    {
      registry: "localhost:5000",
      repository: "shop",
      tag: "v1",
      digest,
      image: `localhost:5000/shop@${digest}`,
      format: "oci",
      blobsUploaded: 2,
      blobsSkipped: 0,
      bytesUploaded: 10,
    },
    "shop",
    new Date(0),
  );
  const pinned = loadTarget({ file, var: {}, namespace: "apps" });
  assert.equal(pinned.target.namespace, "apps");
  assert.match(JSON.stringify(pinned.target.manifests), new RegExp(`localhost:5000/shop@${digest}`));
  assert.deepEqual(pinned.warnings, []);
  const elsewhere = renderOutput({ file, var: {}, output: "yaml", registry: "registry.internal:5000" });
  assert.match(
    elsewhere.text,
    /registry\.internal:5000\/shop:latest/,
    "a record for another registry is not used",
  );
});
