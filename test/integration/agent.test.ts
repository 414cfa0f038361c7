import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import type { TLSSocket } from "node:tls";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import {
  AgentError,
  ApiServerPodSource,
  apiServerPodSources,
  KubeletPodSource,
  monitoredPods,
  NodeAgent,
  parseAgentConfig,
  taskFromPod,
} from "../../src/agent/index.js";
import { makeTestPki } from "../../src/agent/testdata/certs.js";
import {
  buildTree,
  containerId,
  fixtureValues,
  makeTempRoot,
  removeTree,
} from "../../src/agent/testdata/fixtures.js";
import {
  waitForObject,
  waitForPodReady,
  type V1Job,
  type V1Pod,
  type V1PolicyRule,
} from "../../src/kube/index.js";
import { silentLogger } from "../../src/log.js";
import { serviceAccountClient, testCluster, testNamespace } from "./support/cluster.js";

// The node agent against the embedded cluster: pods are real API objects that KWOK runs on
// fake nodes kwok-node-0..2; only the cgroup trees are fixtures, since no container runs.

const resources = {
  burstable: { requests: { cpu: "100m", memory: "64Mi" } },
  guaranteed: { requests: { cpu: "250m", memory: "128Mi" }, limits: { cpu: "250m", memory: "128Mi" } },
};

function pod(
  namespace: string,
  name: string,
  node: string,
  qos: keyof typeof resources = "burstable",
): V1Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace, labels: { "app.kubernetes.io/name": name } },
    // spec.nodeName binds the pod at once, as a DaemonSet or a static pod is bound: no scheduler.
    spec: { nodeName: node, containers: [{ name: "main", image: "busybox", resources: resources[qos] }] },
  };
}

async function createPods(pods: readonly V1Pod[]): Promise<V1Pod[]> {
  const { client } = testCluster();
  return Promise.all(
    pods.map((p) => client.core.createNamespacedPod({ namespace: p.metadata?.namespace ?? "", body: p })),
  );
}

async function readyPods(pods: readonly V1Pod[]): Promise<V1Pod[]> {
  const { client } = testCluster();
  return Promise.all(
    pods.map((p) =>
      waitForPodReady(client, p.metadata?.namespace ?? "", p.metadata?.name ?? "", { timeoutMs: 60_000 }),
    ),
  );
}

