import { test } from "node:test";
import assert from "node:assert/strict";
import type { V1ConfigMap, V1Deployment, V1Job, V1Pod } from "../../src/kube/index.js";
import {
  KubeError,
  ResourceWatcher,
  applyObject,
  waitForObject,
  waitForPodReady,
  waitForPodStable,
  waitForPodsStable,
  waitForRollout,
  waitForRolloutHealthy,
  type WatchEvent,
} from "../../src/kube/index.js";
import { startComponent, stopComponent } from "../../src/cluster/index.js";
import { eventually, testCluster, testNamespace } from "./support/cluster.js";

const labels = { app: "web" };

function deployment(namespace: string, replicas: number): V1Deployment {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "web", namespace },
    spec: {
      replicas,
      selector: { matchLabels: labels },
      template: { metadata: { labels }, spec: { containers: [{ name: "main", image: "nginx:1.27" }] } },
    },
  };
}

test("Verifies that a Deployment's pods are scheduled onto KWOK nodes and become Ready", async (t) => {
  const { client } = testCluster();
  const ns = await testNamespace(t, "deploy");
  const applied = await applyObject(client, deployment(ns, 3));
  assert.equal(applied.result, "created");
  const progress: string[] = [];
  const done = await waitForRollout(client, ns, "web", {
    timeoutMs: 60_000,
    onProgress: (m) => progress.push(m),
  });
  assert.equal(done.status?.availableReplicas, 3);
  const pods = await client.core.listNamespacedPod({ namespace: ns, labelSelector: "app=web" });
  assert.equal(pods.items.length, 3);
  for (const pod of pods.items) {
    assert.match(pod.spec?.nodeName ?? "", /^kwok-node-\d+$/);
    assert.equal(pod.status?.phase, "Running");
    assert.ok(pod.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"));
  }
  const again = await applyObject(client, deployment(ns, 3));
  assert.equal(again.result, "unchanged", "re-applying the same manifest changes nothing");
  const scaled = await applyObject(client, deployment(ns, 2));
  assert.equal(scaled.result, "updated");
});

test("Verifies that a Job's pod runs on a KWOK node and the Job completes", async (t) => {
  const { client } = testCluster();
  const ns = await testNamespace(t, "job");
  const job: V1Job = {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: { name: "once", namespace: ns },
    spec: {
      template: {
        spec: { restartPolicy: "Never", containers: [{ name: "work", image: "busybox", command: ["true"] }] },
      },
    },
  };
  await applyObject(client, job);
  const complete = await waitForObject<V1Job, V1Job>(
    client,
    { apiVersion: "batch/v1", kind: "Job", namespace: ns, name: "once" },
    (j) =>
      j?.status?.conditions?.some((c) => c.type === "Complete" && c.status === "True")
        ? { state: "done", value: j }
        : { state: "waiting" },
    { timeoutMs: 60_000 },
  );
  assert.equal(complete.status?.succeeded, 1);
  const pods = await client.core.listNamespacedPod({ namespace: ns, labelSelector: "job-name=once" });
  const terminated = pods.items[0]?.status?.containerStatuses?.[0]?.state?.terminated;
  assert.equal(terminated?.exitCode, 0);
  assert.equal(pods.items[0]?.status?.phase, "Succeeded");
});

test("Verifies that a restart patched into the pod status as a kubelet would is seen by the wait helper", async (t) => {
  const { client } = testCluster();
  const ns = await testNamespace(t, "restart");
  const pod: V1Pod = {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "p", namespace: ns },
    spec: { containers: [{ name: "main", image: "nginx" }] },
  };
  await client.core.createNamespacedPod({ namespace: ns, body: pod });
  await waitForPodReady(client, ns, "p", { timeoutMs: 60_000 });
  const stable = waitForPodStable(client, ns, "p", { durationMs: 30_000 });
  // The watch can deliver the restart before the patch call below returns, so the
  // rejection must have a handler from the start; assert.rejects still sees it.
  stable.catch(() => undefined);
  const started = Date.now();
  await client.core.patchNamespacedPodStatus({
    namespace: ns,
    name: "p",
    body: [
      { op: "replace", path: "/status/containerStatuses/0/restartCount", value: 1 },
      {
        op: "add",
        path: "/status/containerStatuses/0/lastState",
        value: {
          terminated: { exitCode: 137, reason: "OOMKilled", startedAt: new Date(), finishedAt: new Date() },
        },
      },
    ],
  });
  await assert.rejects(stable, (err: unknown) => {
    assert.ok(err instanceof KubeError);
    assert.equal(err.podProblem, "restarted");
    assert.match(err.message, /restarted 1 time\(s\) \(last exit 137, OOMKilled\)/);
    return true;
  });
  assert.ok(
    Date.now() - started < 10_000,
    "the restart is noticed from the watch, not at the end of the period",
  );
  await assert.rejects(waitForPodReady(client, ns, "p", { timeoutMs: 10_000 }), /restarted/);
});

