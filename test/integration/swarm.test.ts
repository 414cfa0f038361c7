/**
 * The swarm operator on the embedded cluster: the SwarmPool controller run in-process (start /
 * stop) against real StatefulSets and Deployments whose pods KWOK runs, the Lease-based leader
 * election, the RBAC of manifests/swarm (the main scenario runs as that service account), and
 * `kubewise swarm run` as a process.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse, parseAllDocuments } from "yaml";
import type { KubernetesObject, V1Deployment, V1Lease, V1StatefulSet } from "../../src/kube/index.js";
import { KubeClient, LeaderElector, applyObject, patchObject, waitForObject } from "../../src/kube/index.js";
import {
  SwarmController,
  IntrospectionServer,
  parseWorkerConfig,
  type AssignmentsResponse,
  type PoolStatus,
  type SwarmPoolObject,
  type WorkerConfig,
} from "../../src/swarm/index.js";
import { eventually, testCluster, testNamespace } from "./support/cluster.js";

const manifests = new URL("../../manifests/swarm/", import.meta.url);
const POOL = { apiVersion: "swarm.kubewise.dev/v1alpha1", kind: "SwarmPool", plural: "swarmpools" };
const LEASE = "kubewise-swarm";
const WAIT = { timeoutMs: 90_000 };

function admin(): KubeClient {
  return testCluster().client;
}

let crdReady: Promise<void> | undefined;

/** ensureCrd applies manifests/swarm/crd.yaml (idempotent) once per run and waits for Established. */
function ensureCrd(): Promise<void> {
  crdReady ??= (async () => {
    const crd = parse(readFileSync(new URL("crd.yaml", manifests), "utf8")) as KubernetesObject;
    await applyObject(admin(), crd);
    await waitForObject(
      admin(),
      {
        apiVersion: "apiextensions.k8s.io/v1",
        kind: "CustomResourceDefinition",
        name: crd.metadata?.name ?? "",
      },
      (
        c: (KubernetesObject & { status?: { conditions?: { type: string; status: string }[] } }) | undefined,
      ) =>
        c?.status?.conditions?.some((x) => x.type === "Established" && x.status === "True")
          ? { state: "done", value: undefined }
          : { state: "waiting" },
      WAIT,
    );
  })();
  return crdReady;
}

function statefulSet(
  ns: string,
  replicas: number,
  options: { name?: string; nodeSelector?: Record<string, string>; onDelete?: boolean } = {},
): V1StatefulSet {
  const name = options.name ?? "swarm-worker";
  const labels = { app: name };
  return {
    apiVersion: "apps/v1",
    kind: "StatefulSet",
    metadata: { name, namespace: ns },
    spec: {
      replicas,
      serviceName: name,
      selector: { matchLabels: labels },
      ...(options.onDelete ? { updateStrategy: { type: "OnDelete" } } : {}),
      template: {
        metadata: { labels },
        spec: {
          ...(options.nodeSelector ? { nodeSelector: options.nodeSelector } : {}),
          containers: [
            {
              name: "worker",
              image: "busybox:1.36",
              volumeMounts: [{ name: "config", mountPath: "/app/config" }],
            },
          ],
          volumes: [{ name: "config", configMap: { name: `${name}-config`, optional: true } }],
        },
      },
    },
  };
}

function deployment(ns: string, replicas: number): V1Deployment {
  const labels = { app: "workers" };
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "workers", namespace: ns },
    spec: {
      replicas,
      selector: { matchLabels: labels },
      template: { metadata: { labels }, spec: { containers: [{ name: "worker", image: "busybox:1.36" }] } },
    },
  };
}

function pool(ns: string, name: string, spec: Record<string, unknown>): SwarmPoolObject {
  return { apiVersion: POOL.apiVersion, kind: POOL.kind, metadata: { name, namespace: ns }, spec };
}

function jobs(...names: string[]): string[] {
  return names.map((n) => `stream:${n}`);
}

interface ControllerOptions {
  client?: KubeClient;
  identity?: string;
  releaseOnStop?: boolean;
}

/** startController runs a controller for one namespace with short lease durations; stopped after the test. */
function startController(t: TestContext, ns: string, options: ControllerOptions = {}): SwarmController {
  const controller = new SwarmController(options.client ?? admin(), {
    namespace: ns,
    lease: {
      namespace: ns,
      name: LEASE,
      identity: options.identity ?? "swarm-test",
      leaseDurationMs: 3_000,
      renewDeadlineMs: 2_000,
      retryPeriodMs: 250,
      releaseOnStop: options.releaseOnStop,
    },
    progressRequeueMs: 2_000,
  });
  controller.start();
  t.after(() => controller.stop());
  return controller;
}

/**
 * idle waits until the controller has finished reconciling (its reconcile count stays put for a
 * while), so that what it does next can only be the answer to the test's next change.
 */
async function idle(controller: SwarmController, quietMs = 1_500): Promise<void> {
  let last = -1;
  let since = Date.now();
  await eventually(async () => {
    const count = await controller.metrics.count("reconciles");
    if (count !== last) {
      last = count;
      since = Date.now();
    }
    return Date.now() - since >= quietMs;
  }, "the controller to be idle");
}

type Pool = SwarmPoolObject & { status?: PoolStatus; metadata: { generation?: number } };

/** waitPool waits until the pool's status passes `check`; the message of the last miss is kept. */
function waitPool(ns: string, name: string, check: (p: Pool) => boolean, what: string): Promise<Pool> {
  return waitForObject<Pool, Pool>(
    admin(),
    { ...POOL, namespace: ns, name },
    (p) =>
      p && check(p)
        ? { state: "done", value: p }
        : { state: "waiting", message: `${what}; status: ${JSON.stringify(p?.status ?? {})}` },
    WAIT,
  );
}

