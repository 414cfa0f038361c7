/**
 * Benchmark: 1,000 job pods finishing within about a minute on the embedded cluster, reported to a
 * local receiver through an endpoint outage and a reporter killed with SIGKILL and restarted.
 * Ours (`kubewise jobs watch`: outbox, backoff, annotation after a 2xx) against two baselines
 * measured in the same run (bench/jobs/naive.ts): the original's watch-and-post reporter, and the
 * same with the obvious fix of reporting finished pods found at start.
 *
 * Each system gets its own namespace and the same script, timed from the first pod created:
 * - pods are created 20 at a time, paced to ~25 a second, each owned by a (suspended) Job so that
 *   KWOK runs it and completes it after a random 1-10 s (kubewise.dev/simulated-runtime);
 * - from OUTAGE_START to OUTAGE_END the endpoint answers 503;
 * - at KILL_AT the reporter is killed with SIGKILL; at OUTAGE_END it is started again.
 * The bench's own pod watch notes when each pod is first seen finished. Once every pod has
 * finished, it waits until every finished pod was accepted or no report arrived for IDLE_MS.
 *
 * Counted per system: delivered (pods with at least one 2xx), lost (finished, never accepted),
 * doubled (pods accepted more than once), and the p50/p99 latency from a pod seen finished to its
 * first 2xx. The latency includes the outage and the restart for the pods they hit, and the
 * backlog they leave; "before outage" is the p50 of the pods that finished before it, and "drain"
 * is how long after the last pod finished its last first report arrived.
 *
 * Run: npx tsx bench/jobs/main.ts [--pods 1000]
 * Needs the test cluster: node --import tsx src/cli/main.ts cluster up --dir .kubewise/test-cluster
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { readState } from "../../src/cluster/index.js";
import { KubeClient, ResourceWatcher, type V1Pod } from "../../src/kube/index.js";

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}

const PODS = flag("pods", 1000);
const CREATE_RATE = 25; // pods per second
const IN_FLIGHT = 20;
const OUTAGE_START_MS = 10_000;
const KILL_AT_MS = 15_000;
const OUTAGE_END_MS = 22_000;
const IDLE_MS = 15_000;
const SETTLE_CAP_MS = 180_000;
const CLUSTER_DIR = process.env.KUBEWISE_TEST_CLUSTER_DIR ?? ".kubewise/test-cluster";

const state = readState(CLUSTER_DIR);
if (!state) {
  console.error(
    `no cluster in ${CLUSTER_DIR}: start one with \`node --import tsx src/cli/main.ts cluster up --dir ${CLUSTER_DIR}\``,
  );
  process.exit(1);
}
const kubeconfig = state.kubeconfig;
const client = KubeClient.connect({ kubeconfig });

// ---------------------------------------------------------------------------------------------
// The receiver: one server for the whole run; the first path segment names the system.

interface Accepted {
  uid: string;
  at: number;
}

const accepted = new Map<string, Accepted[]>();
let requests = 0;
let outage = false;

function uidOf(body: unknown): string {
  const param = (body as { param?: { idempotency_key?: string; annotations?: { pod_uid?: string } } }).param;
  return param?.idempotency_key ?? param?.annotations?.pod_uid ?? "";
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}") as unknown;
}

const receiver = createServer((req, res) => {
  void readBody(req).then((body) => {
    requests++;
    const system = (req.url ?? "").split("/")[1] ?? "";
    if (outage) return res.writeHead(503).end();
    const list = accepted.get(system) ?? [];
    list.push({ uid: uidOf(body), at: Date.now() });
    accepted.set(system, list);
    res.writeHead(200, { "content-type": "application/json" }).end("{}");
  });
});
await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
const port = (receiver.address() as AddressInfo).port;

// ---------------------------------------------------------------------------------------------
// Reporters under test, as processes the bench can kill

interface System {
  name: string;
  describe: string;
  /** start runs the reporter and resolves once it is watching. */
  start(namespace: string): Promise<ChildProcess>;
}

function spawnLogged(
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): { child: ChildProcess; output: () => string } {
  let output = "";
  const child = spawn(process.execPath, ["--import", "tsx", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env,
  });
  child.stdout?.on("data", (b: Buffer) => (output += b.toString()));
  child.stderr?.on("data", (b: Buffer) => (output += b.toString()));
  return { child, output: () => output };
}