test("Verifies that the rollout wait ignores a restart a pod had before it began, and a settlement counts any restart", async (t) => {
  const { client } = testCluster();
  const ns = await testNamespace(t, "old-restart");
  await applyObject(client, deployment(ns, 1));
  await waitForRollout(client, ns, "web", { timeoutMs: 60_000 });
  const pod = (await client.core.listNamespacedPod({ namespace: ns, labelSelector: "app=web" })).items[0];
  const name = pod?.metadata?.name ?? "";
  await client.core.patchNamespacedPodStatus({
    namespace: ns,
    name,
    body: [{ op: "replace", path: "/status/containerStatuses/0/restartCount", value: 1 }],
  });
  await waitForObject(
    client,
    { apiVersion: "v1", kind: "Pod", namespace: ns, name },
    (p: V1Pod | undefined) =>
      p?.status?.containerStatuses?.[0]?.restartCount === 1
        ? { state: "done", value: true }
        : { state: "waiting" },
    { timeoutMs: 10_000 },
  );
  // Re-checking an unchanged Deployment: last week's restart is not this rollout's doing.
  const done = await waitForRolloutHealthy(client, ns, "web", { timeoutMs: 30_000 });
  assert.equal(done.status?.availableReplicas, 1);
  // A settlement asks for pods with no restarts at all.
  await assert.rejects(waitForPodsStable(client, ns, "app=web", { durationMs: 30_000 }), (err: unknown) => {
    assert.ok(err instanceof KubeError);
    assert.equal(err.podProblem, "restarted");
    return true;
  });
});

test("Verifies that the watcher survives the API server stopping and delivers the changes made meanwhile", async (t) => {
  const { client, dir } = testCluster();
  const ns = await testNamespace(t, "watch");
  const cm = (name: string, value: string): V1ConfigMap => ({
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name, namespace: ns },
    data: { value },
  });
  await applyObject(client, cm("keep", "1"));
  await applyObject(client, cm("doomed", "1"));
  const events: WatchEvent<V1ConfigMap>[] = [];
  const errors: KubeError[] = [];
  // A long first backoff leaves time to make changes after the API server is back but before the
  // watcher reconnects, so they can only reach it through its relist.
  const watcher = new ResourceWatcher<V1ConfigMap>(
    client,
    { apiVersion: "v1", kind: "ConfigMap", namespace: ns },
    { initialBackoffMs: 4_000, maxBackoffMs: 4_000 },
  );
  watcher.on((e) => events.push(e));
  watcher.onError((e) => errors.push(e));
  watcher.start();
  t.after(() => watcher.stop());
  await watcher.synced();
  // kube-root-ca.crt is left out: a controller adds it to a new namespace a moment later.
  assert.deepEqual(new Set(names(watcher.list())), new Set(["keep", "doomed"]));
  events.length = 0;

  await stopComponent(dir, "kube-apiserver");
  try {
    await eventually(() => errors.length > 0, "the watcher to notice the API server is gone", 30_000);
  } finally {
    await startComponent(dir, "kube-apiserver");
  }
  await applyObject(client, cm("keep", "2"));
  await applyObject(client, cm("born", "1"));
  await client.core.deleteNamespacedConfigMap({ namespace: ns, name: "doomed" });

  await eventually(
    () =>
      events.some(
        (e) => e.type === "updated" && e.object.metadata?.name === "keep" && e.object.data?.value === "2",
      ) &&
      events.some((e) => e.type === "added" && e.object.metadata?.name === "born") &&
      events.some((e) => e.type === "deleted" && e.object.metadata?.name === "doomed"),
    "the update, the addition and the deletion to be delivered",
    60_000,
  );
  assert.equal(watcher.get("keep")?.data?.value, "2");
  assert.equal(watcher.get("doomed"), undefined);
  assert.ok(
    errors.every((e) => e.reason === "Unavailable" || e.reason === "Unknown"),
    errors.map((e) => e.message).join("; "),
  );
});