function condition(p: Pool, type: string): { status: string; reason: string; message: string } | undefined {
  return p.status?.conditions?.find((c) => c.type === type);
}

/** settled: the status describes the current generation, every worker is Ready, nothing is pending. */
function settled(workers: number): (p: Pool) => boolean {
  return (p) =>
    p.status?.observedGeneration === p.metadata.generation &&
    p.status?.workerCount === workers &&
    (p.status?.pendingRestarts ?? []).length === 0 &&
    condition(p, "Ready")?.status === "True";
}

async function workerConfig(ns: string, name = "swarm-worker-config"): Promise<WorkerConfig> {
  const cm = await admin().core.readNamespacedConfigMap({ namespace: ns, name });
  return parseWorkerConfig(cm.data?.["config.yml"] ?? "");
}

function entries(config: WorkerConfig): Record<string, { jobs: string[]; version: number }> {
  return Object.fromEntries([...config].map(([w, e]) => [w, { jobs: [...e.jobs], version: e.version }]));
}

async function podUids(ns: string): Promise<Map<string, string>> {
  const pods = await admin().core.listNamespacedPod({ namespace: ns });
  return new Map(
    pods.items
      .filter((p) => !p.metadata?.deletionTimestamp)
      .map((p) => [p.metadata?.name ?? "", p.metadata?.uid ?? ""]),
  );
}

/** restartedPods names the pods of `before` whose uid changed (or that are gone). */
function restartedPods(before: Map<string, string>, after: Map<string, string>): string[] {
  return [...before]
    .filter(([name, uid]) => after.get(name) !== uid)
    .map(([name]) => name)
    .sort();
}

async function scale(
  ns: string,
  kind: "StatefulSet" | "Deployment",
  name: string,
  replicas: number,
): Promise<void> {
  await patchObject(
    admin(),
    { apiVersion: "apps/v1", kind, namespace: ns, name },
    { spec: { replicas } },
    "merge",
  );
}

async function setJobs(ns: string, name: string, list: string[]): Promise<void> {
  await patchObject(admin(), { ...POOL, namespace: ns, name }, { spec: { jobs: { inline: list } } }, "merge");
}

/** setJobsConfigMap replaces the data of the jobs ConfigMap `swarm-jobs` (a null value removes a key). */
async function setJobsConfigMap(ns: string, data: Record<string, string | null>): Promise<void> {
  await patchObject(
    admin(),
    { apiVersion: "v1", kind: "ConfigMap", namespace: ns, name: "swarm-jobs" },
    { data },
    "merge",
  );
}

async function podsReady(ns: string, count: number): Promise<void> {
  await eventually(async () => {
    const pods = await admin().core.listNamespacedPod({ namespace: ns });
    const ready = pods.items.filter(
      (p) =>
        !p.metadata?.deletionTimestamp &&
        p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
    );
    return ready.length === count && pods.items.length === count;
  }, `${count} Ready pods in ${ns}`);
}

/**
 * serviceAccountClient installs manifests/swarm/rbac.yaml's rules for a service account of the
 * test namespace (the ClusterRole as shipped, bound in the namespace; the leader-election Role
 * moved to the namespace) and returns a client that authenticates as that account, so the test
 * fails if the controller needs anything the manifests do not grant.
 */
