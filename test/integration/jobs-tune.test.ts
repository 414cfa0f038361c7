/**
 * `jobs tune` end to end on the embedded cluster: a servo with the JobSettingsConnector and the
 * `jobs` measure connector, driven by the in-process local optimizer, while Jobs of the tuned app
 * id keep arriving. ADJUST writes the settings ConfigMap of the jobs' namespace, the admission
 * webhook (in-process, following every namespace's settings ConfigMap as `jobs webhook` does by
 * default, registered at a 127.0.0.1 URL) applies them to the next job pods, KWOK runs those pods, and
 * MEASURE reports their run times. Then the same through the CLI, `kubewise jobs tune -c FILE`.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import {
  ConfigMapSettings,
  DEFAULT_APP_ID_PATH,
  JOB_LABEL,
  SETTINGS_ANNOTATION,
  SETTINGS_CONFIGMAP,
  SETTINGS_KEY,
  WebhookServer,
  jobsTuneConnectors,
  createServingCertificate,
  parseAppIdPath,
  parseJobsTuneConfig,
  parseSettingsDocument,
  podSettingsIdentity,
  registerWebhook,
  unregisterWebhook,
  type TunedSettings,
} from "../../src/jobs/index.js";
import type { V1Container, V1Pod } from "../../src/kube/index.js";
import { parseCpu, parseMemoryGiB } from "../../src/kube/quantity.js";
import {
  InProcessTransport,
  LocalOptimizer,
  Servo,
  TrialStore,
  stateValues,
  type AdjustConnector,
  type MeasureConnector,
  type Measurement,
} from "../../src/servo/index.js";
import { testCluster, testNamespace } from "./support/cluster.js";

const client = () => testCluster().client;
const APP = "render-video";

/** Template resources and env off the tuning grid, so a tuned pod is told apart from an untouched one. */
const UNTUNED = { cpu: "100m", memory: "128Mi", threads: "1" };

const container = (pod: V1Pod): V1Container => pod.spec?.containers[0] as V1Container;
const envOf = (pod: V1Pod, name: string): string | undefined =>
  container(pod).env?.find((e) => e.name === name)?.value;

function jobPodTemplate(namespace: string, name: string): V1Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name,
      namespace,
      labels: { [JOB_LABEL]: "true" },
      annotations: { "kubewise.dev/simulated-runtime": "1s" },
    },
    spec: {
      restartPolicy: "Never",
      containers: [
        {
          name: "main",
          image: "example/render:1",
          env: [
            { name: "JOBID", value: APP },
            { name: "THREADS", value: UNTUNED.threads },
          ],
          resources: {
            requests: { cpu: UNTUNED.cpu, memory: UNTUNED.memory },
            limits: { cpu: UNTUNED.cpu, memory: UNTUNED.memory },
          },
        },
      ],
    },
  };
}

/** JobFeeder creates a Job of the app id every intervalMs until stopped, recording when each was created. */
class JobFeeder {
  readonly created: { name: string; at: number }[] = [];
  private stopped = false;
  private readonly done: Promise<void>;
  private error: unknown;

  constructor(
    private readonly namespace: string,
    private readonly intervalMs: number,
  ) {
    this.done = this.loop();
  }

  private async loop(): Promise<void> {
    for (let n = 1; !this.stopped; n++) {
      const name = `render-${n}`;
      const at = Date.now();
      const pod = jobPodTemplate(this.namespace, name);
      try {
        await client().batch.createNamespacedJob({
          namespace: this.namespace,
          body: {
            metadata: { name },
            spec: {
              backoffLimit: 0,
              template: { metadata: pod.metadata, spec: pod.spec },
            },
          },
        });
        this.created.push({ name, at });
      } catch (err) {
        this.error = err;
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, this.intervalMs));
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
    if (this.error !== undefined) throw this.error;
  }
}

/** TunedValues are the values an adjust asked for, as the job pods should carry them. */
interface TunedValues {
  cpu: number;
  mem: number;
  threads: string;
}

