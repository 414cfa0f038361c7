import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { parseAppIdPath } from "./appid.js";
import {
  admissionResponse,
  parseAdmissionReview,
  podPatch,
  pointer,
  REPORT_FINALIZER,
  SETTINGS_ANNOTATION,
  podSettingsIdentity,
  settingsIdentity,
  type AdmissionReview,
  type AdmissionReviewResponse,
  type JsonPatchOperation,
} from "./mutation.js";
import type { TunedSettings } from "./settings.js";

const path = parseAppIdPath("spec/containers/0/env/[JOBID]");

function review(): AdmissionReview {
  const body: unknown = JSON.parse(
    readFileSync(new URL("./testdata/admission-review-pod-create.json", import.meta.url), "utf8"),
  );
  const parsed = parseAdmissionReview(body);
  assert.ok("review" in parsed, "the fixture is a valid AdmissionReview");
  return parsed.review;
}

function settings(partial: Partial<TunedSettings>): TunedSettings {
  return { resources: "both", ...partial };
}

// applyPatch is a small RFC 6902 applier (add, replace, remove) so tests assert the pod the API
// server would get, not the operations.
function applyPatch(doc: unknown, ops: readonly JsonPatchOperation[]): unknown {
  const root = structuredClone(doc) as Record<string, unknown>;
  for (const op of ops) {
    const tokens = op.path
      .split("/")
      .slice(1)
      .map((t) => t.replaceAll("~1", "/").replaceAll("~0", "~"));
    const last = tokens.pop();
    assert.ok(last !== undefined);
    let parent: unknown = root;
    for (const t of tokens) {
      parent = (parent as Record<string, unknown>)[t];
      assert.ok(parent !== undefined && parent !== null, `path ${op.path} must exist up to its last token`);
    }
    if (Array.isArray(parent)) {
      if (op.op === "add" && last === "-") parent.push(op.value);
      else if (op.op === "add") parent.splice(Number(last), 0, op.value);
      else if (op.op === "replace") {
        assert.ok(Number(last) < parent.length, `replace ${op.path} needs an existing element`);
        parent[Number(last)] = op.value;
      } else parent.splice(Number(last), 1);
    } else {
      const obj = parent as Record<string, unknown>;
      if (op.op === "replace") assert.ok(last in obj, `replace ${op.path} needs an existing member`);
      if (op.op === "remove") delete obj[last];
      else obj[last] = op.value;
    }
  }
  return root;
}

interface Container {
  name: string;
  env?: { name: string; value?: string; valueFrom?: unknown }[];
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
}

interface Pod {
  metadata: { labels: Record<string, string>; annotations?: Record<string, string> };
  spec: { containers: Container[] };
}

function podOf(r: AdmissionReview): Pod {
  return r.request.object as Pod;
}

function firstContainer(pod: Pod): Container {
  const [container] = pod.spec.containers;
  assert.ok(container);
  return container;
}

function patchedPod(r: AdmissionReview, response: AdmissionReviewResponse): Pod {
  assert.equal(response.response.patchType, "JSONPatch");
  const ops = JSON.parse(
    Buffer.from(response.response.patch ?? "", "base64").toString("utf8"),
  ) as JsonPatchOperation[];
  return applyPatch(r.request.object, ops) as Pod;
}

test("Verifies that cpu, mem and env are applied to a Job's pod with a base64 JSONPatch", () => {
  const r = review();
  const response = admissionResponse(
    r,
    path,
    settings({ cpu: 0.5, mem: 0.5, env: { THREADS: "4", NEW: "x" }, version: "adjust-3" }),
  );
  assert.equal(response.apiVersion, "admission.k8s.io/v1");
  assert.equal(response.kind, "AdmissionReview");
  assert.equal(response.response.uid, "705ab4f5-6393-11e8-b7cc-42010a800002");
  assert.equal(response.response.allowed, true);
  const pod = patchedPod(r, response);
  const container = firstContainer(pod);
  assert.deepEqual(container.resources, {
    requests: { cpu: "500m", memory: "512Mi", "ephemeral-storage": "1Gi" },
    limits: { cpu: "500m", memory: "512Mi" },
  });
  assert.deepEqual(container.env, [
    { name: "JOBID", value: "render-video" },
    { name: "THREADS", value: "4" },
    { name: "NEW", value: "x" },
  ]);
  assert.deepEqual(JSON.parse(pod.metadata.annotations?.[SETTINGS_ANNOTATION] ?? ""), {
    cpu: 0.5,
    mem: 0.5,
    env: { THREADS: "4", NEW: "x" },
    resources: "both",
    version: "adjust-3",
  });
  assert.equal(pod.metadata.labels["jobs.kubewise.io/job"], "true", "the rest of the pod is untouched");
});

