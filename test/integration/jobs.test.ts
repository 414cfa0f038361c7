/**
 * The jobs watcher and reporter on the embedded cluster (seed 001, issue 5): every finished job
 * pod is reported exactly once, with its run time, its app id in the URL and the bearer token;
 * across a watcher killed with SIGKILL during an endpoint outage; for pods that finished while it
 * was down and pods deleted before they ran; and a pod is annotated only after a 2xx. Also the
 * pod source's start errors and uid precondition, and the servo's `jobs` measure connector.
 *
 * KWOK completes pods owned by a Job (kubewise.dev/simulated-runtime delays it). Where a test
 * needs a failure or exact times it uses a pod with no Job owner, which KWOK runs but never
 * completes, and patches its status as a kubelet would.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import {
  DEFAULT_APP_ID_PATH,
  JOB_LABEL,
  JobPodWatcher,
  JobsWatch,
  Outbox,
  REPORTED_ANNOTATION,
  REPORT_FINALIZER,
  WebhookServer,
  createServingCertificate,
  parseAppIdPath,
  registerWebhook,
  releaseAllReportFinalizers,
  unregisterWebhook,
  type JobPodSource,
  type JobsWatchConfig,
  type MeasurementEvent,
  type OutboxEntry,
} from "../../src/jobs/index.js";
import {
  KubeClient,
  KubeError,
  ignoreNotFound,
  waitForDeleted,
  waitForPodReady,
  type V1Pod,
} from "../../src/kube/index.js";
import {
  Servo,
  assembleServo,
  parseCommand,
  parseServoConfig,
  type OptimizerTransport,
} from "../../src/servo/index.js";
import { testCluster, testNamespace } from "./support/cluster.js";

// ---------------------------------------------------------------------------------------------
// A local receiver standing in for OPTUNE_URL

interface Received {
  path: string;
  authorization: string | undefined;
  idempotencyKey: string | undefined;
  body: MeasurementEvent;
  status: number;
  at: number;
}

/** Answer decides a request's status: 200, or 503 during an outage, or per report. */
type Answer = (request: Omit<Received, "status" | "at">) => number;

const ok: Answer = () => 200;
const outage: Answer = () => 503;

/** Receiver is an HTTP server on 127.0.0.1 that records every report and answers with `answer`. */
class Receiver {
  answer: Answer;
  readonly received: Received[];
  private readonly server: Server;

  private constructor(received: Received[], answer: Answer) {
    this.received = received;
    this.answer = answer;
    this.server = createServer((req, res) => {
      void readJson(req).then((body) => {
        const request = {
          path: req.url ?? "",
          authorization: req.headers.authorization,
          idempotencyKey: header(req, "idempotency-key"),
          body: body as MeasurementEvent,
        };
        const status = this.answer(request);
        this.received.push({ ...request, status, at: Date.now() });
        res.writeHead(status, { "content-type": "application/json" }).end("{}");
      });
    });
  }

  /** start listens on `port` (0: any), appending to `received` when given (a restarted endpoint). */
  static async start(
    options: { port?: number; received?: Received[]; answer?: Answer } = {},
  ): Promise<Receiver> {
    const receiver = new Receiver(options.received ?? [], options.answer ?? ok);
    await new Promise<void>((resolve) => receiver.server.listen(options.port ?? 0, "127.0.0.1", resolve));
    return receiver;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** template is an OPTUNE_URL pointing here. */
  get template(): string {
    return `http://127.0.0.1:${this.port}/{acct}/{app_id}/servo`;
  }

  /** accepted lists the reports answered with a 2xx for a pod uid. */
  accepted(uid: string): Received[] {
    return this.received.filter((r) => r.status < 300 && r.body.param.idempotency_key === uid);
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}") as unknown;
}

// ---------------------------------------------------------------------------------------------
// Pods

const client = (): KubeClient => testCluster().client;

interface PodOptions {
  /** appId is the JOBID env value; none makes the pod not a job pod. */
  appId?: string;
  /** jobOwner makes KWOK complete the pod (an ownerReference of kind Job, by uid). */
  jobOwner?: { name: string; uid: string };
  runtime?: string;
  unschedulable?: boolean;
  /** jobLabel sets the label that sends the pod to the jobs webhook. */
  jobLabel?: boolean;
}

function podSpec(namespace: string, name: string, options: PodOptions): V1Pod {
  const env = options.appId === undefined ? [] : [{ name: "JOBID", value: options.appId }];
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name,
      namespace,
      labels: options.jobLabel ? { [JOB_LABEL]: "true" } : undefined,
      annotations:
        options.runtime === undefined ? undefined : { "kubewise.dev/simulated-runtime": options.runtime },
      ownerReferences:
        options.jobOwner === undefined
          ? undefined
          : [{ apiVersion: "batch/v1", kind: "Job", name: options.jobOwner.name, uid: options.jobOwner.uid }],
    },
    spec: {
      restartPolicy: "Never",
      nodeSelector: options.unschedulable ? { "kubewise.dev/no-such-node": "true" } : undefined,
      containers: [
        {
          name: "main",
          image: "example/job:1",
          env,
          resources: { requests: { cpu: "250m", memory: "256Mi" }, limits: { cpu: "500m", memory: "512Mi" } },
        },
      ],
    },
  };
}

