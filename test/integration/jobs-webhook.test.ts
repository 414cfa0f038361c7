/**
 * The jobs admission webhook on the real API server: registered with a generated CA and a URL on
 * 127.0.0.1 (the embedded kube-apiserver runs on this machine), it applies to each new job pod
 * the tuned settings the servo's adjust wrote to the settings ConfigMap of the pod's own
 * namespace (two namespaces with the same app id each get their own; a namespace without the
 * ConfigMap gets none), and with the webhook down pods are admitted unchanged (failurePolicy
 * Ignore). Once in-process, once through the CLI (`jobs cert`, `jobs install-webhook`,
 * `jobs webhook` with its default, every namespace's ConfigMap).
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  ConfigMapSettings,
  DEFAULT_APP_ID_PATH,
  JOB_LABEL,
  SETTINGS_ANNOTATION,
  SETTINGS_CONFIGMAP,
  WebhookServer,
  createServingCertificate,
  parseAppIdPath,
  registerWebhook,
  saveTunedSettings,
  unregisterWebhook,
  type TunedSettings,
} from "../../src/jobs/index.js";
import { ignoreNotFound, type V1Container, type V1Pod } from "../../src/kube/index.js";
import { testCluster, testNamespace } from "./support/cluster.js";
import { freePort } from "./support/prometheus.js";

const client = () => testCluster().client;

function jobPod(namespace: string, name: string, appId: string, labelled = true): V1Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace, labels: labelled ? { [JOB_LABEL]: "true" } : {} },
    spec: {
      restartPolicy: "Never",
      containers: [
        {
          name: "main",
          image: "example/job:1",
          env: [
            { name: "JOBID", value: appId },
            { name: "THREADS", value: "1" },
          ],
          resources: { requests: { cpu: "100m", memory: "128Mi" }, limits: { cpu: "200m", memory: "256Mi" } },
        },
      ],
    },
  };
}

const container = (pod: V1Pod): V1Container => pod.spec?.containers[0] as V1Container;
const env = (pod: V1Pod): Record<string, string | undefined> =>
  Object.fromEntries((container(pod).env ?? []).map((e) => [e.name, e.value]));

/** dryRun creates the pod with dryRun=All: the API server runs admission, so webhooks too, and stores nothing. */
async function dryRun(pod: V1Pod): Promise<V1Pod> {
  return client().core.createNamespacedPod({
    namespace: pod.metadata?.namespace ?? "",
    body: pod,
    dryRun: "All",
  });
}

/**
 * waitMutated dry-runs `pod` until the API server hands back the cpu limit `cpu`: the API server
 * picks up a new webhook configuration, and the webhook a new ConfigMap, a moment after the write.
 */