test("Verifies that a restarted watcher resumes from its resource version, and relists when the server answers 410 Gone", async (t) => {
  const { client } = testCluster();
  const ns = await testNamespace(t, "gone");
  const cm = (name: string): V1ConfigMap => ({
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name, namespace: ns },
    data: { value: "1" },
  });
  await applyObject(client, cm("first"));
  const events: WatchEvent<V1ConfigMap>[] = [];
  const watcher = new ResourceWatcher<V1ConfigMap>(client, {
    apiVersion: "v1",
    kind: "ConfigMap",
    namespace: ns,
  });
  watcher.on((e) => events.push(e));
  watcher.start();
  t.after(() => watcher.stop());
  await watcher.synced();
  assert.deepEqual(watcher.stats(), { relists: 1, gone: 0 });

  // Stopped and started again, it watches on from where it was: no second list.
  await watcher.stop();
  await applyObject(client, cm("second"));
  watcher.start();
  await eventually(
    () => events.some((e) => e.type === "added" && e.object.metadata?.name === "second"),
    "the change made while stopped",
    30_000,
  );
  assert.deepEqual(watcher.stats(), { relists: 1, gone: 0 });

  // A version the server no longer keeps, as after a long disconnect: etcd is compacted past it
  // (the API server does so every few minutes), the watch is answered 410 Gone ("too old
  // resource version"), and the watcher lists again instead of giving up.
  await watcher.stop();
  (watcher as unknown as { resourceVersion: string }).resourceVersion = "1";
  const third = await applyObject(client, cm("third"));
  await client.core.deleteNamespacedConfigMap({ namespace: ns, name: "first" });
  await compactEtcd(Number(third.object.metadata?.resourceVersion));
  watcher.start();
  await eventually(
    () =>
      events.some((e) => e.type === "added" && e.object.metadata?.name === "third") &&
      events.some((e) => e.type === "deleted" && e.object.metadata?.name === "first"),
    "the addition and the deletion, through the relist",
    30_000,
  );
  assert.deepEqual(watcher.stats(), { relists: 2, gone: 1 });
  assert.deepEqual(new Set(names(watcher.list())), new Set(["second", "third"]));
  // The deletion it never saw is marked inferred (its object is the last cached state); one the
  // API server sends is not.
  const missed = events.find((e) => e.type === "deleted" && e.object.metadata?.name === "first");
  assert.equal(missed?.inferred, true);
  await client.core.deleteNamespacedConfigMap({ namespace: ns, name: "second" });
  await eventually(
    () => events.some((e) => e.type === "deleted" && e.object.metadata?.name === "second"),
    "the deletion sent by the API server",
    30_000,
  );
  const sent = events.find((e) => e.type === "deleted" && e.object.metadata?.name === "second");
  assert.equal(sent?.inferred, undefined);
});

// compactEtcd compacts the test cluster's etcd up to `revision`, over etcd's HTTP gateway.
async function compactEtcd(revision: number): Promise<void> {
  const etcd = testCluster().state.components.find((c) => c.name === "etcd");
  assert.ok(etcd?.port, "the test cluster records etcd's port");
  const res = await fetch(`http://127.0.0.1:${etcd.port}/v3/kv/compaction`, {
    method: "POST",
    body: JSON.stringify({ revision: String(revision), physical: true }),
  });
  assert.equal(res.status, 200, await res.text());
}

// names lists the ConfigMaps' names, without the one a controller adds to every namespace.
function names(items: V1ConfigMap[]): (string | undefined)[] {
  return items.map((c) => c.metadata?.name).filter((n) => n !== "kube-root-ca.crt");
}