async function until(
  check: () => boolean,
  what: string,
  timeoutMs: number,
  log: () => string = () => "",
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${log()}`);
    await sleep(50);
  }
}

const outboxDir = mkdtempSync(join(tmpdir(), "kubewise-bench-jobs-"));

const ours: System = {
  name: "kubewise",
  describe: "kubewise jobs watch",
  async start(namespace) {
    const url = `http://127.0.0.1:${port}/kubewise/{acct}/{app_id}/servo`;
    const { child, output } = spawnLogged([
      "src/cli/main.ts",
      "--kubeconfig",
      kubeconfig,
      "jobs",
      "watch",
      "--url",
      url,
      "--account",
      "bench",
      "--namespaces",
      namespace,
      "--outbox",
      join(outboxDir, `${namespace}.sqlite`),
    ]);
    // It logs this as it starts its pod watch; pods finished before its first list are reported from it.
    await until(
      () => output().includes('"watching job pods"'),
      "kubewise jobs watch to start",
      60_000,
      output,
    );
    return child;
  },
};

function naive(mode: "original" | "list"): System {
  const name = mode === "original" ? "original" : "original+list";
  return {
    name,
    describe:
      mode === "original"
        ? "watch-and-post, report on MODIFIED (w2.py)"
        : "same, also reporting finished pods at start",
    async start(namespace) {
      const url = `http://127.0.0.1:${port}/${name}/{acct}/{app_id}/servo`;
      const { child, output } = spawnLogged(["bench/jobs/naive.ts", kubeconfig, namespace, url, mode]);
      await until(() => output().includes("ready"), `the ${name} reporter to start`, 60_000, output);
      return child;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The workload

async function createWorkload(namespace: string, ownerUid: string, t0: number): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < PODS) {
      const i = next++;
      // Paced, so the pods finish over about a minute rather than all at once.
      const due = t0 + (i * 1000) / CREATE_RATE;
      if (due > Date.now()) await sleep(due - Date.now());
      const runtime = `${1 + Math.floor(Math.random() * 10)}s`;
      await client.core.createNamespacedPod({
        namespace,
        body: {
          metadata: {
            name: `job-${String(i).padStart(4, "0")}`,
            annotations: { "kubewise.dev/simulated-runtime": runtime },
            ownerReferences: [{ apiVersion: "batch/v1", kind: "Job", name: "owner", uid: ownerUid }],
          },
          spec: {
            restartPolicy: "Never",
            containers: [
              { name: "main", image: "example/job:1", env: [{ name: "JOBID", value: `app-${i % 5}` }] },
            ],
          },
        },
      });
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
}

interface Result {
  system: System;
  finished: number;
  finishSpanS: number;
  delivered: number;
  lost: number;
  doubled: number;
  extraReports: number;
  p50: number | undefined;
  p99: number | undefined;
  /** p50Calm is the p50 latency of the pods that finished before the outage began. */
  p50Calm: number | undefined;
  /** drainS is from the last pod finished to the last first-2xx. */
  drainS: number;
}

function percentile(sorted: number[], p: number): number | undefined {
  if (sorted.length === 0) return undefined;
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)];
}