function assertTunedPod(pod: V1Pod, tuned: TunedValues, what: string): void {
  const { requests = {}, limits = {} } = container(pod).resources ?? {};
  assert.equal(parseCpu(requests.cpu ?? "0"), tuned.cpu, what);
  assert.equal(parseCpu(limits.cpu ?? "0"), tuned.cpu, what);
  assert.equal(parseMemoryGiB(requests.memory ?? "0"), tuned.mem, what);
  assert.equal(parseMemoryGiB(limits.memory ?? "0"), tuned.mem, what);
  assert.equal(envOf(pod, "THREADS"), tuned.threads, what);
  assert.notEqual(pod.metadata?.annotations?.[SETTINGS_ANNOTATION], undefined, what);
}

function assertMeasured(m: Measurement): void {
  const scalar = (name: string): number => {
    const reading = m.metrics[name];
    return reading !== undefined && "value" in reading ? Number(reading.value) : Number.NaN;
  };
  assert.ok(scalar("job_count") >= 2, JSON.stringify(m));
  assert.ok(scalar("duration") > 0, JSON.stringify(m));
  assert.ok(scalar("duration_p90") >= scalar("duration_p50"), JSON.stringify(m));
}

/**
 * assertMeasuredRuns checks that each measurement counted only the runs made with the settings
 * current then: the baseline's pods untouched, the trial's stamped with the adjust's version and
 * carrying its values.
 */
async function assertMeasuredRuns(
  namespace: string,
  measurements: Measurement[],
  tuned: TunedValues,
  version: string,
): Promise<void> {
  const [baseline, trial] = measurements as [Measurement, Measurement];
  const pods = await client().core.listNamespacedPod({ namespace });
  const byUid = new Map(pods.items.map((p) => [p.metadata?.uid ?? "", p]));
  const measuredPods = (m: Measurement): V1Pod[] =>
    (m.annotations?.runs ?? "").split(",").map((uid) => {
      const pod = byUid.get(uid);
      assert.ok(pod, `measured run ${uid} is a pod of the namespace`);
      return pod;
    });
  assert.equal(baseline.annotations?.tuned_settings, "");
  for (const pod of measuredPods(baseline)) {
    const name = pod.metadata?.name;
    assert.equal(pod.metadata?.annotations?.[SETTINGS_ANNOTATION], undefined, name);
    assert.equal(container(pod).resources?.limits?.cpu, UNTUNED.cpu, name);
  }
  assert.equal(trial.annotations?.tuned_settings, version);
  for (const pod of measuredPods(trial)) {
    assertTunedPod(pod, tuned, `measured pod ${pod.metadata?.name ?? ""}`);
    assert.equal(podSettingsIdentity(pod.metadata?.annotations), version);
  }
}

/** savedSettings reads the app's entry of the settings ConfigMap. */
async function savedSettings(namespace: string): Promise<TunedSettings | undefined> {
  const cm = await client().core.readNamespacedConfigMap({ namespace, name: SETTINGS_CONFIGMAP });
  return parseSettingsDocument(cm.data?.[SETTINGS_KEY] ?? "").get(APP);
}

async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/**
 * startWebhook serves the admission webhook in-process as `jobs webhook` does by default,
 * following the settings ConfigMaps of every namespace (so the one ADJUST writes in the jobs'
 * namespace too), and registers it for the namespace.
 */
async function startWebhook(t: TestContext, ns: string): Promise<void> {
  const cert = await createServingCertificate({ dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] });
  const followed = new ConfigMapSettings({ client: client() });
  await followed.start();
  t.after(() => followed.stop());
  const server = new WebhookServer({
    port: 0,
    certPem: cert.certPem,
    keyPem: cert.keyPem,
    appIdPath: parseAppIdPath(DEFAULT_APP_ID_PATH),
    settings: followed,
  });
  const port = await server.start();
  t.after(() => server.stop());
  const webhookName = `kubewise-jobs-${ns}`;
  await registerWebhook(client(), {
    name: webhookName,
    endpoint: { url: `https://127.0.0.1:${port}/mutate` },
    caPem: cert.caPem,
    namespaces: [ns],
  });
  t.after(() => unregisterWebhook(client(), webhookName));
}