async function serviceAccountClient(t: TestContext, ns: string): Promise<KubeClient> {
  const docs = parseAllDocuments(readFileSync(new URL("rbac.yaml", manifests), "utf8")).map(
    (d) => d.toJSON() as KubernetesObject & { rules?: unknown },
  );
  const clusterRole = docs.find((d) => d.kind === "ClusterRole");
  const role = docs.find((d) => d.kind === "Role");
  assert.ok(clusterRole && role);
  await applyObject(admin(), clusterRole);
  await applyObject(admin(), { ...role, metadata: { ...role.metadata, namespace: ns } });
  const subject = [{ kind: "ServiceAccount", name: "kubewise-swarm", namespace: ns }];
  await admin().core.createNamespacedServiceAccount({
    namespace: ns,
    body: { metadata: { name: "kubewise-swarm" } },
  });
  for (const [kind, name] of [
    ["ClusterRole", clusterRole.metadata?.name],
    ["Role", role.metadata?.name],
  ]) {
    await applyObject(admin(), {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: { name: `kubewise-swarm-${kind?.toLowerCase()}`, namespace: ns },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind, name },
      subjects: subject,
    } as KubernetesObject);
  }
  const token = await admin().core.createNamespacedServiceAccountToken({
    namespace: ns,
    name: "kubewise-swarm",
    body: { spec: { audiences: [], expirationSeconds: 3600 } },
  });
  const kubeconfig = parse(readFileSync(testCluster().kubeconfig, "utf8")) as {
    users: { name: string; user: Record<string, string> }[];
  };
  kubeconfig.users = kubeconfig.users.map((u) => ({
    name: u.name,
    user: { token: token.status?.token ?? "" },
  }));
  const dir = mkdtempSync(join(tmpdir(), "kubewise-swarm-sa-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, "kubeconfig");
  writeFileSync(file, JSON.stringify(kubeconfig));
  return KubeClient.connect({ kubeconfig: file });
}

function withoutPodNamespace(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.POD_NAMESPACE;
  return env;
}

// ---------------------------------------------------------------------------------------------

test("Verifies that a StatefulSet pool is assigned, rebalanced on 2 -> 3 -> 1 workers and on a job change, restarting only the workers whose jobs changed, as the manifests' service account", async (t) => {
  await ensureCrd();
  const ns = await testNamespace(t, "swarm");
  const client = await serviceAccountClient(t, ns);
  await applyObject(admin(), statefulSet(ns, 2));
  await podsReady(ns, 2);
  const nine = jobs("a", "b", "c", "d", "e", "f", "g", "h", "i");
  await applyObject(
    admin(),
    pool(ns, "streams", {
      workload: { name: "swarm-worker" },
      jobs: { inline: nine },
      refresh: { strategy: "restart" },
    }),
  );
  const controller = startController(t, ns, { client });

  // Two workers, no previous assignment: contiguous ranges of the sorted jobs, every version 0.
  let p = await waitPool(ns, "streams", settled(2), "2 workers assigned");
  let before = await podUids(ns);
  assert.deepEqual(entries(await workerConfig(ns)), {
    "swarm-worker-0": { jobs: jobs("a", "b", "c", "d", "e"), version: 0 },
    "swarm-worker-1": { jobs: jobs("f", "g", "h", "i"), version: 0 },
  });
  assert.deepEqual(p.status?.workers, [
    { name: "swarm-worker-0", jobs: 5, version: 0, dedicated: false },
    { name: "swarm-worker-1", jobs: 4, version: 0, dedicated: false },
  ]);
  assert.equal(condition(p, "Degraded")?.status, "False");
  assert.equal(condition(p, "Progressing")?.status, "False");
  assert.equal(p.status?.jobCount, 9);
  const cm = await admin().core.readNamespacedConfigMap({ namespace: ns, name: "swarm-worker-config" });
  assert.deepEqual(
    cm.metadata?.ownerReferences?.map((o) => [o.kind, o.name, o.controller]),
    [["SwarmPool", "streams", true]],
    "the worker ConfigMap is owned by its pool",
  );
  // The seed's file format, byte for byte.
  assert.match(
    cm.data?.["config.yml"] ?? "",
    /^workloads:\n {2}swarm-worker-0:\n {4}jobs:\n {6}- stream:a\n/,
  );

  // 2 -> 3: the new worker takes 3 jobs (1/3), the two old ones give them up and are restarted.
  await scale(ns, "StatefulSet", "swarm-worker", 3);
  p = await waitPool(ns, "streams", settled(3), "3 workers assigned and restarted");
  let after = await podUids(ns);
  assert.deepEqual(entries(await workerConfig(ns)), {
    "swarm-worker-0": { jobs: jobs("a", "b", "c"), version: 1 },
    "swarm-worker-1": { jobs: jobs("f", "g", "h"), version: 1 },
    "swarm-worker-2": { jobs: jobs("d", "e", "i"), version: 0 },
  });
  assert.deepEqual(restartedPods(before, after), ["swarm-worker-0", "swarm-worker-1"]);
  assert.deepEqual(
    p.status?.workers?.map((w) => [w.name, w.jobs, w.version]),
    [
      ["swarm-worker-0", 3, 1],
      ["swarm-worker-1", 3, 1],
      ["swarm-worker-2", 3, 0],
    ],
  );

  // One job replaced on worker 1: only worker 1 changes, and only it is restarted.
  before = after;
  await setJobs(ns, "streams", jobs("a", "b", "c", "d", "e", "f", "g", "z", "i"));
  await waitPool(
    ns,
    "streams",
    (x) => settled(3)(x) && x.status?.workers?.[1]?.version === 2,
    "the job change",
  );
  after = await podUids(ns);
  assert.deepEqual(entries(await workerConfig(ns)), {
    "swarm-worker-0": { jobs: jobs("a", "b", "c"), version: 1 },
    "swarm-worker-1": { jobs: jobs("f", "g", "z"), version: 2 },
    "swarm-worker-2": { jobs: jobs("d", "e", "i"), version: 0 },
  });
  assert.deepEqual(restartedPods(before, after), ["swarm-worker-1"]);

  // 3 -> 1: worker 0 takes every job once the others are gone, and is restarted once.
  before = after;
  await scale(ns, "StatefulSet", "swarm-worker", 1);
  p = await waitPool(ns, "streams", settled(1), "1 worker assigned");
  after = await podUids(ns);
  const config = entries(await workerConfig(ns));
  assert.deepEqual(Object.keys(config), ["swarm-worker-0"]);
  assert.deepEqual(config["swarm-worker-0"]?.jobs, jobs("a", "b", "c", "d", "e", "f", "g", "i", "z"));
  assert.ok((config["swarm-worker-0"]?.version ?? 0) >= 2);
  assert.deepEqual(restartedPods(before, after), ["swarm-worker-0", "swarm-worker-1", "swarm-worker-2"]);
  assert.deepEqual([...after.keys()], ["swarm-worker-0"]);
  assert.equal(
    await controller.metrics.count("restarts"),
    4,
    "w0 and w1 on 2 -> 3, w1 on the job change, w0 on 3 -> 1",
  );
  assert.equal(condition(p, "Ready")?.reason, "Assigned");
});

test("Verifies that of two controllers only the leader writes, and the standby takes over when the leader stops", async (t) => {
  await ensureCrd();
  const ns = await testNamespace(t, "swarm");
  await applyObject(admin(), statefulSet(ns, 2));
  await applyObject(
    admin(),
    pool(ns, "streams", {
      workload: { name: "swarm-worker" },
      jobs: { inline: jobs("a", "b", "c", "d", "e", "f") },
    }),
  );
  const a = startController(t, ns, { identity: "instance-a" });
  const b = startController(t, ns, { identity: "instance-b" });
  await waitPool(ns, "streams", settled(2), "2 workers assigned");
  await podsReady(ns, 2);
  const twoPods = await podUids(ns);
  assert.deepEqual([...twoPods.keys()].sort(), ["swarm-worker-0", "swarm-worker-1"]);
  await scale(ns, "StatefulSet", "swarm-worker", 3);
  const three = await waitPool(ns, "streams", settled(3), "3 workers assigned");
  assert.ok(a.isLeader() !== b.isLeader(), "exactly one leads");
  const [leader, standby] = a.isLeader() ? [a, b] : [b, a];
  // hot-reload: workers 0 and 1 gave jobs to worker 2 (their versions changed), and yet neither
  // was restarted: they pick the change up from the mounted file.
  assert.deepEqual(
    three.status?.workers?.map((w) => w.version),
    [1, 1, 0],
  );
  // Longer than the controller's requeue: a restart would have happened by now.
  await new Promise((r) => setTimeout(r, 3_000));
  assert.deepEqual(restartedPods(twoPods, await podUids(ns)), [], "hot-reload restarts no pod");
  assert.equal(await leader.metrics.count("restarts"), 0);
  assert.equal(await leader.metrics.count("writes", { object: "pod" }), 0);
  assert.ok((await leader.metrics.count("writes", { object: "configmap" })) >= 2);
  assert.equal(await standby.metrics.count("writes"), 0, "the standby wrote nothing");
  assert.equal(await standby.metrics.count("reconciles"), 0, "the standby did not even reconcile");
  const lease = await admin().coordination.readNamespacedLease({ namespace: ns, name: LEASE });
  assert.equal(lease.spec?.holderIdentity, leader.identity);
  // The standby's caches serve the same assignment.
  assert.deepEqual(Object.keys(standby.assignments()[0]?.workers ?? {}), [
    "swarm-worker-0",
    "swarm-worker-1",
    "swarm-worker-2",
  ]);

  const writesBefore = await leader.metrics.count("writes");
  await leader.stop();
  await eventually(() => standby.isLeader(), "the standby to take over");
  await setJobs(ns, "streams", jobs("a", "b", "c", "d", "e", "f", "g"));
  await waitPool(
    ns,
    "streams",
    (p) => settled(3)(p) && p.status?.jobCount === 7,
    "the new leader to assign 7 jobs",
  );
  assert.equal((await workerConfig(ns)).get("swarm-worker-0")?.jobs.length, 3);
  assert.ok((await standby.metrics.count("writes", { object: "configmap" })) >= 1, "the new leader wrote");
  assert.deepEqual(restartedPods(twoPods, await podUids(ns)), [], "no pod restarted on the job change");
  assert.equal(await standby.metrics.count("restarts"), 0);
  assert.equal(await leader.metrics.count("writes"), writesBefore, "the stopped leader wrote nothing more");
  const after = await admin().coordination.readNamespacedLease({ namespace: ns, name: LEASE });
  assert.equal(after.spec?.holderIdentity, standby.identity);
  assert.equal(after.spec?.leaseTransitions, (lease.spec?.leaseTransitions ?? 0) + 1);
});

test("Verifies that a controller stopped in the middle of a restart rollout leaves it recorded, and the next one finishes it", async (t) => {
  await ensureCrd();
  const ns = await testNamespace(t, "swarm");
  // Worker pods run only on a node carrying this label; taking it away keeps replacements
  // Pending, which holds the one-at-a-time rollout at its first restart.
  const label = `swarm-test.kubewise.dev/${ns}`;
  const node = "kwok-node-0";
  const setLabel = (value: string | null): Promise<unknown> =>
    patchObject(
      admin(),
      { apiVersion: "v1", kind: "Node", name: node },
      { metadata: { labels: { [label]: value } } },
      "merge",
    );
  await setLabel("yes");
  t.after(() => setLabel(null));
  await applyObject(admin(), statefulSet(ns, 3, { nodeSelector: { [label]: "yes" }, onDelete: true }));
  await applyObject(
    admin(),
    pool(ns, "streams", {
      workload: { name: "swarm-worker" },
      jobs: { inline: jobs("a", "b", "c", "d", "e", "f") },
      refresh: { strategy: "restart" },
    }),
  );
  const first = startController(t, ns, { identity: "first" });
  await waitPool(ns, "streams", settled(3), "3 workers assigned");
  const before = await podUids(ns);

  await setLabel(null);
  // a -> x changes worker 0, c -> y worker 1; worker 2 keeps e, f.
  await setJobs(ns, "streams", jobs("x", "b", "y", "d", "e", "f"));
  const midway = await waitPool(
    ns,
    "streams",
    (p) =>
      /waiting for the new pod swarm-worker-0 to be Ready/.test(condition(p, "Progressing")?.message ?? ""),
    "the first restart to wait for its replacement",
  );
  assert.deepEqual(
    midway.status?.pendingRestarts?.map((r) => [r.name, r.uid]),
    [
      ["swarm-worker-0", before.get("swarm-worker-0")],
      ["swarm-worker-1", before.get("swarm-worker-1")],
    ],
  );
  await first.stop();
  // The StatefulSet controller recreates the deleted worker 0 a moment later (Pending, as no node
  // fits): wait for it, so the snapshot holds the replacement the next controller must not touch.
  let stopped = new Map<string, string>();
  await eventually(async () => {
    stopped = await podUids(ns);
    const uid = stopped.get("swarm-worker-0");
    return uid !== undefined && uid !== before.get("swarm-worker-0");
  }, "the replacement of worker 0 to be created");
  assert.deepEqual(
    restartedPods(before, stopped),
    ["swarm-worker-0"],
    "one at a time: worker 1 waits for worker 0",
  );
  assert.equal(await first.metrics.count("restarts"), 1);

  await setLabel("yes");
  const second = startController(t, ns, { identity: "second" });
  const done = await waitPool(ns, "streams", settled(3), "the rollout to finish");
  const after = await podUids(ns);
  assert.deepEqual(restartedPods(before, after), ["swarm-worker-0", "swarm-worker-1"]);
  assert.equal(
    after.get("swarm-worker-0"),
    stopped.get("swarm-worker-0"),
    "worker 0 was not restarted twice",
  );
  assert.equal(await second.metrics.count("restarts"), 1, "the second controller restarted worker 1 only");
  assert.deepEqual(
    done.status?.workers?.map((w) => [w.name, w.version]),
    [
      ["swarm-worker-0", 1],
      ["swarm-worker-1", 1],
      ["swarm-worker-2", 0],
    ],
  );
  assert.deepEqual(entries(await workerConfig(ns))["swarm-worker-0"]?.jobs, jobs("b", "x"));
});

test("Verifies that problems a retry cannot fix set Degraded with a reason, keep the last assignment, and clear when the cluster changes", async (t) => {
  await ensureCrd();
  const ns = await testNamespace(t, "swarm");
  const controller = startController(t, ns);
  const streams = jobs("rt1", "rt2", "a", "b", "c");
  // No workload yet.
  await applyObject(
    admin(),
    pool(ns, "streams", {
      workload: { name: "swarm-worker" },
      jobs: { inline: streams },
      qos: { dedicated: jobs("rt1", "rt2") },
    }),
  );
  let p = await waitPool(
    ns,
    "streams",
    (x) => condition(x, "Degraded")?.reason === "WorkloadNotFound",
    "WorkloadNotFound",
  );
  assert.equal(condition(p, "Ready")?.status, "False");
  assert.match(
    condition(p, "Degraded")?.message ?? "",
    /StatefulSet .*\/swarm-worker \(spec.workload\) does not exist/,
  );

  // Two dedicated jobs plus shared ones need 3 workers; 2 is a user error, not retried hot.
  await applyObject(admin(), statefulSet(ns, 2));
  p = await waitPool(
    ns,
    "streams",
    (x) => condition(x, "Degraded")?.reason === "InsufficientWorkers",
    "InsufficientWorkers",
  );
  assert.equal(condition(p, "Degraded")?.status, "True");
  assert.match(condition(p, "Ready")?.message ?? "", /3 workers/);
  await assert.rejects(
    admin().core.readNamespacedConfigMap({ namespace: ns, name: "swarm-worker-config" }),
    "nothing written",
  );
  assert.ok((await controller.metrics.count("reconciles", { result: "terminal" })) >= 2);
  assert.equal(
    await controller.metrics.count("reconciles", { result: "error" }),
    0,
    "problems are not retried as errors",
  );

  await scale(ns, "StatefulSet", "swarm-worker", 3);
  p = await waitPool(ns, "streams", settled(3), "3 workers assigned");
  assert.equal(condition(p, "Degraded")?.reason, "AsExpected");
  assert.deepEqual(
    p.status?.workers?.map((w) => [w.name, w.jobs, w.dedicated]),
    [
      ["swarm-worker-0", 1, true],
      ["swarm-worker-1", 1, true],
      ["swarm-worker-2", 3, false],
    ],
  );

  // A spec the CRD accepts but the controller cannot (a job listed twice): InvalidSpec, and the
  // last good assignment stays in place.
  const good = await workerConfig(ns);
  await setJobs(ns, "streams", [...streams, "stream:a"]);
  p = await waitPool(ns, "streams", (x) => condition(x, "Degraded")?.reason === "InvalidSpec", "InvalidSpec");
  assert.match(condition(p, "Degraded")?.message ?? "", /spec\.jobs\.inline\.5.*listed more than once/);
  assert.equal(p.status?.observedGeneration, p.metadata.generation);
  assert.deepEqual(entries(await workerConfig(ns)), entries(good));
});

test("Verifies that jobs read from a ConfigMap key are reassigned when the ConfigMap is edited, and a missing key or a value that is not a list sets Degraded", async (t) => {
  await ensureCrd();
  const ns = await testNamespace(t, "swarm");
  await applyObject(admin(), statefulSet(ns, 2));
  await podsReady(ns, 2);
  await admin().core.createNamespacedConfigMap({
    namespace: ns,
    body: {
      metadata: { name: "swarm-jobs" },
      data: { "config.yml": "jobs:\n  - stream:a\n  - stream:b\n  - stream:c\n  - stream:d\n" },
    },
  });
  await applyObject(
    admin(),
    pool(ns, "streams", {
      workload: { name: "swarm-worker" },
      jobs: { configMapKeyRef: { name: "swarm-jobs", key: "config.yml" } },
    }),
  );
  const controller = startController(t, ns);
  let p = await waitPool(ns, "streams", (x) => settled(2)(x) && x.status?.jobCount === 4, "4 jobs assigned");
  const generation = p.metadata.generation;
  assert.deepEqual(entries(await workerConfig(ns)), {
    "swarm-worker-0": { jobs: jobs("a", "b"), version: 0 },
    "swarm-worker-1": { jobs: jobs("c", "d"), version: 0 },
  });

  // The pool does not change, only the ConfigMap: its watch must bring the new list in (the
  // periodic resync is minutes away and a settled pool is not requeued). Each change below waits
  // for the controller to be idle first, so that no reconcile in flight picks it up by chance.
  await idle(controller);
  await setJobsConfigMap(ns, {
    "config.yml": "- stream:a\n- stream:b\n- stream:c\n- stream:e\n- stream:f\n",
  });
  p = await waitPool(ns, "streams", (x) => settled(2)(x) && x.status?.jobCount === 5, "the edited job list");
  assert.equal(p.metadata.generation, generation, "the pool itself was not touched");
  const edited = entries(await workerConfig(ns));
  // d is gone, e and f are new: no job kept moves, the new ones balance the pool at 3 / 2.
  assert.deepEqual(edited, {
    "swarm-worker-0": { jobs: jobs("a", "b", "e"), version: 1 },
    "swarm-worker-1": { jobs: jobs("c", "f"), version: 1 },
  });

  // The key removed: JobsNotFound, and the last good assignment stays.
  await idle(controller);
  await setJobsConfigMap(ns, { "config.yml": null, "other.yml": "- stream:x\n" });
  p = await waitPool(
    ns,
    "streams",
    (x) => condition(x, "Degraded")?.reason === "JobsNotFound",
    "JobsNotFound",
  );
  assert.equal(condition(p, "Degraded")?.status, "True");
  assert.equal(condition(p, "Ready")?.status, "False");
  assert.match(
    condition(p, "Degraded")?.message ?? "",
    new RegExp(`ConfigMap ${ns}/swarm-jobs has no key "config\\.yml" \\(spec\\.jobs\\.configMapKeyRef\\)`),
  );
  assert.deepEqual(entries(await workerConfig(ns)), edited, "the last assignment is kept");

  // A value that is not a list: InvalidJobs, naming the ConfigMap key.
  await idle(controller);
  await setJobsConfigMap(ns, { "config.yml": "just-a-string\n" });
  p = await waitPool(ns, "streams", (x) => condition(x, "Degraded")?.reason === "InvalidJobs", "InvalidJobs");
  assert.equal(condition(p, "Degraded")?.status, "True");
  assert.match(
    condition(p, "Degraded")?.message ?? "",
    new RegExp(`ConfigMap ${ns}/swarm-jobs key config\\.yml: .*must be a list of names`, "s"),
  );
  assert.deepEqual(entries(await workerConfig(ns)), edited, "the last assignment is kept");

  // An emptied value is not "no jobs" (which would unassign every worker) but InvalidJobs too.
  await idle(controller);
  await setJobsConfigMap(ns, { "config.yml": "" });
  p = await waitPool(
    ns,
    "streams",
    (x) => /lists no jobs/.test(condition(x, "Degraded")?.message ?? ""),
    "InvalidJobs for an empty value",
  );
  assert.equal(condition(p, "Degraded")?.reason, "InvalidJobs");
  assert.deepEqual(entries(await workerConfig(ns)), edited, "the last assignment is kept");

  // The ConfigMap deleted: JobsNotFound; recreated: assigned again.
  await idle(controller);
  await admin().core.deleteNamespacedConfigMap({ namespace: ns, name: "swarm-jobs" });
  p = await waitPool(
    ns,
    "streams",
    (x) =>
      /swarm-jobs \(spec\.jobs\.configMapKeyRef\) does not exist/.test(
        condition(x, "Degraded")?.message ?? "",
      ),
    "JobsNotFound for a missing ConfigMap",
  );
  assert.equal(condition(p, "Degraded")?.reason, "JobsNotFound");
  await admin().core.createNamespacedConfigMap({
    namespace: ns,
    body: {
      metadata: { name: "swarm-jobs" },
      data: { "config.yml": '["stream:a", "stream:b", "stream:c"]' },
    },
  });
  p = await waitPool(
    ns,
    "streams",
    (x) => settled(2)(x) && x.status?.jobCount === 3,
    "the recreated job list",
  );
  assert.equal(condition(p, "Degraded")?.reason, "AsExpected");
  assert.deepEqual(
    Object.values(entries(await workerConfig(ns)))
      .flatMap((e) => e.jobs)
      .sort(),
    jobs("a", "b", "c"),
  );
  assert.equal(
    await controller.metrics.count("reconciles", { result: "error" }),
    0,
    "problems are not retried as errors",
  );
  assert.ok((await controller.metrics.count("reconciles", { result: "terminal" })) >= 4);
});

test("Verifies that a Deployment pool assigns jobs to pod names and, on scale-down, moves only the removed pod's jobs", async (t) => {
  await ensureCrd();
  const ns = await testNamespace(t, "swarm");
  await applyObject(admin(), deployment(ns, 3));
  await podsReady(ns, 3);
  await applyObject(
    admin(),
    pool(ns, "streams", {
      workload: { kind: "Deployment", name: "workers" },
      jobs: { inline: jobs("a", "b", "c", "d", "e", "f", "g") },
    }),
  );
  const controller = startController(t, ns);
  await waitPool(ns, "streams", settled(3), "3 pods assigned");
  const before = await podUids(ns);
  const pods = [...before.keys()].sort();
  const three = await workerConfig(ns, "workers-config");
  assert.deepEqual([...three.keys()].sort(), pods, "one entry per pod, named after it");

  await scale(ns, "Deployment", "workers", 2);
  await waitPool(ns, "streams", settled(2), "2 pods assigned");
  const two = await workerConfig(ns, "workers-config");
  const [gone] = [...three.keys()].filter((w) => !two.has(w));
  assert.ok(gone);
  // hot-reload: the two pods that took over the removed pod's jobs run on (their versions changed).
  assert.ok(
    [...two.values()].some((e) => e.version > 0),
    "a remaining pod's entry changed",
  );
  // Longer than the controller's requeue: a restart would have happened by now.
  await new Promise((r) => setTimeout(r, 3_000));
  assert.deepEqual(restartedPods(before, await podUids(ns)), [gone], "only the removed pod is gone");
  assert.equal(await controller.metrics.count("restarts"), 0);
  assert.equal(await controller.metrics.count("writes", { object: "pod" }), 0);
  for (const [worker, entry] of two) {
    const kept = three.get(worker)?.jobs ?? [];
    assert.ok(
      kept.every((j) => entry.jobs.includes(j)),
      `${worker} kept its jobs`,
    );
  }
  const moved = [...two.values()]
    .flatMap((e) => e.jobs)
    .filter((j) => !(three.get(gone)?.jobs ?? []).includes(j));
  assert.equal(moved.length + (three.get(gone)?.jobs.length ?? 0), 7, "every job assigned once");
});

test("Verifies that a Deployment pool with refresh: restart restarts only the workers whose jobs changed, each once, and the replacements inherit their entries", async (t) => {
  await ensureCrd();
  const ns = await testNamespace(t, "swarm");
  await applyObject(admin(), deployment(ns, 3));
  await podsReady(ns, 3);
  await applyObject(
    admin(),
    pool(ns, "streams", {
      workload: { kind: "Deployment", name: "workers" },
      jobs: { inline: jobs("a", "b", "c", "d", "e", "f", "g", "h", "i") },
      refresh: { strategy: "restart" },
    }),
  );
  const controller = startController(t, ns);
  await waitPool(ns, "streams", settled(3), "3 pods assigned");
  const before = await podUids(ns);
  const initial = await workerConfig(ns, "workers-config");
  const [first, second, third] = [...initial.keys()];
  assert.ok(first && second && third);
  assert.deepEqual(initial.get(third)?.jobs, jobs("g", "h", "i"));
  assert.equal(await controller.metrics.count("restarts"), 0);

  // a -> y on the first worker, d -> z on the second: those two change, the third does not. While
  // the first pod is being replaced, its jobs must not go to the others (which would change them
  // and restart them too).
  await setJobs(ns, "streams", jobs("y", "b", "c", "z", "e", "f", "g", "h", "i"));
  await waitPool(
    ns,
    "streams",
    (x) => settled(3)(x) && (x.status?.workers ?? []).filter((w) => w.version === 1).length === 2,
    "the job change rolled out",
  );
  // Longer than the controller's requeue: a chain would show up as more restarts by now.
  await new Promise((r) => setTimeout(r, 3_000));
  const after = await podUids(ns);
  assert.deepEqual(restartedPods(before, after), [first, second].sort(), "only the changed workers");
  assert.equal(after.get(third), before.get(third), "the unchanged worker's pod runs on");
  assert.equal(await controller.metrics.count("restarts"), 2, "each changed worker restarted once");
  const config = await workerConfig(ns, "workers-config");
  assert.deepEqual([...config.keys()].sort(), [...after.keys()].sort(), "one entry per running pod");
  assert.deepEqual(config.get(third), { jobs: jobs("g", "h", "i"), version: 0 });
  assert.deepEqual(
    [...config]
      .filter(([w]) => w !== third)
      .map(([, e]) => [e.jobs.join(","), e.version])
      .sort(),
    [
      [jobs("b", "c", "y").join(","), 1],
      [jobs("e", "f", "z").join(","), 1],
    ],
    "the replacements inherited the changed entries",
  );
});

test("Verifies that the leader election over a real Lease hands over on expiry when the leader vanishes without releasing", async (t) => {
  const ns = await testNamespace(t, "lease");
  const events: string[] = [];
  const elector = (identity: string): LeaderElector => {
    const e = new LeaderElector(admin(), {
      namespace: ns,
      name: "election",
      identity,
      leaseDurationMs: 2_000,
      renewDeadlineMs: 1_500,
      retryPeriodMs: 200,
      releaseOnStop: false,
      onStartedLeading: () => events.push(`${identity} started`),
      onStoppedLeading: () => events.push(`${identity} stopped`),
    });
    t.after(() => e.stop());
    return e;
  };
  const a = elector("a");
  a.start();
  await eventually(() => a.isLeader(), "a to lead");
  const b = elector("b");
  b.start();
  await eventually(() => b.leader() === "a", "b to see a");
  const held = await admin().coordination.readNamespacedLease({ namespace: ns, name: "election" });
  assert.equal(held.spec?.holderIdentity, "a");
  assert.equal(held.spec?.leaseDurationSeconds, 2);
  assert.equal(b.isLeader(), false);
  const vanished = Date.now();
  await a.stop();
  await eventually(() => b.isLeader(), "b to take over after the lease expires", 10_000);
  // Not sooner than the lease allows: a renewed at most a few retry periods before it vanished.
  assert.ok(Date.now() - vanished >= 1_000, "b waited for the lease to run out");
  const taken: V1Lease = await admin().coordination.readNamespacedLease({ namespace: ns, name: "election" });
  assert.equal(taken.spec?.holderIdentity, "b");
  assert.equal(taken.spec?.leaseTransitions, (held.spec?.leaseTransitions ?? 0) + 1);
  assert.deepEqual(events, ["a started", "a stopped", "b started"]);
});

test("Verifies that `kubewise swarm run` serves /assignments, /healthz and /metrics, and on SIGTERM stops cleanly and releases its lease", async (t) => {
  await ensureCrd();
  const ns = await testNamespace(t, "swarm");
  await applyObject(admin(), statefulSet(ns, 2));
  await applyObject(
    admin(),
    pool(ns, "streams", { workload: { name: "swarm-worker" }, jobs: { inline: jobs("a", "b", "c") } }),
  );
  let output = "";
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      "src/cli/main.ts",
      "--kubeconfig",
      testCluster().kubeconfig,
      "swarm",
      "run",
      "--namespace",
      ns,
      "--listen",
      "127.0.0.1:0",
      "--identity",
      "cli",
    ],
    { stdio: ["ignore", "pipe", "pipe"], env: withoutPodNamespace() },
  );
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  t.after(() => child.kill("SIGKILL"));
  child.stdout.on("data", (b: Buffer) => (output += b.toString()));
  child.stderr.on("data", (b: Buffer) => (output += b.toString()));
  await eventually(() => /"port":\d+/.test(output), "the CLI to listen", 60_000);
  const port = Number(/"port":(\d+)/.exec(output)?.[1]);
  const get = (path: string): Promise<Response> => fetch(`http://127.0.0.1:${port}${path}`);
  assert.equal((await get("/healthz")).status, 200);

  let body: AssignmentsResponse | undefined;
  await eventually(async () => {
    body = (await (await get("/assignments")).json()) as AssignmentsResponse;
    return Object.keys(body.pools[`${ns}/streams`]?.workers ?? {}).length === 2 && body.leader;
  }, "the CLI to assign the pool");
  assert.equal(body?.identity, "cli");
  assert.deepEqual(body?.pools[`${ns}/streams`]?.workers, {
    "swarm-worker-0": { jobs: jobs("a", "b"), version: 0 },
    "swarm-worker-1": { jobs: jobs("c"), version: 0 },
  });
  assert.equal((await get("/readyz")).status, 200);
  const metrics = await (await get("/metrics")).text();
  assert.match(metrics, /^kubewise_swarm_leader 1$/m);
  assert.match(metrics, /^kubewise_swarm_reconciles_total\{result="success"\} [1-9]/m);
  assert.match(metrics, /^process_cpu_seconds_total /m);
  assert.equal((await get("/nope")).status, 404);

  child.kill("SIGTERM");
  assert.equal(await exited, 0, output);
  assert.match(output, /swarm controller stopped/);
  const lease = await admin().coordination.readNamespacedLease({ namespace: ns, name: LEASE });
  assert.equal(lease.spec?.holderIdentity ?? "", "", "released on the way out");
});