async function run(system: System): Promise<Result> {
  const namespace = `bench-jobs-${system.name.replace(/[^a-z]/g, "")}-${randomBytes(3).toString("hex")}`;
  await client.core.createNamespace({
    body: { metadata: { name: namespace, labels: { "kubewise.dev/bench": "jobs" } } },
  });
  // The pods' owner: a Job that creates no pods of its own (suspended); KWOK completes pods of kind-Job owners.
  const owner = await client.batch.createNamespacedJob({
    namespace,
    body: {
      metadata: { name: "owner" },
      spec: {
        suspend: true,
        template: { spec: { restartPolicy: "Never", containers: [{ name: "main", image: "x" }] } },
      },
    },
  });
  const finishedAt = new Map<string, number>();
  const observer = new ResourceWatcher<V1Pod>(client, { apiVersion: "v1", kind: "Pod", namespace });
  observer.on(({ object: pod }) => {
    const uid = pod.metadata?.uid ?? "";
    const phase = pod.status?.phase;
    if ((phase === "Succeeded" || phase === "Failed") && !finishedAt.has(uid))
      finishedAt.set(uid, Date.now());
  });
  observer.start();
  await observer.synced();

  let reporter = await system.start(namespace);
  const t0 = Date.now();
  const faults = (async () => {
    await sleep(t0 + OUTAGE_START_MS - Date.now());
    outage = true;
    await sleep(t0 + KILL_AT_MS - Date.now());
    reporter.kill("SIGKILL");
    await sleep(t0 + OUTAGE_END_MS - Date.now());
    outage = false;
    reporter = await system.start(namespace);
  })();
  await createWorkload(namespace, owner.metadata?.uid ?? "", t0);
  await faults;
  await until(() => finishedAt.size >= PODS, "every pod to finish", 180_000);
  const lastFinish = Math.max(...finishedAt.values());
  const firstFinish = Math.min(...finishedAt.values());

  const byUid = (): Map<string, number[]> => {
    const out = new Map<string, number[]>();
    for (const a of accepted.get(system.name) ?? []) out.set(a.uid, [...(out.get(a.uid) ?? []), a.at]);
    return out;
  };
  const settleDeadline = lastFinish + SETTLE_CAP_MS;
  for (;;) {
    const got = byUid();
    const all = [...finishedAt.keys()].every((uid) => got.has(uid));
    const lastAccept = Math.max(0, ...(accepted.get(system.name) ?? []).map((a) => a.at));
    const idle = Date.now() - Math.max(lastAccept, lastFinish) > IDLE_MS;
    if (all || idle || Date.now() > settleDeadline) break;
    await sleep(250);
  }
  reporter.kill("SIGTERM");
  await observer.stop();

  const got = byUid();
  const latencies: number[] = [];
  const calm: number[] = [];
  let lastFirstAccept = 0;
  let delivered = 0;
  let doubled = 0;
  let extraReports = 0;
  for (const [uid, finished] of finishedAt) {
    const times = got.get(uid);
    if (times === undefined) continue;
    delivered++;
    if (times.length > 1) doubled++;
    extraReports += times.length - 1;
    const first = Math.min(...times);
    lastFirstAccept = Math.max(lastFirstAccept, first);
    latencies.push((first - finished) / 1000);
    if (finished < t0 + OUTAGE_START_MS) calm.push((first - finished) / 1000);
  }
  latencies.sort((a, b) => a - b);
  calm.sort((a, b) => a - b);
  void client.core.deleteNamespace({ name: namespace }).catch(() => undefined);
  return {
    system,
    finished: finishedAt.size,
    finishSpanS: (lastFinish - firstFinish) / 1000,
    delivered,
    lost: finishedAt.size - delivered,
    doubled,
    extraReports,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    p50Calm: percentile(calm, 0.5),
    drainS: Math.max(0, lastFirstAccept - lastFinish) / 1000,
  };
}

// ---------------------------------------------------------------------------------------------

const systems = [ours, naive("original"), naive("list")];
const results: Result[] = [];
try {
  for (const system of systems) {
    process.stderr.write(`running ${system.name} (${system.describe}) with ${PODS} pods ...\n`);
    results.push(await run(system));
  }
} finally {
  receiver.close();
  rmSync(outboxDir, { recursive: true, force: true });
}

const seconds = (v: number | undefined): string => (v === undefined ? "-" : `${v.toFixed(2)} s`);
const rows = [
  [
    "system",
    "finished",
    "finish span",
    "delivered",
    "lost",
    "doubled",
    "extra 2xx",
    "p50 latency",
    "p99 latency",
    "p50 before outage",
    "drain",
  ],
  ...results.map((r) => [
    r.system.name,
    String(r.finished),
    `${r.finishSpanS.toFixed(0)} s`,
    String(r.delivered),
    String(r.lost),
    String(r.doubled),
    String(r.extraReports),
    seconds(r.p50),
    seconds(r.p99),
    seconds(r.p50Calm),
    seconds(r.drainS),
  ]),
];
const widths = rows[0]?.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? "").length))) ?? [];
console.log(
  `\njobs reporting: ${PODS} pods; endpoint 503 from ${OUTAGE_START_MS / 1000} s to ${OUTAGE_END_MS / 1000} s; ` +
    `reporter SIGKILLed at ${KILL_AT_MS / 1000} s, restarted at ${OUTAGE_END_MS / 1000} s (${requests} requests in all)\n`,
);
for (const row of rows) console.log(row.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join("  "));
for (const r of results) console.log(`  ${r.system.name}: ${r.system.describe}`);
