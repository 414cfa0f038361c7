import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { JobsError } from "./errors.js";
import {
  JOB_LABEL,
  SYSTEM_NAMESPACES,
  WEBHOOK_CONFIGURATION,
  webhookConfiguration,
  webhookTimeoutProblem,
  webhookUrlProblem,
} from "./install.js";

const caPem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

test("Verifies that the registration matches the shipped manifest, with the CA base64-encoded in caBundle", () => {
  const built = webhookConfiguration({
    endpoint: { service: { name: "kubewise-jobs-webhook", namespace: "kubewise-system" } },
    caPem,
  });
  const shipped = parse(
    readFileSync(new URL("../../manifests/jobs/mutatingwebhook.yaml", import.meta.url), "utf8"),
  ) as typeof built;
  const [webhook] = built.webhooks ?? [];
  const [expected] = shipped.webhooks ?? [];
  assert.equal(built.metadata?.name, WEBHOOK_CONFIGURATION);
  assert.equal(built.metadata?.name, shipped.metadata?.name);
  assert.ok(webhook && expected);
  assert.equal(Buffer.from(webhook.clientConfig.caBundle ?? "", "base64").toString("utf8"), caPem);
  assert.deepEqual({ ...webhook.clientConfig, caBundle: "" }, expected.clientConfig);
  for (const key of [
    "name",
    "admissionReviewVersions",
    "sideEffects",
    "failurePolicy",
    "timeoutSeconds",
    "reinvocationPolicy",
    "rules",
    "objectSelector",
    "namespaceSelector",
  ] as const) {
    assert.deepEqual(webhook[key], expected[key], key);
  }
  assert.deepEqual(webhook.objectSelector, { matchLabels: { [JOB_LABEL]: "true" } });
  assert.deepEqual(webhook.namespaceSelector?.matchExpressions?.[0]?.values, [...SYSTEM_NAMESPACES]);
});

test("Verifies that a URL endpoint, named namespaces and a timeout are carried into the webhook", () => {
  const built = webhookConfiguration({
    name: "dev",
    endpoint: { url: "https://127.0.0.1:8443/mutate" },
    caPem,
    namespaces: ["batch", "etl"],
    timeoutSeconds: 2,
  });
  const webhook = built.webhooks?.[0];
  assert.equal(built.metadata?.name, "dev");
  assert.equal(webhook?.clientConfig.url, "https://127.0.0.1:8443/mutate");
  assert.equal(webhook?.clientConfig.service, undefined);
  assert.equal(webhook?.timeoutSeconds, 2);
  assert.deepEqual(webhook?.namespaceSelector, {
    matchExpressions: [{ key: "kubernetes.io/metadata.name", operator: "In", values: ["batch", "etl"] }],
  });
});

test("Verifies that a CA that is not a PEM certificate is refused before anything reaches the API", () => {
  assert.throws(
    () => webhookConfiguration({ endpoint: { url: "https://127.0.0.1/mutate" }, caPem: "LS0tLS1CRUdJTg==" }),
    (err: unknown) => err instanceof JobsError && err.reason === "certificate" && /PEM/.test(err.message),
  );
});

test("Verifies that --timeout must be 1 to 30 seconds and --url an https URL, naming flag, value and what is allowed", () => {
  for (const good of ["1", "5", "30"]) assert.equal(webhookTimeoutProblem("--timeout", good), "");
  for (const bad of ["0", "31", "99", "-1", "2.5", "", " ", "five"]) {
    assert.equal(
      webhookTimeoutProblem("--timeout", bad),
      `--timeout ${JSON.stringify(bad)} is out of range: expected a whole number of seconds from 1 to 30 (the API server's limit)`,
    );
  }
  assert.equal(webhookUrlProblem("--url", "https://127.0.0.1:8443/mutate"), "");
  assert.equal(
    webhookUrlProblem("--url", "http://127.0.0.1:8443/mutate"),
    '--url "http://127.0.0.1:8443/mutate" is not https: the API server calls webhooks over TLS only; expected an https URL, e.g. https://127.0.0.1:8443/mutate',
  );
  assert.match(
    webhookUrlProblem("--url", "127.0.0.1:8443/mutate"),
    /^--url "127\.0\.0\.1:8443\/mutate" is not /,
  );
  assert.equal(
    webhookUrlProblem("--url", "not a url"),
    '--url "not a url" is not a URL: expected an https URL, e.g. https://127.0.0.1:8443/mutate',
  );
});