test("Verifies that the introspection server answers from a standby's caches: the worker ConfigMap as the workers read it", async (t) => {
  await ensureCrd();
  const ns = await testNamespace(t, "swarm");
  await applyObject(admin(), statefulSet(ns, 1));
  await applyObject(
    admin(),
    pool(ns, "streams", { workload: { name: "swarm-worker" }, jobs: { inline: jobs("a", "b") } }),
  );
  // Written by "another controller": an entry at version 3, as the workers see it.
  const text = "workloads:\n  swarm-worker-0:\n    jobs:\n      - stream:a\n    version: 3\n";
  await admin().core.createNamespacedConfigMap({
    namespace: ns,
    body: { metadata: { name: "swarm-worker-config" }, data: { "config.yml": text } },
  });
  // A foreign holder keeps the lease, so this controller stays on standby.
  await admin().coordination.createNamespacedLease({
    namespace: ns,
    body: {
      metadata: { name: LEASE },
      spec: { holderIdentity: "someone-else", leaseDurationSeconds: 3600, leaseTransitions: 0 },
    },
  });
  const standby = startController(t, ns, { identity: "standby" });
  await eventually(() => standby.synced() && standby.leader() === "someone-else", "the standby to sync");
  const server = new IntrospectionServer(standby, { host: "127.0.0.1", port: 0 });
  const { port } = await server.start();
  t.after(() => server.stop());
  const body = (await (await fetch(`http://127.0.0.1:${port}/assignments`)).json()) as AssignmentsResponse;
  assert.equal(body.identity, "standby");
  assert.equal(body.leader, false);
  assert.equal(body.holder, "someone-else");
  const streams = body.pools[`${ns}/streams`];
  assert.deepEqual(streams?.workers, { "swarm-worker-0": { jobs: ["stream:a"], version: 3 } });
  assert.deepEqual(streams?.workload, { kind: "StatefulSet", name: "swarm-worker" });
  assert.deepEqual(streams?.configMap, { name: "swarm-worker-config", key: "config.yml" });
  assert.equal(streams?.strategy, "hot-reload");
  assert.equal(standby.isLeader(), false);
  const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  assert.match(metrics, /^kubewise_swarm_leader 0$/m);
  assert.doesNotMatch(metrics, /process_cpu/, "process metrics only when asked for");
});