test("Verifies that `jobs tune` closes the loop on batch jobs: ADJUST writes the settings ConfigMap, the webhook applies them to the next job pods, and MEASURE reports those runs", async (t) => {
  const ns = await testNamespace(t, "jobs-tune");

  await startWebhook(t, ns);

  const config = parseJobsTuneConfig(
    {
      namespace: ns,
      app_id: APP,
      settings: {
        cpu: { min: 0.25, max: 1, step: 0.25, default: 1 },
        mem: { min: 0.25, max: 1, step: 0.25, default: 0.5 },
      },
      env: { THREADS: { type: "range", min: 2, max: 8, step: 1, default: 4 } },
      resources: "both",
      measure: { count: 2 },
      optimizer: {
        study: "jobs-tune",
        db: ":memory:",
        objective: "metrics.duration",
        direction: "minimize",
        max_trials: 2,
        apply_best: false,
        idle_sleep: 1,
        // No warmup: the job pods created before the adjust finish inside the window, and the
        // measurement must leave them out by their settings stamp.
        measure: { duration: 40, warmup: 0 },
      },
    },
    "jobs-tune test config",
  );
  assert.ok(config.optimizer);

  const { adjuster: connector, measurer: measure } = jobsTuneConnectors(client(), config);
  const adjusts: { values: Record<string, number | string>; startedAt: number }[] = [];
  const recordingAdjuster: AdjustConnector = {
    name: connector.name,
    describe: (signal) => connector.describe(signal),
    adjust: async (param, progress, signal) => {
      const startedAt = Date.now();
      const outcome = await connector.adjust(param, progress, signal);
      adjusts.push({ values: stateValues(param.state)[APP] ?? {}, startedAt });
      return outcome;
    },
  };
  const measurements: Measurement[] = [];
  const recordingMeasurer: MeasureConnector = {
    name: measure.name,
    describeMetrics: () => measure.describeMetrics(),
    measure: async (param, progress, signal) => {
      const result = await measure.measure(param, progress, signal);
      measurements.push(result);
      return result;
    },
  };

  const feeder = new JobFeeder(ns, 500);
  let feederStopped = false;
  t.after(async () => {
    if (!feederStopped) await feeder.stop().catch(() => undefined);
  });

  const store = TrialStore.open(":memory:");
  t.after(() => store.close());
  const optimizer = new LocalOptimizer({ config: config.optimizer, store });
  const servo = new Servo({
    adjusters: [recordingAdjuster],
    measurer: recordingMeasurer,
    transport: new InProcessTransport(optimizer),
    maxSleepSeconds: 0,
  });
  const run = await servo.run(
    AbortSignal.timeout(50_000),
    (last) => last.cmd === "SLEEP" && optimizer.summary().done !== undefined,
  );
  assert.equal(run.reason, "done", "the study ended within the time limit");
  const summary = optimizer.summary();
  assert.equal(summary.trials, 2, JSON.stringify(summary));

  // The baseline trial is measured without an adjust; the second trial adjusts once.
  assert.equal(adjusts.length, 1, JSON.stringify(adjusts));
  const adjust = adjusts[0] as (typeof adjusts)[number];
  const tuned: TunedValues = {
    cpu: Number(adjust.values.cpu),
    mem: Number(adjust.values.mem),
    threads: String(adjust.values.THREADS),
  };
  assert.ok(Number.isFinite(tuned.cpu) && Number.isFinite(tuned.mem), JSON.stringify(adjust.values));

  // After ADJUST the ConfigMap holds the values, and DESCRIBE reports them.
  const saved = await savedSettings(ns);
  assert.deepEqual(
    { cpu: saved?.cpu, mem: saved?.mem, env: saved?.env, resources: saved?.resources },
    { cpu: tuned.cpu, mem: tuned.mem, env: { THREADS: tuned.threads }, resources: "both" },
  );
  const described = Object.entries((await connector.describe())[APP]?.settings ?? {});
  assert.deepEqual(Object.fromEntries(described.map(([name, setting]) => [name, setting.value])), {
    cpu: tuned.cpu,
    mem: tuned.mem,
    THREADS: Number(tuned.threads),
  });

  // Each MEASURE counted at least two runs, with their durations, and only runs made with the
  // settings current then.
  assert.equal(measurements.length, 2);
  measurements.forEach(assertMeasured);
  assert.ok(saved?.version, "the adjust wrote a version");
  await assertMeasuredRuns(ns, measurements, tuned, saved.version);

  // Once the webhook serves the new settings, every job pod created afterwards carries them.
  const probe = jobPodTemplate(ns, "probe");
  await eventually("the webhook to apply the adjusted settings", async () => {
    const pod = await client().core.createNamespacedPod({ namespace: ns, body: probe, dryRun: "All" });
    const limit = container(pod).resources?.limits?.cpu;
    return limit !== undefined && parseCpu(limit) === tuned.cpu ? true : undefined;
  });
  const seenAt = Date.now();
  const podsOf = async (): Promise<Map<string, V1Pod>> => {
    const pods = await client().core.listNamespacedPod({ namespace: ns });
    return new Map(pods.items.map((p) => [p.metadata?.labels?.["job-name"] ?? "", p]));
  };
  const after = await eventually("two job pods created after the webhook took the settings", async () => {
    const pods = await podsOf();
    const later = feeder.created.filter((j) => j.at > seenAt && pods.has(j.name));
    return later.length >= 2 ? later : undefined;
  });
  feederStopped = true;
  await feeder.stop();
  const pods = await podsOf();
  for (const job of after) assertTunedPod(pods.get(job.name) as V1Pod, tuned, job.name);
});