async function waitMutated(pod: V1Pod, cpu: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: string | undefined;
  for (;;) {
    last = String(container(await dryRun(pod)).resources?.limits?.cpu);
    if (last === cpu) return;
    if (Date.now() > deadline) throw new Error(`pods still admitted with cpu limit ${last}, wanted ${cpu}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function create(pod: V1Pod): Promise<V1Pod> {
  return client().core.createNamespacedPod({ namespace: pod.metadata?.namespace ?? "", body: pod });
}

const tuned: TunedSettings = {
  cpu: 0.5,
  mem: 0.75,
  env: { THREADS: "4" },
  resources: "both",
  version: "adjust-1",
};

function assertTuned(pod: V1Pod, cpu: string): void {
  const resources = container(pod).resources;
  assert.equal(resources?.requests?.cpu, cpu);
  assert.equal(resources?.limits?.cpu, cpu);
  assert.equal(resources?.requests?.memory, "768Mi");
  assert.equal(resources?.limits?.memory, "768Mi");
  assert.equal(env(pod).THREADS, "4");
  assert.equal(env(pod).JOBID, "render");
  assert.notEqual(pod.metadata?.annotations?.[SETTINGS_ANNOTATION], undefined);
}

function assertUntouched(pod: V1Pod): void {
  const resources = container(pod).resources;
  assert.equal(resources?.requests?.cpu, "100m");
  assert.equal(resources?.limits?.cpu, "200m");
  assert.equal(env(pod).THREADS, "1");
  assert.equal(pod.metadata?.annotations?.[SETTINGS_ANNOTATION], undefined);
}

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), "kubewise-webhook-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test("Verifies that the registered webhook applies the tuned cpu, mem and env of a job pod's app id, and that pods are admitted unchanged when it is down", async (t) => {
  const ns = await testNamespace(t, "jobs-wh");
  const cert = await createServingCertificate({ dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] });
  const settings = new ConfigMapSettings({ client: client() });
  await settings.start();
  t.after(() => settings.stop());
  const server = new WebhookServer({
    port: 0,
    certPem: cert.certPem,
    keyPem: cert.keyPem,
    appIdPath: parseAppIdPath(DEFAULT_APP_ID_PATH),
    settings,
  });
  const port = await server.start();
  t.after(() => server.stop());
  const name = `kubewise-jobs-${ns}`;
  const registration = {
    name,
    endpoint: { url: `https://127.0.0.1:${port}/mutate` },
    caPem: cert.caPem,
    namespaces: [ns],
  };
  assert.equal(await registerWebhook(client(), registration), "created");
  t.after(() => unregisterWebhook(client(), name));
  assert.equal(
    await registerWebhook(client(), registration),
    "unchanged",
    "registering again changes nothing",
  );

  assert.equal(await saveTunedSettings(client(), ns, "render", tuned), "created");
  assert.equal(await saveTunedSettings(client(), ns, "other", { cpu: 1, resources: "limits" }), "updated");
  assert.equal(await saveTunedSettings(client(), ns, "render", tuned), "unchanged");
  await waitMutated(jobPod(ns, "probe", "render"), "500m");

  assertTuned(await create(jobPod(ns, "render-1", "render")), "500m");
  assertUntouched(await create(jobPod(ns, "unlabelled", "render", false)));
  assertUntouched(await create(jobPod(ns, "untuned", "no-settings")));

  // A new adjust reaches the next pod through the ConfigMap watch.
  await saveTunedSettings(client(), ns, "render", { ...tuned, cpu: 1.25, version: "adjust-2" });
  await waitMutated(jobPod(ns, "probe", "render"), "1250m");
  const second = await create(jobPod(ns, "render-2", "render"));
  assertTuned(second, "1250m");
  assert.match(second.metadata?.annotations?.[SETTINGS_ANNOTATION] ?? "", /adjust-2/);

  await server.stop();
  assertUntouched(await create(jobPod(ns, "render-down", "render")));
});

test("Verifies that two namespaces with the same app id each get their own namespace's settings, and a namespace without the ConfigMap gets none", async (t) => {
  const [first, second, bare] = await Promise.all([
    testNamespace(t, "jobs-wh-a"),
    testNamespace(t, "jobs-wh-b"),
    testNamespace(t, "jobs-wh-none"),
  ]);
  const cert = await createServingCertificate({ dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] });
  const settings = new ConfigMapSettings({ client: client() });
  await settings.start();
  t.after(() => settings.stop());
  const server = new WebhookServer({
    port: 0,
    certPem: cert.certPem,
    keyPem: cert.keyPem,
    appIdPath: parseAppIdPath(DEFAULT_APP_ID_PATH),
    settings,
  });
  const port = await server.start();
  t.after(() => server.stop());
  const name = `kubewise-jobs-${first}`;
  await registerWebhook(client(), {
    name,
    endpoint: { url: `https://127.0.0.1:${port}/mutate` },
    caPem: cert.caPem,
    namespaces: [first, second, bare],
  });
  t.after(() => unregisterWebhook(client(), name));

  await saveTunedSettings(client(), first, "render", tuned);
  await saveTunedSettings(client(), second, "render", { ...tuned, cpu: 1.5, version: "adjust-b" });
  await waitMutated(jobPod(first, "probe", "render"), "500m");
  await waitMutated(jobPod(second, "probe", "render"), "1500m");

  assertTuned(await create(jobPod(first, "render-1", "render")), "500m");
  const other = await create(jobPod(second, "render-1", "render"));
  assertTuned(other, "1500m");
  assert.match(other.metadata?.annotations?.[SETTINGS_ANNOTATION] ?? "", /adjust-b/);
  // The webhook answers for that namespace too (it is registered there), with nothing to apply.
  assertUntouched(await create(jobPod(bare, "render-1", "render")));

  // Deleting one namespace's ConfigMap takes its settings away, and only its.
  await client().core.deleteNamespacedConfigMap({ namespace: second, name: SETTINGS_CONFIGMAP });
  await waitMutated(jobPod(second, "probe", "render"), "200m");
  assertUntouched(await create(jobPod(second, "render-2", "render")));
  assertTuned(await create(jobPod(first, "render-2", "render")), "500m");
});