test("Verifies that every object of examples/swarm is accepted by the API server (server-side dry-run, after the CRD)", async (t) => {
  await ensureCrd();
  const ns = await testNamespace(t, "swarm-examples");
  const dir = new URL("../../examples/swarm/", import.meta.url);
  const files = readdirSync(dir)
    .filter((f) => f.endsWith(".yaml") && f !== "kustomization.yaml")
    .sort();
  // The kustomization must build with the cluster's own kubectl, as `kubectl apply -k` would.
  const built = execFileSync(join(testCluster().state.binDir, "kubectl"), ["kustomize", fileURLToPath(dir)], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  });
  const kinds = parseAllDocuments(built).map((d) => (d.toJS() as KubernetesObject).kind);
  assert.deepEqual(kinds.sort(), ["Namespace", "StatefulSet", "SwarmPool"]);

  const checked: string[] = [];
  const refused: string[] = [];
  for (const file of files) {
    const docs = parseAllDocuments(readFileSync(new URL(file, dir), "utf8")).map((d) => d.toJS() as unknown);
    // jobs.yaml and workers.yaml are plain lists for `kubewise swarm assign`, not objects.
    const objects = docs.filter(
      (d): d is KubernetesObject => typeof d === "object" && d !== null && "apiVersion" in d && "kind" in d,
    );
    for (const obj of objects) {
      // The Namespace is cluster-scoped; everything else goes to the test namespace, as
      // kustomize's `namespace: swarm` would put it in swarm.
      const target: KubernetesObject =
        obj.kind === "Namespace" ? obj : { ...obj, metadata: { ...obj.metadata, namespace: ns } };
      const what = `${file}: ${obj.kind} ${obj.metadata?.name}`;
      try {
        const { object } = await applyObject(admin(), target, { dryRun: true });
        assert.equal(object.kind, obj.kind);
        checked.push(what);
      } catch (err) {
        refused.push(`${what}: ${(err as Error).message}`);
      }
    }
  }
  for (const line of checked) t.diagnostic(`accepted ${line}`);
  assert.deepEqual(refused, [], `examples/swarm: the API server refused:\n${refused.join("\n")}`);
  for (const expected of [
    "Namespace swarm",
    "StatefulSet swarm-worker",
    "SwarmPool streams",
    "ConfigMap swarm-jobs",
    "SwarmPool streams-from-configmap",
  ]) {
    assert.ok(
      checked.some((c) => c.endsWith(expected)),
      `${expected} checked (${checked.join("; ")})`,
    );
  }
  // Nothing was created: a dry-run leaves the namespace empty of pools.
  const pools = (await admin().custom.listNamespacedCustomObject({
    group: "swarm.kubewise.dev",
    version: "v1alpha1",
    plural: "swarmpools",
    namespace: ns,
  })) as { items: unknown[] };
  assert.equal(pools.items.length, 0);
});