test("Verifies that `kubewise jobs tune -c FILE` runs the local optimizer's study over the job runs, writes the settings ConfigMap and prints the study summary", async (t) => {
  const ns = await testNamespace(t, "jobs-tune");
  const dir = mkdtempSync(join(tmpdir(), "kubewise-jobs-tune-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, "tune.yaml");
  writeFileSync(
    file,
    stringify({
      namespace: ns,
      app_id: APP,
      settings: { cpu: { min: 0.25, max: 1, step: 0.25, default: 1 } },
      env: { THREADS: { type: "enum", values: ["2", "4", "8"], default: "4" } },
      resources: "limits",
      measure: { count: 2 },
      optimizer: {
        study: "cli",
        db: join(dir, "optimizer.db"),
        objective: "metrics.duration",
        direction: "minimize",
        max_trials: 2,
        apply_best: false,
        idle_sleep: 1,
        measure: { duration: 40, warmup: 0 },
      },
    }),
  );
  const feeder = new JobFeeder(ns, 500);
  t.after(() => feeder.stop().catch(() => undefined));

  let stdout = "";
  let stderr = "";
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      "src/cli/main.ts",
      "--kubeconfig",
      testCluster().kubeconfig,
      "jobs",
      "tune",
      "-c",
      file,
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  t.after(() => child.kill("SIGKILL"));
  child.stdout.on("data", (b: Buffer) => (stdout += b.toString()));
  child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
  const code = await new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
  assert.equal(code, 0, stderr);

  const summary = JSON.parse(stdout) as { study: string; trials: number; done?: string };
  assert.equal(summary.study, "cli");
  assert.equal(summary.trials, 2);
  assert.notEqual(summary.done, undefined);
  const saved = await savedSettings(ns);
  assert.equal(saved?.resources, "limits");
  assert.ok([0.25, 0.5, 0.75, 1].includes(saved?.cpu ?? -1), JSON.stringify(saved));
  assert.equal(saved?.mem, undefined, "mem is not tuned, so not written");
  assert.ok(["2", "4", "8"].includes(saved?.env?.THREADS ?? ""), JSON.stringify(saved));
  const measured = stderr.split("\n").filter((line) => line.includes('"measuring job runs"'));
  assert.equal(measured.length, 2, stderr);
});