async function createPod(namespace: string, name: string, options: PodOptions = {}): Promise<V1Pod> {
  return client().core.createNamespacedPod({ namespace, body: podSpec(namespace, name, options) });
}

/** createJob makes a batch/v1 Job whose one pod KWOK runs for `runtime` and completes. */
async function createJob(namespace: string, name: string, appId: string, runtime: string): Promise<void> {
  await client().batch.createNamespacedJob({
    namespace,
    body: {
      metadata: { name },
      spec: {
        backoffLimit: 0,
        template: {
          metadata: { annotations: { "kubewise.dev/simulated-runtime": runtime } },
          spec: {
            restartPolicy: "Never",
            containers: [{ name: "main", image: "example/job:1", env: [{ name: "JOBID", value: appId }] }],
          },
        },
      },
    },
  });
}

/** succeededPodOf waits for the Job's pod to succeed and returns it. */
async function succeededPodOf(namespace: string, job: string): Promise<V1Pod> {
  let pod: V1Pod | undefined;
  await eventually(async () => {
    const pods = await client().core.listNamespacedPod({ namespace, labelSelector: `job-name=${job}` });
    pod = pods.items[0];
    return pod?.status?.phase === "Succeeded";
  }, `the pod of Job ${job} to succeed`);
  return pod as V1Pod;
}

async function readPod(namespace: string, name: string): Promise<V1Pod | undefined> {
  return ignoreNotFound(client().core.readNamespacedPod({ namespace, name }));
}

const SECOND = 1000;

/**
 * finishPod ends a running pod the way a kubelet reports it: phase Succeeded (exit 0) or Failed,
 * and the container terminated with the given start and finish times (whole seconds, as the API
 * keeps them).
 */
async function finishPod(
  namespace: string,
  name: string,
  run: { seconds: number; exitCode?: number; finishedAt?: number },
): Promise<V1Pod> {
  await waitForPodReady(client(), namespace, name, { timeoutMs: 60_000 });
  const finishedAt = Math.ceil((run.finishedAt ?? Date.now()) / SECOND) * SECOND;
  const startedAt = finishedAt - run.seconds * SECOND;
  const exitCode = run.exitCode ?? 0;
  const terminated = {
    exitCode,
    reason: exitCode === 0 ? "Completed" : "Error",
    startedAt: new Date(startedAt).toISOString(),
    finishedAt: new Date(finishedAt).toISOString(),
  };
  const status = {
    name: "main",
    image: "example/job:1",
    imageID: "kwok://example/job:1",
    ready: false,
    started: false,
    restartCount: 0,
    state: { terminated },
  };
  return client().core.patchNamespacedPodStatus({
    namespace,
    name,
    body: [
      { op: "replace", path: "/status/phase", value: exitCode === 0 ? "Succeeded" : "Failed" },
      { op: "replace", path: "/status/containerStatuses", value: [status] },
    ],
  });
}