test("Verifies that a pod without resources or env gets both added", () => {
  const r = review();
  const obj = podOf(r);
  delete firstContainer(obj).resources;
  delete firstContainer(obj).env;
  obj.metadata.labels.job = "render-video";
  obj.metadata.annotations = { "example.com/keep": "yes" };
  const labelPath = parseAppIdPath("metadata/labels/job");
  const pod = patchedPod(r, admissionResponse(r, labelPath, settings({ cpu: 2, mem: 1, env: { A: "1" } })));
  assert.deepEqual(firstContainer(pod).resources, {
    requests: { cpu: "2", memory: "1Gi" },
    limits: { cpu: "2", memory: "1Gi" },
  });
  assert.deepEqual(firstContainer(pod).env, [{ name: "A", value: "1" }]);
  assert.equal(pod.metadata.annotations?.["example.com/keep"], "yes");
  assert.ok(pod.metadata.annotations?.[SETTINGS_ANNOTATION]);
});

test("Verifies that setting only limits lowers a request above the new limit", () => {
  const r = review();
  const pod = patchedPod(r, admissionResponse(r, path, settings({ cpu: 0.25, resources: "limits" })));
  assert.deepEqual(firstContainer(pod).resources, {
    requests: { cpu: "250m", memory: "1Gi", "ephemeral-storage": "1Gi" },
    limits: { cpu: "250m" },
  });
});

test("Verifies that setting only requests raises a limit below the new request, and keeps a higher one", () => {
  const r = review();
  firstContainer(podOf(r)).resources = {
    requests: { cpu: "100m", memory: "256Mi" },
    limits: { cpu: "4", memory: "1Gi" },
  };
  const pod = patchedPod(
    r,
    admissionResponse(r, path, settings({ cpu: 0.5, mem: 2, resources: "requests" })),
  );
  assert.deepEqual(firstContainer(pod).resources, {
    requests: { cpu: "500m", memory: "2Gi" },
    limits: { cpu: "4", memory: "2Gi" },
  });
});

test("Verifies that a pod that already has the values is only stamped with the settings, and one already stamped is not patched", () => {
  const r = review();
  firstContainer(podOf(r)).resources = {
    requests: { cpu: "500m" },
    limits: { cpu: "500m" },
  };
  const tuned = settings({ cpu: 0.5, env: { JOBID: "render-video" }, version: "adjust-7" });
  const response = admissionResponse(r, path, tuned);
  const ops = JSON.parse(Buffer.from(response.response.patch ?? "", "base64").toString("utf8")) as {
    path: string;
  }[];
  assert.deepEqual(
    ops.map((op) => op.path),
    ["/metadata/annotations"],
    "only the annotation (the pod had none)",
  );
  const pod = patchedPod(r, response);
  assert.deepEqual(firstContainer(pod), firstContainer(podOf(r)), "the container is untouched");
  assert.equal(podSettingsIdentity(pod.metadata.annotations), "adjust-7");

  const stamped = review();
  Object.assign(podOf(stamped), pod);
  assert.deepEqual(admissionResponse(stamped, path, tuned).response, {
    uid: stamped.request.uid,
    allowed: true,
  });
});

test("Verifies that settings are identified by their version, else by what the webhook stamps, and a pod without the stamp by the empty string", () => {
  const versioned = settings({ cpu: 1, version: "adjust-2026-11-23T10:00:00.000Z" });
  assert.equal(settingsIdentity(versioned), "adjust-2026-11-23T10:00:00.000Z");
  assert.equal(settingsIdentity(undefined), "");
  const unversioned = settings({ cpu: 1, env: { THREADS: "2" } });
  const r = review();
  const pod = patchedPod(r, admissionResponse(r, path, unversioned));
  assert.equal(podSettingsIdentity(pod.metadata.annotations), settingsIdentity(unversioned));
  assert.notEqual(
    settingsIdentity(unversioned),
    settingsIdentity(settings({ cpu: 1, env: { THREADS: "4" } })),
  );
  assert.equal(podSettingsIdentity(undefined), "");
  assert.equal(podSettingsIdentity({ other: "x" }), "");
  assert.equal(podSettingsIdentity({ [SETTINGS_ANNOTATION]: "not json" }), "not json");
});