/** eventually polls `get` until `ok` holds; the sources read memory, so polling them costs nothing. */
async function eventually<T>(
  what: string,
  get: () => Promise<T>,
  ok: (value: T) => boolean,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T = await get();
  while (!ok(last)) {
    if (Date.now() > deadline) assert.fail(`${what}: still ${JSON.stringify(last)} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
    last = await get();
  }
  return last;
}

const key = (p: V1Pod): string => `${p.metadata?.namespace}/${p.metadata?.name}`;

async function listed(source: { listPods(): Promise<V1Pod[]> }): Promise<string[]> {
  return (await source.listPods()).map(key).sort();
}

test("Verifies that the apiserver source lists exactly this node's pods in the monitored namespaces, following additions and deletions", async (t) => {
  const { client } = testCluster();
  const [ns1, ns2, other] = await Promise.all([
    testNamespace(t, "agent"),
    testNamespace(t, "agent"),
    testNamespace(t, "agent"),
  ]);
  const created = await createPods([
    pod(ns1, "a", "kwok-node-0"),
    pod(ns1, "b", "kwok-node-1"),
    pod(ns2, "c", "kwok-node-0"),
    pod(ns2, "d", "kwok-node-2"),
    pod(other, "e", "kwok-node-0"),
  ]);
  const source = new ApiServerPodSource({
    client,
    nodeName: "kwok-node-0",
    namespaces: [ns1, ns2],
    syncTimeoutMs: 10_000,
  });
  t.after(() => source.stop());

  const first = await source.listPods();
  assert.deepEqual(first.map(key).sort(), [`${ns1}/a`, `${ns2}/c`].sort());
  const uids = new Map(created.map((p) => [key(p), p.metadata?.uid]));
  for (const p of first) {
    assert.equal(p.metadata?.uid, uids.get(key(p)), "the real pod, uid and all");
    assert.equal(p.spec?.nodeName, "kwok-node-0");
  }
  // One cluster-wide watch instead: the unmonitored namespace's pod too (the runner filters later).
  const everywhere = new ApiServerPodSource({
    client,
    nodeName: "kwok-node-0",
    namespaces: "all",
    syncTimeoutMs: 10_000,
  });
  t.after(() => everywhere.stop());
  const all = await everywhere.listPods();
  const ours = all.map(key).filter((k) => [ns1, ns2, other].some((n) => k.startsWith(`${n}/`)));
  assert.deepEqual(ours.sort(), [`${ns1}/a`, `${ns2}/c`, `${other}/e`].sort());
  assert.ok(all.every((p) => p.spec?.nodeName === "kwok-node-0"));
  await everywhere.stop();

  await createPods([pod(ns1, "f", "kwok-node-0"), pod(ns1, "g", "kwok-node-1")]);
  await eventually(
    "pod f appears",
    () => listed(source),
    (l) => l.includes(`${ns1}/f`),
  );
  await client.core.deleteNamespacedPod({ namespace: ns1, name: "a" });
  const after = await eventually(
    "pod a goes",
    () => listed(source),
    (l) => !l.includes(`${ns1}/a`),
  );
  assert.deepEqual(after, [`${ns1}/f`, `${ns2}/c`].sort());

  // A finished pod has no cgroup: once its Job completes, the pod stays in the API but leaves the source.
  const job: V1Job = {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: { name: "once", namespace: ns2 },
    spec: {
      template: {
        spec: {
          nodeName: "kwok-node-0",
          restartPolicy: "Never",
          containers: [{ name: "work", image: "busybox", command: ["true"] }],
        },
      },
    },
  };
  await client.batch.createNamespacedJob({ namespace: ns2, body: job });
  await waitForObject<V1Job, true>(
    client,
    { apiVersion: "batch/v1", kind: "Job", namespace: ns2, name: "once" },
    (j) =>
      j?.status?.conditions?.some((c) => c.type === "Complete" && c.status === "True")
        ? { state: "done", value: true }
        : { state: "waiting" },
    { timeoutMs: 60_000 },
  );
  const jobPods = await client.core.listNamespacedPod({ namespace: ns2, labelSelector: "job-name=once" });
  assert.equal(jobPods.items[0]?.status?.phase, "Succeeded");
  assert.equal(jobPods.items[0]?.spec?.nodeName, "kwok-node-0");
  const final = await eventually(
    "the finished Job pod leaves",
    () => listed(source),
    (l) => !l.some((k) => k.startsWith(`${ns2}/once-`)),
  );
  assert.deepEqual(final, [`${ns1}/f`, `${ns2}/c`].sort());
});

test("Verifies that without RBAC the apiserver source says which permission is missing, and works once manifests/agent's rules are granted", async (t) => {
  const { client } = testCluster();
  const ns = await testNamespace(t, "agent");
  await createPods([pod(ns, "a", "kwok-node-0")]);
  const agentClient = await serviceAccountClient(t, ns, "agent");
  const source = new ApiServerPodSource({
    client: agentClient,
    nodeName: "kwok-node-0",
    namespaces: [ns],
    syncTimeoutMs: 10_000,
    initialBackoffMs: 100,
    maxBackoffMs: 400,
  });
  t.after(() => source.stop());

  await assert.rejects(source.listPods(), (err: unknown) => {
    assert.ok(err instanceof AgentError, String(err));
    assert.equal(err.reason, "pod-source");
    assert.match(err.message, new RegExp(`refused to list the pods of node kwok-node-0 in namespace ${ns}`));
    assert.match(
      err.message,
      /system:serviceaccount:[^:]+:agent/,
      "the API server's own words name the identity",
    );
    assert.match(err.message, /needs list and watch on pods/);
    assert.match(err.message, /manifests\/agent\/rbac\.yaml/);
    return true;
  });

  // Grant exactly the rules the shipped ClusterRole has, as a Role in the namespace.
  const rbacDocs = parseAllDocuments(readFileSync("manifests/agent/rbac.yaml", "utf8")).map(
    (d) => d.toJS() as { kind: string; rules?: V1PolicyRule[] },
  );
  const rules = rbacDocs.find((d) => d.kind === "ClusterRole")?.rules;
  assert.ok(rules);
  await client.rbac.createNamespacedRole({ namespace: ns, body: { metadata: { name: "agent" }, rules } });
  await client.rbac.createNamespacedRoleBinding({
    namespace: ns,
    body: {
      metadata: { name: "agent" },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "agent" },
      subjects: [{ kind: "ServiceAccount", name: "agent", namespace: ns }],
    },
  });
  // The watcher relists on its own backoff; listPods fails at once until it has.
  const pods = await eventually(
    "the source recovers after the grant",
    () => listed(source).catch((err: Error) => [err.message]),
    (l) => l.length === 1 && l[0] === `${ns}/a`,
  );
  assert.deepEqual(pods, [`${ns}/a`]);
});

/** treeFor lays out a systemd/v2 cgroup tree holding the given pods, fixture values in their order. */
function treeFor(t: TestContext, pods: readonly V1Pod[]): string {
  const root = makeTempRoot();
  t.after(() => removeTree(root));
  buildTree(
    root,
    { version: "v2", driver: "systemd" },
    pods.map((p, i) => {
      const task = taskFromPod(p);
      return { qos: task.qos, uid: task.cgroupUid, containers: task.containers, values: fixtureValues(i) };
    }),
  );
  return root;
}

/** giveContainerIds patches containerd IDs into the pods' status, as a kubelet would; KWOK writes "kwok://main". */
async function giveContainerIds(pods: readonly V1Pod[]): Promise<V1Pod[]> {
  const { client } = testCluster();
  return Promise.all(
    pods.map((p) =>
      client.core.patchNamespacedPodStatus({
        namespace: p.metadata?.namespace ?? "",
        name: p.metadata?.name ?? "",
        body: [
          {
            op: "replace",
            path: "/status/containerStatuses/0/containerID",
            value: `containerd://${containerId(p.metadata?.uid ?? "", 0)}`,
          },
        ],
      }),
    ),
  );
}