interface CliRun {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

function runCli(args: string[]): CliRun {
  let output = "";
  const child = spawn(
    process.execPath,
    ["--import", "tsx", "src/cli/main.ts", "--kubeconfig", testCluster().kubeconfig, ...args],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  child.stdout?.on("data", (b: Buffer) => (output += b.toString()));
  child.stderr?.on("data", (b: Buffer) => (output += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, output: () => output, exited };
}

async function runToEnd(args: string[]): Promise<string> {
  const run = runCli(args);
  const code = await run.exited;
  assert.equal(code, 0, `kubewise ${args.join(" ")}:\n${run.output()}`);
  return run.output();
}

/** results reads the `result` field of the "webhook registered" log lines. */
function results(output: string): string[] {
  return output
    .split("\n")
    .filter((line) => line.includes('"webhook registered"'))
    .map((line) => (JSON.parse(line) as { result: string }).result);
}

test("Verifies that `jobs cert`, `jobs install-webhook` and `jobs webhook` (every namespace's settings) set the webhook up end to end", async (t) => {
  const ns = await testNamespace(t, "jobs-wh");
  const dir = tempDir(t);
  await runToEnd(["jobs", "cert", "--ip", "127.0.0.1", "--out-dir", dir]);
  const port = await freePort();
  const name = `kubewise-jobs-cli-${ns}`;
  const install = [
    "jobs",
    "install-webhook",
    "--ca-file",
    join(dir, "ca.crt"),
    "--url",
    `https://127.0.0.1:${port}/mutate`,
    "--only-namespace",
    ns,
    "--name",
    name,
  ];
  t.after(() => unregisterWebhook(client(), name));
  assert.deepEqual(results(await runToEnd(install)), ["created"]);
  assert.deepEqual(results(await runToEnd(install)), ["unchanged"]);
  const registered = await ignoreNotFound(client().admission.readMutatingWebhookConfiguration({ name }));
  const webhook = registered?.webhooks?.[0];
  assert.equal(webhook?.failurePolicy, "Ignore");
  assert.equal(webhook?.clientConfig.url, `https://127.0.0.1:${port}/mutate`);
  assert.equal(
    Buffer.from(webhook?.clientConfig.caBundle ?? "", "base64").toString("utf8"),
    readFileSync(join(dir, "ca.crt"), "utf8"),
  );

  await saveTunedSettings(client(), ns, "render", tuned);
  const webhookArgs = (...more: string[]): string[] => [
    "jobs",
    "webhook",
    "--listen",
    `127.0.0.1:${port}`,
    "--cert-file",
    join(dir, "tls.crt"),
    "--key-file",
    join(dir, "tls.key"),
    ...more,
  ];
  const server = runCli(webhookArgs());
  t.after(() => server.child.kill("SIGKILL"));
  await waitMutated(jobPod(ns, "probe", "render"), "500m").catch((err: Error) => {
    throw new Error(`${err.message}\n${server.output()}`);
  });
  assertTuned(await create(jobPod(ns, "render-1", "render")), "500m");

  server.child.kill("SIGTERM");
  assert.equal(await server.exited, 0, server.output());
  assertUntouched(await create(jobPod(ns, "render-down", "render")));

  // --only-namespace follows that namespace's ConfigMap alone.
  const only = runCli(webhookArgs("--only-namespace", ns));
  t.after(() => only.child.kill("SIGKILL"));
  await waitMutated(jobPod(ns, "probe", "render"), "500m").catch((err: Error) => {
    throw new Error(`${err.message}\n${only.output()}`);
  });
  only.child.kill("SIGTERM");
  assert.equal(await only.exited, 0, only.output());

  const refused: [string[], RegExp][] = [
    [["--settings-namespace", ns], /--settings-namespace was removed: .* use --only-namespace/],
    [
      ["--only-namespace", ns, "--settings-file", join(dir, "settings.yaml")],
      /--settings-file or --only-namespace, not both/,
    ],
    [["--only-namespace", "Not_A_Namespace"], /"Not_A_Namespace" is not a namespace name/],
  ];
  for (const [flags, message] of refused) {
    const run = runCli(webhookArgs(...flags));
    assert.notEqual(await run.exited, 0, `kubewise jobs webhook ${flags.join(" ")} was not refused`);
    assert.match(run.output(), message);
  }
});