test("Verifies that non-job pods, other operations, other kinds and missing settings pass unchanged", () => {
  const s = settings({ cpu: 1 });
  const noJobId = review();
  firstContainer(podOf(noJobId)).env = [{ name: "JOBID", value: "" }];
  const update = review();
  update.request.operation = "UPDATE";
  const other = review();
  other.request.kind = { group: "batch", version: "v1", kind: "Job" };
  for (const [what, r, st] of [
    ["empty JOBID", noJobId, s],
    ["UPDATE", update, s],
    ["a Job", other, s],
    ["no settings", review(), undefined],
  ] as const) {
    const response = admissionResponse(r, path, st);
    assert.deepEqual(response.response, { uid: r.request.uid, allowed: true }, what);
  }
});

test("Verifies that a missing container gives a warning and no patch", () => {
  const result = podPatch({ spec: { containers: [] } }, 2, settings({ cpu: 1 }));
  assert.deepEqual(result.patch, []);
  assert.match(result.warning ?? "", /container 2 not found/);
});

test("Verifies that annotation keys are escaped as JSON Pointer tokens", () => {
  assert.equal(pointer("jobs.kubewise.io/settings"), "jobs.kubewise.io~1settings");
  assert.equal(pointer("a~b/c"), "a~0b~1c");
  const result = podPatch(
    { metadata: { annotations: {} }, spec: { containers: [{ name: "c" }] } },
    0,
    settings({ env: { X: "1" } }),
  );
  assert.deepEqual(result.patch.at(-1), {
    op: "add",
    path: "/metadata/annotations/jobs.kubewise.io~1settings",
    value: '{"env":{"X":"1"},"resources":"both"}',
  });
});

test("Verifies that malformed reviews are described for a 400 answer", () => {
  assert.match(
    String((parseAdmissionReview({}) as { problem: string }).problem),
    /^not an AdmissionReview: /,
  );
  const wrongVersion = parseAdmissionReview({ apiVersion: "v1", kind: "AdmissionReview", request: {} });
  assert.match((wrongVersion as { problem: string }).problem, /apiVersion: must be admission\.k8s\.io\/v1/);
  const noUid = parseAdmissionReview({
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: { kind: { group: "", version: "v1", kind: "Pod" }, operation: "CREATE" },
  });
  assert.match((noUid as { problem: string }).problem, /request\.uid/);
});

test("Verifies that with reportFinalizer every job pod gets the report finalizer once, with or without settings, and other pods do not", () => {
  const bare = review();
  const held = patchedPod(bare, admissionResponse(bare, path, undefined, { reportFinalizer: true }));
  assert.deepEqual((held as { metadata: { finalizers?: string[] } }).metadata.finalizers, [REPORT_FINALIZER]);

  const withOthers = review();
  (podOf(withOthers) as { metadata: Record<string, unknown> }).metadata.finalizers = ["example.com/keep"];
  const tuned = patchedPod(
    withOthers,
    admissionResponse(withOthers, path, settings({ cpu: 1 }), { reportFinalizer: true }),
  );
  assert.deepEqual((tuned as { metadata: { finalizers?: string[] } }).metadata.finalizers, [
    "example.com/keep",
    REPORT_FINALIZER,
  ]);
  assert.equal(firstContainer(tuned).resources?.limits?.cpu, "1", "the settings are applied as well");

  const already = review();
  (podOf(already) as { metadata: Record<string, unknown> }).metadata.finalizers = [REPORT_FINALIZER];
  assert.equal(
    admissionResponse(already, path, undefined, { reportFinalizer: true }).response.patch,
    undefined,
  );

  const notJob = review();
  firstContainer(podOf(notJob)).env = [];
  assert.equal(
    admissionResponse(notJob, path, undefined, { reportFinalizer: true }).response.patch,
    undefined,
  );
  const off = review();
  assert.equal(admissionResponse(off, path, undefined).response.patch, undefined, "off by default");
});