test("Verifies that the kubelet source reads a /pods answer made of the cluster's real pods over mutual TLS", async (t) => {
  const { client } = testCluster();
  const [ns, other] = await Promise.all([testNamespace(t, "agent"), testNamespace(t, "agent")]);
  const mine = await readyPods(
    await createPods([pod(ns, "web", "kwok-node-1"), pod(ns, "db", "kwok-node-1", "guaranteed")]),
  );
  await readyPods(
    await createPods([pod(other, "noise", "kwok-node-1"), pod(ns, "elsewhere", "kwok-node-2")]),
  );
  // The kubelet's /pods holds every pod bound to its node, whatever the namespace.
  const items = (await client.core.listPodForAllNamespaces({ fieldSelector: "spec.nodeName=kwok-node-1" }))
    .items;
  assert.ok(
    items.some((p) => p.metadata?.namespace === other),
    "the unmonitored pod is served too",
  );

  const pki = makeTestPki(makeTempRoot("kubewise-pki-"));
  t.after(() => removeTree(pki.dir));
  const peers: string[] = [];
  const kubelet: Server = createServer(
    {
      cert: pki.pem(pki.serverCert),
      key: pki.pem(pki.serverKey),
      ca: pki.pem(pki.caCert),
      requestCert: true,
      rejectUnauthorized: true,
    },
    (req, res) => {
      peers.push(String((req.socket as TLSSocket).getPeerCertificate().subject?.CN));
      if (req.url !== "/pods") return res.writeHead(404).end();
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ kind: "PodList", apiVersion: "v1", metadata: {}, items }));
    },
  );
  await new Promise<void>((resolve) => kubelet.listen(0, "127.0.0.1", resolve));
  t.after(() => {
    kubelet.closeAllConnections();
    return new Promise<void>((resolve) => kubelet.close(() => resolve()));
  });
  const endpoint = `https://127.0.0.1:${(kubelet.address() as AddressInfo).port}`;

  const source = new KubeletPodSource({
    endpoint,
    serverVerify: pki.caCert,
    clientCertPath: pki.clientCert,
    clientKeyPath: pki.clientKey,
    timeoutMs: 5_000,
  });
  const pods = await source.listPods();
  assert.deepEqual(pods.map((p) => p.metadata?.uid).sort(), items.map((p) => p.metadata?.uid).sort());
  assert.deepEqual(peers, ["kubewise-agent"], "the server saw the agent's client certificate");
  const kept = monitoredPods(pods, { namespaces: [ns] });
  assert.deepEqual(kept.map(key).sort(), [`${ns}/db`, `${ns}/web`]);
  const tasks = kept.map(taskFromPod);
  for (const task of tasks) {
    const real = mine.find((p) => key(p) === task.name);
    assert.equal(task.id, real?.metadata?.uid);
  }
  assert.deepEqual(tasks.map((x) => x.qos).sort(), ["burstable", "guaranteed"]);

  const anonymous = new KubeletPodSource({ endpoint, serverVerify: pki.caCert, timeoutMs: 5_000 });
  await assert.rejects(
    anonymous.listPods(),
    (err: unknown) => err instanceof AgentError && err.reason === "pod-source",
    "the kubelet demands a client certificate",
  );

  // Through the agent: only the monitored namespace's pods become task metrics.
  const agent = new NodeAgent({
    config: parseAgentConfig({
      cgroup_driver: "systemd",
      pod_source: "kubelet",
      kubelet_endpoint: endpoint,
      ssl: { server_verify: pki.caCert, client_cert_path: pki.clientCert, client_key_path: pki.clientKey },
      monitored_namespaces: [ns],
    }),
    log: silentLogger,
    cgroupRoot: treeFor(t, kept),
    listen: "",
    nodeName: "kwok-node-1",
  });
  const report = await agent.runner.runOnce();
  assert.equal(report.ok, true, report.error?.message);
  assert.deepEqual(report.tasks.map((x) => x.name).sort(), [`${ns}/db`, `${ns}/web`]);
  assert.equal(report.samples.size, 2, "both pods' cgroups read");
});

