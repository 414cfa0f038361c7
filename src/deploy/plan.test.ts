import { test } from "node:test";
import assert from "node:assert/strict";
import type { KubernetesObject } from "../kube/index.js";
import { replicasHandover } from "./plan.js";
import { renderService } from "./render.js";
import { parseServiceSpec } from "./spec.js";

const base = { name: "api", image: "nginx:1.27", ports: [{ name: "http", type: "http", port: 8080 }] };

function live(replicas: number, ownedByKubewise: boolean): KubernetesObject {
  const spec = ownedByKubewise ? { "f:replicas": {}, "f:selector": {} } : { "f:selector": {} };
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: {
      name: "api",
      managedFields: [
        { manager: "kubewise", operation: "Apply", apiVersion: "apps/v1", fieldsV1: { "f:spec": spec } },
      ],
    },
    spec: { replicas },
  } as KubernetesObject;
}

test("Verifies that replicas are handed over only when kubewise owned a fixed count the new render drops, at max(live, HPA min)", () => {
  const autoscaled = renderService(
    parseServiceSpec({ ...base, min_containers: 2, max_containers: 5 }),
  ).manifests;
  const deployment = autoscaled.find((m) => m.kind === "Deployment");
  assert.ok(deployment);
  assert.equal(replicasHandover(deployment, live(3, true), autoscaled), 3);
  assert.equal(replicasHandover(deployment, live(1, true), autoscaled), 2, "raised to the HPA's minimum");
  assert.equal(
    replicasHandover(deployment, live(3, false), autoscaled),
    undefined,
    "the HPA already owns it",
  );
  const fixed = renderService(parseServiceSpec({ ...base, replicas: 3 })).manifests;
  const fixedDeployment = fixed.find((m) => m.kind === "Deployment");
  assert.ok(fixedDeployment);
  assert.equal(
    replicasHandover(fixedDeployment, live(2, true), fixed),
    undefined,
    "the render sets replicas",
  );
});