/** eventually polls `check` until it holds, failing after `timeoutMs` with `what`. */
async function eventually(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function reported(namespace: string, name: string): Promise<string | undefined> {
  return (await readPod(namespace, name))?.metadata?.annotations?.[REPORTED_ANNOTATION];
}

async function waitReported(namespace: string, names: readonly string[], timeoutMs = 60_000): Promise<void> {
  for (const name of names) {
    await eventually(
      async () => (await reported(namespace, name)) !== undefined,
      `pod ${name} to be marked reported`,
      timeoutMs,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// The watcher, in-process and as `kubewise jobs watch`

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), "kubewise-jobs-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function watchConfig(namespace: string, receiver: Receiver, outbox: string): JobsWatchConfig {
  return {
    target: { urlTemplate: receiver.template, account: "acct-1", token: "s3cret" },
    namespaces: [namespace],
    appIdPath: parseAppIdPath(DEFAULT_APP_ID_PATH),
    outbox,
  };
}

/** SeenSource wraps the pod source and records the uids it delivered, so a test can wait on them. */
function recording(source: JobPodSource, seen: Set<string>): JobPodSource {
  return {
    start: (listener) =>
      source.start((pod, deleted) => {
        if (pod.metadata?.uid) seen.add(pod.metadata.uid);
        listener(pod, deleted);
      }),
    stop: () => source.stop(),
    markReported: (entry) => source.markReported(entry),
    releaseReportFinalizer: (pod) => source.releaseReportFinalizer?.(pod),
  };
}

async function startWatch(
  t: TestContext,
  namespace: string,
  receiver: Receiver,
  outbox: string,
  seen = new Set<string>(),
): Promise<JobsWatch> {
  const source = recording(new JobPodWatcher({ client: client(), namespaces: [namespace] }), seen);
  const watch = new JobsWatch({
    config: watchConfig(namespace, receiver, outbox),
    source,
    reporter: { backoff: { initialMs: 50, maxMs: 200 } },
  });
  await watch.start();
  t.after(() => watch.stop());
  return watch;
}

interface CliRun {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

function runCli(
  args: string[],
  env: Record<string, string> = {},
  kubeconfig = testCluster().kubeconfig,
): CliRun {
  let output = "";
  const child = spawn(
    process.execPath,
    ["--import", "tsx", "src/cli/main.ts", "--kubeconfig", kubeconfig, ...args],
    { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] },
  );
  child.stdout?.on("data", (b: Buffer) => (output += b.toString()));
  child.stderr?.on("data", (b: Buffer) => (output += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, output: () => output, exited };
}

function outboxEntries(file: string, uids: readonly string[]): (OutboxEntry | undefined)[] {
  const outbox = Outbox.open(file);
  try {
    return uids.map((uid) => outbox.get(uid));
  } finally {
    outbox.close();
  }
}

const uidOf = (pod: V1Pod): string => pod.metadata?.uid ?? "";

function onlyReport(receiver: Receiver, pod: V1Pod): Received {
  const got = receiver.accepted(uidOf(pod));
  assert.equal(got.length, 1, `pod ${pod.metadata?.name} reported exactly once`);
  return got[0] as Received;
}

/** assertMarkedAfter checks the annotation's time (milliseconds, same clock) is not before the 2xx. */
async function assertMarkedAfter(namespace: string, name: string, report: Received): Promise<void> {
  const markedAt = Date.parse((await reported(namespace, name)) ?? "");
  assert.ok(markedAt >= report.at, `${name} was marked (${markedAt}) after its 2xx (${report.at})`);
}

// ---------------------------------------------------------------------------------------------

test("Verifies that each finished job pod is reported once, with its run time, app id in the URL and the bearer token", async (t) => {
  const ns = await testNamespace(t, "jobs");
  const receiver = await Receiver.start();
  t.after(() => receiver.close());
  const outbox = join(tempDir(t), "outbox.sqlite");
  await startWatch(t, ns, receiver, outbox);

  const render = await createPod(ns, "render", { appId: "render/video 1" });
  const etl = await createPod(ns, "etl", { appId: "etl" });
  const plain = await createPod(ns, "plain");
  const running = await createPod(ns, "running", { appId: "etl" });
  await createJob(ns, "kwok-job", "batch-x", "2s");
  await finishPod(ns, "render", { seconds: 7 });
  await finishPod(ns, "etl", { seconds: 4, exitCode: 3 });
  await finishPod(ns, "plain", { seconds: 1 });
  await waitForPodReady(client(), ns, "running", { timeoutMs: 60_000 });

  const jobPod = await succeededPodOf(ns, "kwok-job");
  const jobPodName = jobPod.metadata?.name ?? "";
  await waitReported(ns, ["render", "etl", jobPodName]);

  const r = onlyReport(receiver, render);
  assert.equal(r.path, "/acct-1/render%2Fvideo%201/servo", "{acct} and the URL-encoded {app_id}");
  assert.equal(r.authorization, "Bearer s3cret");
  assert.equal(r.idempotencyKey, uidOf(render));
  assert.equal(r.body.event, "MEASUREMENT");
  assert.equal(r.body.param.status, "ok");
  assert.equal(r.body.param.metrics?.duration?.value, 7);
  assert.equal(r.body.param.metrics?.cpu?.value, 0.5, "the cpu limit it ran with");
  assert.equal(r.body.param.metrics?.mem?.value, 0.5, "the memory limit it ran with, in GiB");
  assert.equal(r.body.param.annotations.app_id, "render/video 1");
  assert.equal(r.body.param.annotations.pod, "render");

  const e = onlyReport(receiver, etl);
  assert.equal(e.path, "/acct-1/etl/servo");
  assert.equal(e.body.param.metrics?.duration?.value, 4);
  assert.equal(e.body.param.annotations.exitcode, "3");
  assert.equal(e.body.param.annotations.phase, "Failed");

  const j = onlyReport(receiver, jobPod);
  assert.equal(j.path, "/acct-1/batch-x/servo");
  const seconds = j.body.param.metrics?.duration?.value ?? -1;
  assert.ok(seconds >= 1 && seconds <= 3, `the simulated 2 s run measured ${seconds} s (1 s resolution)`);

  await assertMarkedAfter(ns, "render", r);
  await assertMarkedAfter(ns, "etl", e);
  await assertMarkedAfter(ns, jobPodName, j);
  assert.equal(
    receiver.received.filter((x) => x.body.param.idempotency_key === uidOf(plain)).length,
    0,
    "a pod with no app id is not a job",
  );
  assert.equal(
    receiver.received.filter((x) => x.body.param.idempotency_key === uidOf(running)).length,
    0,
    "a running pod is not reported",
  );
  assert.equal(await reported(ns, "running"), undefined);
  assert.equal(receiver.received.length, 3, "nothing else was sent");
});

test("Verifies that a pod that finished while the watcher was down is reported when it starts, and one deleted before it ran is reported as failed", async (t) => {
  const ns = await testNamespace(t, "jobs");
  const receiver = await Receiver.start();
  t.after(() => receiver.close());
  const outbox = join(tempDir(t), "outbox.sqlite");

  const early = await createPod(ns, "early", { appId: "nightly" });
  await finishPod(ns, "early", { seconds: 5 });
  const seen = new Set<string>();
  await startWatch(t, ns, receiver, outbox, seen);
  await waitReported(ns, ["early"]);
  assert.equal(receiver.accepted(uidOf(early)).length, 1);
  assert.equal(receiver.accepted(uidOf(early))[0]?.body.param.metrics?.duration?.value, 5);

  // Deleted while Pending (no node fits): the watcher must have seen it to know it existed.
  const never = await createPod(ns, "never", { appId: "nightly", unschedulable: true });
  await eventually(() => seen.has(uidOf(never)), "the watcher to see the pending pod");
  await client().core.deleteNamespacedPod({ namespace: ns, name: "never" });
  await eventually(() => receiver.accepted(uidOf(never)).length > 0, "the report of the deleted pod");
  const param = receiver.accepted(uidOf(never))[0]?.body.param;
  assert.equal(param?.status, "failed");
  assert.equal(param?.reason, "deleted-before-run");
  assert.equal(param?.message, "job deleted before it ran");
  assert.equal(param?.metrics, undefined, "no run time for a pod that never ran");
  assert.equal(receiver.received.length, 2);
});

test("Verifies that with the webhook's report finalizer, job pods deleted while the watcher is down stay until it has queued their reports, and are then released", async (t) => {
  const ns = await testNamespace(t, "jobs-fin");
  const receiver = await Receiver.start();
  t.after(() => receiver.close());
  const outbox = join(tempDir(t), "outbox.sqlite");
  const cert = await createServingCertificate({ dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] });
  const webhook = new WebhookServer({
    port: 0,
    certPem: cert.certPem,
    keyPem: cert.keyPem,
    appIdPath: parseAppIdPath(DEFAULT_APP_ID_PATH),
    settings: { settingsFor: () => Promise.resolve(undefined) },
    reportFinalizer: true,
  });
  const port = await webhook.start();
  t.after(() => webhook.stop());
  const name = `kubewise-jobs-${ns}`;
  await registerWebhook(client(), {
    name,
    endpoint: { url: `https://127.0.0.1:${port}/mutate` },
    caPem: cert.caPem,
    namespaces: [ns],
  });
  t.after(() => unregisterWebhook(client(), name));
  // The API server picks up a new webhook configuration a moment after it is written.
  await eventually(async () => {
    const probe = await client().core.createNamespacedPod({
      namespace: ns,
      body: podSpec(ns, "probe", { appId: "probe", jobLabel: true }),
      dryRun: "All",
    });
    return probe.metadata?.finalizers?.includes(REPORT_FINALIZER) === true;
  }, "the webhook to add the report finalizer");

  // With no watcher running: one pod finishes and is deleted, one is deleted while running.
  const done = await createPod(ns, "done", { appId: "nightly", jobLabel: true });
  assert.deepEqual(done.metadata?.finalizers, [REPORT_FINALIZER]);
  await finishPod(ns, "done", { seconds: 6 });
  const killed = await createPod(ns, "killed", { appId: "nightly", jobLabel: true });
  await waitForPodReady(client(), ns, "killed", { timeoutMs: 60_000 });
  const plain = await createPod(ns, "plain", { jobLabel: true });
  assert.equal(plain.metadata?.finalizers, undefined, "a pod with no app id is not held");
  for (const pod of ["done", "killed"]) await client().core.deleteNamespacedPod({ namespace: ns, name: pod });
  await new Promise((resolve) => setTimeout(resolve, 2 * SECOND));
  for (const pod of ["done", "killed"]) {
    const held = await readPod(ns, pod);
    assert.ok(held?.metadata?.deletionTimestamp, `${pod} is terminating, held by the finalizer`);
  }

  const watch = await startWatch(t, ns, receiver, outbox);
  await eventually(
    () => receiver.accepted(uidOf(done)).length > 0 && receiver.accepted(uidOf(killed)).length > 0,
    "both reports",
  );
  const d = onlyReport(receiver, done).body.param;
  assert.equal(d.status, "ok");
  assert.equal(d.metrics?.duration?.value, 6);
  const k = onlyReport(receiver, killed).body.param;
  assert.equal(k.status, "failed");
  assert.equal(k.reason, "deleted-while-running");
  await waitForDeleted(
    client(),
    { apiVersion: "v1", kind: "Pod", name: "done", namespace: ns },
    { timeoutMs: 30_000 },
  );
  await waitForDeleted(
    client(),
    { apiVersion: "v1", kind: "Pod", name: "killed", namespace: ns },
    { timeoutMs: 30_000 },
  );
  assert.equal(receiver.received.length, 2, "nothing else was sent");
  await watch.stop();

  // With the watcher gone for good, release-finalizers lets a held pod go.
  await createPod(ns, "orphan", { appId: "nightly", jobLabel: true });
  await client().core.deleteNamespacedPod({ namespace: ns, name: "orphan" });
  assert.ok((await readPod(ns, "orphan"))?.metadata?.deletionTimestamp, "held while nobody watches");
  assert.deepEqual(await releaseAllReportFinalizers(client(), [ns]), [`${ns}/orphan`]);
  await waitForDeleted(
    client(),
    { apiVersion: "v1", kind: "Pod", name: "orphan", namespace: ns },
    { timeoutMs: 30_000 },
  );
  assert.deepEqual(await releaseAllReportFinalizers(client(), [ns]), [], "nothing left to release");
});

test("Verifies that a watcher killed with SIGKILL during an endpoint outage, restarted with the endpoint and killed again after its first 2xx, then restarted, loses and doubles nothing", async (t) => {
  const ns = await testNamespace(t, "jobs");
  const received: Received[] = [];
  let receiver = await Receiver.start({ received, answer: outage });
  t.after(() => receiver.close());
  const port = receiver.port;
  const outbox = join(tempDir(t), "outbox.sqlite");
  const args = [
    "jobs",
    "watch",
    "--url",
    receiver.template,
    "--account",
    "acct-1",
    "--namespaces",
    ns,
    "--outbox",
    outbox,
  ];
  const env = { OPTUNE_AUTH_TOKEN: "s3cret" };

  const first = runCli(args, env);
  t.after(() => first.child.kill("SIGKILL"));
  const pods: V1Pod[] = [];
  for (const [i, seconds] of [3, 6, 9].entries()) {
    pods.push(await createPod(ns, `during-${i}`, { appId: "etl" }));
    await finishPod(ns, `during-${i}`, { seconds });
  }
  await eventually(
    () => received.length >= 2,
    "the watcher to try the endpoint during the outage",
    60_000,
  ).catch((err: Error) => {
    throw new Error(`${err.message}\n${first.output()}`);
  });
  for (const pod of pods)
    assert.equal(await reported(ns, pod.metadata?.name ?? ""), undefined, "not marked without a 2xx");

  first.child.kill("SIGKILL");
  assert.equal(await first.exited, null, "killed, not exited");
  // A pod finishes while the watcher is down.
  pods.push(await createPod(ns, "while-down", { appId: "etl" }));
  await finishPod(ns, "while-down", { seconds: 2 });
  await receiver.close();

  // The second run is killed as soon as its first report is accepted: the reporter sends one at
  // a time, so its next request proves the first 2xx was taken in; the kill comes before that
  // request is answered, so nothing else of this run is accepted.
  const running: { second?: CliRun } = {};
  let acceptedBySecond: string | undefined;
  const killAfterFirst: Answer = (request) => {
    if (acceptedBySecond === undefined) {
      acceptedBySecond = request.idempotencyKey ?? request.body.param.idempotency_key;
      return 200;
    }
    running.second?.child.kill("SIGKILL");
    return 503;
  };
  const beforeSecond = received.length;
  receiver = await Receiver.start({ port, received, answer: killAfterFirst });
  const second = runCli(args, env);
  running.second = second;
  t.after(() => second.child.kill("SIGKILL"));
  assert.equal(await second.exited, null, `killed after its first 2xx, not exited:\n${second.output()}`);
  const secondRun = received.slice(beforeSecond);
  assert.equal(secondRun.filter((r) => r.status < 300).length, 1, "the second run had one report accepted");
  assert.ok(acceptedBySecond !== undefined && pods.some((p) => uidOf(p) === acceptedBySecond));
  receiver.answer = ok;

  const beforeThird = received.length;
  const third = runCli(args, env);
  t.after(() => third.child.kill("SIGKILL"));
  await waitReported(
    ns,
    pods.map((p) => p.metadata?.name ?? ""),
  ).catch((err: Error) => {
    throw new Error(`${err.message}\n${third.output()}`);
  });
  // Give a resend, were there one, the time to arrive before the stop.
  await new Promise((resolve) => setTimeout(resolve, 2 * SECOND));
  third.child.kill("SIGTERM");
  assert.equal(await third.exited, 0, `a clean stop on SIGTERM:\n${third.output()}`);
  const thirdRun = received.slice(beforeThird);
  assert.deepEqual(
    thirdRun.map((r) => r.body.param.idempotency_key).sort(),
    pods
      .map(uidOf)
      .filter((uid) => uid !== acceptedBySecond)
      .sort(),
    "the third run sent each report not yet accepted, once, and not the one accepted before the kill",
  );

  for (const pod of pods) {
    const got = receiver.accepted(uidOf(pod));
    assert.equal(got.length, 1, `${pod.metadata?.name} accepted exactly once`);
    assert.equal(got[0]?.authorization, "Bearer s3cret");
  }
  assert.deepEqual(
    pods.map((p) => receiver.accepted(uidOf(p))[0]?.body.param.metrics?.duration?.value),
    [3, 6, 9, 2],
  );
  assert.equal(received.filter((r) => r.status < 300).length, pods.length, "no other report was accepted");
  for (const entry of outboxEntries(outbox, pods.map(uidOf))) {
    assert.equal(entry?.state, "delivered");
    assert.notEqual(entry?.markedAt, undefined);
  }
});

test("Verifies that a pod is marked reported only after a 2xx: never while the endpoint fails or after it refuses the report", async (t) => {
  const ns = await testNamespace(t, "jobs");
  const receiver = await Receiver.start({ answer: outage });
  t.after(() => receiver.close());
  const outbox = join(tempDir(t), "outbox.sqlite");
  const watch = await startWatch(t, ns, receiver, outbox);

  const refused = await createPod(ns, "refused", { appId: "bad-app" });
  await finishPod(ns, "refused", { seconds: 3 });
  await eventually(() => receiver.received.length >= 3, "three failed attempts");
  assert.equal(await reported(ns, "refused"), undefined, "not marked during the outage");

  receiver.answer = (req) => (req.path.includes("bad-app") ? 400 : 200);
  await eventually(
    () => receiver.received.some((r) => r.status === 400),
    "the endpoint to refuse the report",
  );
  const good = await createPod(ns, "good", { appId: "good-app" });
  await finishPod(ns, "good", { seconds: 3 });
  await waitReported(ns, ["good"]);
  await watch.stop();

  assert.equal(await reported(ns, "refused"), undefined, "a refused report does not mark the pod");
  assert.equal(
    receiver.received.filter((r) => r.body.param.idempotency_key === uidOf(refused) && r.status === 400)
      .length,
    1,
    "a refusal is not retried",
  );
  const [refusedEntry, goodEntry] = outboxEntries(outbox, [uidOf(refused), uidOf(good)]);
  assert.equal(refusedEntry?.state, "rejected");
  assert.equal(goodEntry?.state, "delivered");
});

test("Verifies that markReported writes the annotation only on the same pod: a pod gone or replaced under its name counts as marked", async (t) => {
  const ns = await testNamespace(t, "jobs");
  const source = new JobPodWatcher({ client: client(), namespaces: [ns] });
  const entry = (pod: V1Pod): OutboxEntry => ({
    uid: uidOf(pod),
    appId: "etl",
    namespace: ns,
    pod: pod.metadata?.name ?? "",
    param: { status: "ok", reason: "success", annotations: {}, idempotency_key: uidOf(pod) },
    state: "delivered",
    attempts: 1,
    lastError: undefined,
    enqueuedAt: 0,
    lastAttemptAt: undefined,
    deliveredAt: 0,
    markedAt: undefined,
  });

  const old = await createPod(ns, "same", { appId: "etl" });
  await client().core.deleteNamespacedPod({ namespace: ns, name: "same", gracePeriodSeconds: 0 });
  await waitForDeleted(
    client(),
    { apiVersion: "v1", kind: "Pod", namespace: ns, name: "same" },
    { timeoutMs: 60_000 },
  );
  await source.markReported(entry(old));
  const replacement = await createPod(ns, "same", { appId: "etl" });
  await source.markReported(entry(old));
  assert.equal(await reported(ns, "same"), undefined, "the new pod of the same name is not marked");

  await source.markReported(entry(replacement));
  const value = await reported(ns, "same");
  assert.ok(value !== undefined && Number.isFinite(Date.parse(value)), `marked with a time, got ${value}`);
});

test("Verifies that the pod watcher fails at start naming a namespace it may not list, or an API server it cannot reach", async (t) => {
  const ns = await testNamespace(t, "jobs");
  const dir = tempDir(t);
  await client().core.createNamespacedServiceAccount({
    namespace: ns,
    body: { metadata: { name: "nobody" } },
  });
  const token = await client().core.createNamespacedServiceAccountToken({
    namespace: ns,
    name: "nobody",
    body: { spec: { audiences: [], expirationSeconds: 600 } },
  });
  const admin = parse(readFileSync(testCluster().kubeconfig, "utf8")) as {
    clusters: { cluster: { server: string } }[];
    users: { name: string; user: Record<string, unknown> }[];
  };
  const asNobody = join(dir, "nobody.kubeconfig");
  writeFileSync(
    asNobody,
    stringify({
      ...admin,
      users: admin.users.map((u) => ({ name: u.name, user: { token: token.status?.token } })),
    }),
  );
  const unreachable = join(dir, "unreachable.kubeconfig");
  writeFileSync(
    unreachable,
    stringify({
      ...admin,
      clusters: admin.clusters.map((c) => ({
        ...c,
        cluster: { ...c.cluster, server: "https://127.0.0.1:1" },
      })),
    }),
  );

  const forbidden = new JobPodWatcher({
    client: KubeClient.connect({ kubeconfig: asNobody }),
    namespaces: ["default", ns],
  });
  await assert.rejects(
    forbidden.start(() => {}),
    (err: unknown) => {
      assert.ok(err instanceof KubeError);
      assert.equal(err.reason, "Forbidden");
      assert.match(
        err.message,
        /^cannot watch pods in namespace "(default|jobs-[0-9a-f]+)": .*forbidden.*RoleBinding/s,
      );
      return true;
    },
  );

  const down = new JobPodWatcher({
    client: KubeClient.connect({ kubeconfig: unreachable }),
    namespaces: [ns],
    watch: { initialBackoffMs: 10 },
  });
  await assert.rejects(
    down.start(() => {}),
    (err: unknown) => {
      assert.ok(err instanceof KubeError);
      assert.equal(err.reason, "Unavailable");
      assert.ok(err.message.startsWith(`cannot watch pods in namespace "${ns}": `), err.message);
      return true;
    },
  );

  const cli = runCli(
    [
      "jobs",
      "watch",
      "--url",
      "http://127.0.0.1:9/{app_id}",
      "--namespaces",
      ns,
      "--outbox",
      join(dir, "outbox.sqlite"),
    ],
    {},
    asNobody,
  );
  assert.equal(await cli.exited, 1, cli.output());
  assert.match(cli.output(), new RegExp(`error: cannot watch pods in namespace "${ns}": .*forbidden`));
});

test("Verifies that a watched namespace that does not exist fails the watcher at start, naming it and POD_NAMESPACES", async (t) => {
  const ns = await testNamespace(t, "jobs");
  const dir = tempDir(t);
  const missing = `defualt-${randomBytes(3).toString("hex")}`;
  const cli = runCli(
    ["jobs", "watch", "--url", "http://127.0.0.1:9/{app_id}", "--outbox", join(dir, "outbox.sqlite")],
    { POD_NAMESPACES: `${ns},${missing}` },
  );
  assert.equal(await cli.exited, 1, cli.output());
  assert.match(cli.output(), new RegExp(`error: POD_NAMESPACES lists "${missing}", which does not exist`));
  const error =
    cli
      .output()
      .split("\n")
      .find((l) => l.startsWith("error: ")) ?? "";
  assert.ok(!error.includes(ns), `an existing namespace is not named: ${error}`);
});

test("Verifies that the servo's jobs connector measures the runs of its app id that finish in the MEASURE: count, mean, p50, p90", async (t) => {
  const ns = await testNamespace(t, "jobs");
  const seed = parse(readFileSync("test/fixtures/servo/seed.yaml", "utf8")) as Record<
    string,
    Record<string, unknown>
  >;
  (seed.k8s as Record<string, unknown>).namespace = ns;
  delete seed.k8slive;
  seed.measure = { connector: "jobs", app_id: "render", count: 5 };
  const noOptimizer: OptimizerTransport = { target: "none", send: () => Promise.reject(new Error("unused")) };
  const servo = new Servo({
    ...assembleServo(parseServoConfig(seed, "seed.yaml"), { client: client() }),
    transport: noOptimizer,
  });

  // Finished before the MEASURE: outside its window.
  await createPod(ns, "before", { appId: "render" });
  await finishPod(ns, "before", { seconds: 100, finishedAt: Date.now() - 30 * SECOND });

  let started = false;
  const measuring = servo.execute(
    parseCommand({
      cmd: "MEASURE",
      param: {
        metrics: ["duration", "duration_p50", "duration_p90", "job_count"],
        control: { duration: 120 },
      },
    }),
    undefined,
    () => (started = true),
  );
  // The window opens when the connector reports its first progress; runs must finish after that.
  await eventually(() => started, "the measurement to start");
  const durations = [2, 4, 6, 8, 10];
  await createPod(ns, "other-app", { appId: "something-else" });
  await finishPod(ns, "other-app", { seconds: 50 });
  for (const [i, seconds] of durations.entries()) {
    await createPod(ns, `render-${i}`, { appId: "render" });
    await finishPod(ns, `render-${i}`, { seconds });
  }
  const reply = (await measuring) as { status: string; metrics: Record<string, { value: number }> };
  assert.equal(reply.status, "ok", JSON.stringify(reply));
  assert.equal(reply.metrics.job_count?.value, 5);
  assert.equal(reply.metrics.duration?.value, 6, "the mean of 2, 4, 6, 8, 10");
  assert.equal(reply.metrics.duration_p50?.value, 6);
  assert.ok(
    Math.abs((reply.metrics.duration_p90?.value ?? 0) - 9.2) < 1e-9,
    "p90 interpolates between 8 and 10",
  );
});