/** cli runs the real entry point (asynchronously: the cluster and the test share nothing but files). */
function cli(args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--import", "tsx", "src/cli/main.ts", ...args],
      { encoding: "utf8", timeout: 60_000 },
      (err, stdout, stderr) => resolve({ status: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

test("Verifies that an agent iteration turns this node's pods from the API server into task metrics labelled with their names and uids", async (t) => {
  const { client, kubeconfig } = testCluster();
  const [ns, other] = await Promise.all([testNamespace(t, "agent"), testNamespace(t, "agent")]);
  await readyPods(
    await createPods([pod(ns, "web", "kwok-node-2"), pod(ns, "db", "kwok-node-2", "guaranteed")]),
  );
  await createPods([pod(ns, "elsewhere", "kwok-node-0"), pod(other, "noise", "kwok-node-2")]);
  const pods = await giveContainerIds(
    (await client.core.listNamespacedPod({ namespace: ns, fieldSelector: "spec.nodeName=kwok-node-2" }))
      .items,
  );
  pods.sort((a, b) => key(a).localeCompare(key(b)));
  const root = treeFor(t, pods);
  const uid = (name: string): string => pods.find((p) => p.metadata?.name === name)?.metadata?.uid ?? "?";
  const config = { cgroup_driver: "systemd", monitored_namespaces: [ns], interval_seconds: 0.2 };

  const agent = new NodeAgent({
    config: parseAgentConfig(config),
    log: silentLogger,
    cgroupRoot: root,
    listen: "127.0.0.1:0",
    nodeName: "kwok-node-2",
    apiServerSource: apiServerPodSources(() => client),
  });
  const address = await agent.start();
  t.after(() => agent.stop());
  assert.ok(address);
  const metrics = (): Promise<string> =>
    fetch(`http://127.0.0.1:${address.port}/metrics`).then((r) => r.text());
  const seriesOf = (text: string, name: string): string[] =>
    text.split("\n").filter((l) => l.startsWith(`${name}{`));

  // The cache follows the status patch too: the container IDs must be in before subcontainers count.
  const text = await eventually(
    "task metrics for both pods",
    metrics,
    (m) => seriesOf(m, "task_subcontainers").filter((l) => l.endsWith(" 1")).length === 2,
  );
  assert.match(text, /kubewise_agent_info\{node="kwok-node-2",[^}]*pod_source="apiserver"\} 1/);
  const cpu = seriesOf(text, "task_cpu_usage_seconds");
  assert.equal(cpu.length, 2, cpu.join("\n"));
  // db sorts first, so it got fixtureValues(0): 1.000123 s; web got fixtureValues(1).
  const db = cpu.find((l) => l.includes(`task_name="${ns}/db"`));
  const web = cpu.find((l) => l.includes(`task_name="${ns}/web"`));
  assert.ok(db && web, cpu.join("\n"));
  assert.ok(db.includes(`task_id="${uid("db")}"`) && db.endsWith(" 1.000123"), db);
  assert.ok(web.includes(`task_id="${uid("web")}"`) && web.endsWith(" 2.000123"), web);
  assert.ok(web.includes('app_kubernetes_io__name="web"'), "pod labels, sanitised as WCA does");
  assert.ok(db.includes('app_kubernetes_io__qos_class="guaranteed"'));
  assert.ok(!text.includes("elsewhere") && !text.includes("noise"), "other nodes and namespaces stay out");

  // A deleted pod's series go with it.
  await client.core.deleteNamespacedPod({ namespace: ns, name: "web" });
  await eventually(
    "web's series go",
    metrics,
    (m) => !m.includes(`task_name="${ns}/web"`) && m.includes(`task_name="${ns}/db"`),
  );
  await agent.stop();

  // The CLI's default pod source is the API server, reached with --kubeconfig.
  const file = join(root, "agent.yaml");
  writeFileSync(file, JSON.stringify(config));
  const once = await cli([
    "--kubeconfig",
    kubeconfig,
    "agent",
    "run",
    "--config",
    file,
    "--node-name",
    "kwok-node-2",
    "--cgroup-root",
    root,
    "--once",
  ]);
  assert.equal(once.status, 0, once.stderr);
  assert.match(
    once.stdout,
    new RegExp(`task_mem_usage_bytes\\{[^}]*task_name="${ns}/db"[^}]*task_id="${uid("db")}"`),
  );
  assert.ok(!once.stdout.includes(`task_name="${ns}/web"`));
  assert.match(once.stdout, /pod_source="apiserver"/);
});
