import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { request } from "node:https";
import { readFileSync } from "node:fs";
import { X509Certificate } from "node:crypto";
import { parseAppIdPath } from "./appid.js";
import { createServingCertificate, webhookDnsNames, type ServingCertificate } from "./cert.js";
import type { JsonPatchOperation } from "./mutation.js";
import type { SettingsSource, TunedSettings } from "./settings.js";
import { WebhookServer } from "./webhook-server.js";

const reviewBody = readFileSync(
  new URL("./testdata/admission-review-pod-create.json", import.meta.url),
  "utf8",
);

interface Reply {
  status: number;
  body: Record<string, unknown>;
}

function call(
  port: number,
  ca: string | undefined,
  method: string,
  path: string,
  body?: string,
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port,
        method,
        path,
        ca,
        agent: false,
        headers: { "content-type": "application/json" },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            body: JSON.parse(Buffer.concat(chunks).toString("utf8")) as Record<string, unknown>,
          }),
        );
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

let cert: ServingCertificate;
let server: WebhookServer;
let port: number;
let lookup: (namespace: string, appId: string) => Promise<TunedSettings | undefined>;
const source: SettingsSource = { settingsFor: (namespace, appId) => lookup(namespace, appId) };

before(async () => {
  cert = await createServingCertificate({ dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] });
  server = new WebhookServer({
    host: "127.0.0.1",
    port: 0,
    certPem: cert.certPem,
    keyPem: cert.keyPem,
    appIdPath: parseAppIdPath("spec/containers/0/env/[JOBID]"),
    settings: source,
    settingsTimeoutMs: 100,
  });
  port = await server.start();
});

after(async () => {
  await server.stop();
});

test("Verifies that the certificate is a CA-signed serving certificate for the names asked", () => {
  const leaf = new X509Certificate(cert.certPem);
  const ca = new X509Certificate(cert.caPem);
  assert.ok(leaf.verify(ca.publicKey), "signed by the CA");
  assert.equal(leaf.checkIssued(ca), true);
  assert.equal(ca.ca, true);
  assert.equal(leaf.ca, false);
  assert.equal(leaf.checkHost("localhost"), "localhost");
  assert.equal(leaf.checkIP("127.0.0.1"), "127.0.0.1");
  assert.equal(leaf.checkHost("example.com"), undefined);
  assert.deepEqual(webhookDnsNames("kubewise-jobs-webhook", "kubewise"), [
    "kubewise-jobs-webhook",
    "kubewise-jobs-webhook.kubewise",
    "kubewise-jobs-webhook.kubewise.svc",
    "kubewise-jobs-webhook.kubewise.svc.cluster.local",
  ]);
});

test("Verifies that POST /mutate over TLS answers with the patch for the pod's app id", async () => {
  const asked: string[] = [];
  lookup = async (namespace, appId) => {
    asked.push(`${namespace}/${appId}`);
    return { cpu: 0.5, mem: 0.25, resources: "both" };
  };
  const reply = await call(port, cert.caPem, "POST", "/mutate?timeout=5s", reviewBody);
  assert.equal(reply.status, 200);
  assert.deepEqual(asked, ["batch/render-video"], "the settings of the pod's own namespace");
  const response = reply.body.response as { uid: string; allowed: boolean; patchType: string; patch: string };
  assert.equal(reply.body.apiVersion, "admission.k8s.io/v1");
  assert.equal(response.uid, "705ab4f5-6393-11e8-b7cc-42010a800002");
  assert.equal(response.allowed, true);
  assert.equal(response.patchType, "JSONPatch");
  const ops = JSON.parse(Buffer.from(response.patch, "base64").toString("utf8")) as JsonPatchOperation[];
  assert.ok(
    ops.some(
      (op) =>
        op.path === "/spec/containers/0/resources/limits" &&
        JSON.stringify(op.value) === '{"cpu":"500m","memory":"256Mi"}',
    ),
  );
});

test("Verifies that the settings are looked up in the review's namespace, else the pod's, and not at all without one", async () => {
  const asked: string[] = [];
  lookup = async (namespace, appId) => {
    asked.push(`${namespace}/${appId}`);
    return { cpu: 0.5, resources: "both" };
  };
  const review = JSON.parse(reviewBody) as {
    request: { namespace?: string; object: { metadata: { namespace?: string } } };
  };
  review.request.namespace = "team-b";
  review.request.object.metadata.namespace = "";
  await call(port, cert.caPem, "POST", "/mutate", JSON.stringify(review));
  delete review.request.namespace;
  review.request.object.metadata.namespace = "team-c";
  await call(port, cert.caPem, "POST", "/mutate", JSON.stringify(review));
  delete review.request.object.metadata.namespace;
  const reply = await call(port, cert.caPem, "POST", "/mutate", JSON.stringify(review));
  assert.deepEqual(asked, ["team-b/render-video", "team-c/render-video"]);
  const response = reply.body.response as Record<string, unknown>;
  assert.equal(response.allowed, true);
  assert.equal(response.patch, undefined);
});

test("Verifies that a pod is admitted unchanged, with a warning, when the settings lookup fails or hangs", async () => {
  for (const failing of [
    async (): Promise<TunedSettings | undefined> => {
      throw new Error("configmap informer not synced");
    },
    () => new Promise<TunedSettings | undefined>(() => undefined),
  ]) {
    lookup = failing;
    const reply = await call(port, cert.caPem, "POST", "/mutate", reviewBody);
    assert.equal(reply.status, 200);
    const response = reply.body.response as Record<string, unknown>;
    assert.equal(response.allowed, true);
    assert.equal(response.patch, undefined);
    assert.deepEqual(response.warnings, ["kubewise: tuned settings unavailable; pod admitted without them"]);
  }
});

test("Verifies that bad requests, other paths and probes get the right status", async () => {
  assert.equal((await call(port, cert.caPem, "POST", "/mutate", "{not json")).status, 400);
  const notReview = await call(port, cert.caPem, "POST", "/mutate", "{}");
  assert.equal(notReview.status, 400);
  assert.match(String(notReview.body.error), /not an AdmissionReview/);
  assert.equal((await call(port, cert.caPem, "GET", "/mutate")).status, 405);
  assert.equal((await call(port, cert.caPem, "GET", "/nope")).status, 404);
  assert.deepEqual(await call(port, cert.caPem, "GET", "/healthz"), { status: 200, body: { status: "ok" } });
});

test("Verifies that a client that does not trust the CA is refused, and a rotated certificate is served", async () => {
  await assert.rejects(call(port, undefined, "GET", "/healthz"), /self-signed certificate|unable to verify/);
  const next = await createServingCertificate({ dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] });
  server.setCertificate(next.certPem, next.keyPem);
  assert.equal((await call(port, next.caPem, "GET", "/healthz")).status, 200);
  await assert.rejects(
    call(port, cert.caPem, "GET", "/healthz"),
    /self-signed certificate|unable to verify|signature/,
  );
});
