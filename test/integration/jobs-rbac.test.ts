/**
 * manifests/jobs/rbac.yaml on the embedded cluster: the jobs watcher (list and watch, the
 * reported annotation, the report finalizer's release, the namespace check) and the webhook's
 * settings reader run as service accounts holding exactly the shipped rules, so this fails if
 * either needs a verb the manifest leaves out; and a verb it leaves out is refused.
 *
 * The rules are applied as shipped; only the names of the cluster-scoped objects (and the
 * watcher's ClusterRole, granted through a RoleBinding as in the manifest) get the test
 * namespace's name, since other suites share the cluster.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { V1PolicyRule } from "@kubernetes/client-node";
import { pino } from "pino";
import { parseAllDocuments } from "yaml";
import {
  ConfigMapSettings,
  DEFAULT_APP_ID_PATH,
  JobPodWatcher,
  JobsWatch,
  REPORTED_ANNOTATION,
  REPORT_FINALIZER,
  SETTINGS_CONFIGMAP,
  parseAppIdPath,
  releaseAllReportFinalizers,
  saveTunedSettings,
  type MeasurementEvent,
} from "../../src/jobs/index.js";
import {
  KubeClient,
  ignoreNotFound,
  toKubeError,
  waitForPodReady,
  type V1Pod,
} from "../../src/kube/index.js";
import { eventually, serviceAccountClient, testCluster, testNamespace } from "./support/cluster.js";

const admin = (): KubeClient => testCluster().client;

interface RbacDoc {
  kind: string;
  metadata: { name: string; namespace?: string };
  rules?: V1PolicyRule[];
  roleRef?: { kind: string; name: string };
  subjects?: { kind: string; name: string; namespace?: string }[];
}

const shipped = (): RbacDoc[] =>
  parseAllDocuments(readFileSync("manifests/jobs/rbac.yaml", "utf8")).map((d) => d.toJS() as RbacDoc);

/**
 * grantShipped applies every binding of rbac.yaml for `account` as shipped, with its subject moved
 * to the test namespace: a RoleBinding in `ns`, a ClusterRoleBinding cluster-wide (removed after
 * the test), each to a copy of the shipped role named after the namespace.
 */
async function grantShipped(t: TestContext, ns: string, account: string): Promise<void> {
  const docs = shipped();
  const bindings = docs.filter(
    (d) =>
      (d.kind === "RoleBinding" || d.kind === "ClusterRoleBinding") &&
      d.subjects?.some((s) => s.kind === "ServiceAccount" && s.name === account),
  );
  assert.ok(bindings.length > 0, `rbac.yaml binds ${account}`);
  for (const binding of bindings) {
    const role = docs.find(
      (d) => d.kind === binding.roleRef?.kind && d.metadata.name === binding.roleRef.name,
    );
    assert.ok(role?.rules, `rbac.yaml defines ${binding.roleRef?.kind} ${binding.roleRef?.name}`);
    const name = `${ns}-${role.metadata.name}`;
    await admin().rbac.createClusterRole({ body: { metadata: { name }, rules: role.rules } });
    t.after(() => ignoreNotFound(admin().rbac.deleteClusterRole({ name })));
    const body = {
      metadata: { name },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name },
      subjects: [{ kind: "ServiceAccount", name: account, namespace: ns }],
    };
    if (binding.kind === "RoleBinding") {
      await admin().rbac.createNamespacedRoleBinding({ namespace: ns, body });
    } else {
      await admin().rbac.createClusterRoleBinding({ body });
      t.after(() => ignoreNotFound(admin().rbac.deleteClusterRoleBinding({ name })));
    }
  }
}

/** clientAs connects as a new service account granted exactly rbac.yaml's rules. */
async function clientAs(t: TestContext, ns: string, account: string): Promise<KubeClient> {
  const client = await serviceAccountClient(t, ns, account);
  await grantShipped(t, ns, account);
  return client;
}

/** refusal is the reason the API gave for `call` ("Forbidden" expected), or "allowed". */
async function refusal(call: () => Promise<unknown>): Promise<string> {
  try {
    await call();
    return "allowed";
  } catch (err) {
    return toKubeError(err, "probe").reason;
  }
}

function jobPod(ns: string, name: string, held: boolean): V1Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: ns, finalizers: held ? [REPORT_FINALIZER] : undefined },
    spec: {
      restartPolicy: "Never",
      containers: [{ name: "main", image: "example/job:1", env: [{ name: "JOBID", value: "nightly" }] }],
    },
  };
}

/** finish patches the pod's status as a kubelet reports a 5 s successful run. */
async function finish(ns: string, name: string): Promise<void> {
  await waitForPodReady(admin(), ns, name, { timeoutMs: 60_000 });
  const finishedAt = Math.floor(Date.now() / 1000) * 1000;
  await admin().core.patchNamespacedPodStatus({
    namespace: ns,
    name,
    body: [
      { op: "replace", path: "/status/phase", value: "Succeeded" },
      {
        op: "replace",
        path: "/status/containerStatuses",
        value: [
          {
            name: "main",
            image: "example/job:1",
            imageID: "kwok://example/job:1",
            ready: false,
            restartCount: 0,
            state: {
              terminated: {
                exitCode: 0,
                reason: "Completed",
                startedAt: new Date(finishedAt - 5000).toISOString(),
                finishedAt: new Date(finishedAt).toISOString(),
              },
            },
          },
        ],
      },
    ],
  });
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}") as unknown;
}

test("Verifies that the jobs watcher reports, marks and releases pods as the service account of manifests/jobs/rbac.yaml, which refuses what it leaves out", async (t) => {
  const ns = await testNamespace(t, "jobs-rbac");
  // Pods still holding the finalizer would keep the namespace from being deleted.
  t.after(() => releaseAllReportFinalizers(admin(), [ns]));
  const watcherClient = await clientAs(t, ns, "kubewise-jobs-watcher");

  const received: MeasurementEvent[] = [];
  const receiver = createServer((req, res) => {
    void readJson(req).then((body) => {
      received.push(body as MeasurementEvent);
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  t.after(() => new Promise<void>((resolve) => receiver.close(() => resolve())));
  const port = (receiver.address() as AddressInfo).port;

  const done = await admin().core.createNamespacedPod({ namespace: ns, body: jobPod(ns, "done", false) });
  const held = await admin().core.createNamespacedPod({ namespace: ns, body: jobPod(ns, "held", true) });
  await finish(ns, "done");
  await finish(ns, "held");
  await admin().core.deleteNamespacedPod({ namespace: ns, name: "held" });

  const logs: Record<string, unknown>[] = [];
  const log = pino({ level: "warn" }, { write: (line: string) => void logs.push(JSON.parse(line)) });
  const outboxDir = mkdtempSync(join(tmpdir(), "kubewise-jobs-rbac-outbox-"));
  t.after(() => rmSync(outboxDir, { recursive: true, force: true }));
  const watch = new JobsWatch({
    config: {
      target: {
        urlTemplate: `http://127.0.0.1:${port}/{acct}/{app_id}/servo`,
        account: "acct",
        token: undefined,
      },
      namespaces: [ns],
      appIdPath: parseAppIdPath(DEFAULT_APP_ID_PATH),
      outbox: join(outboxDir, "outbox.sqlite"),
    },
    source: new JobPodWatcher({ client: watcherClient, namespaces: [ns], log }),
    reporter: { backoff: { initialMs: 50, maxMs: 200 } },
    log,
  });
  await watch.start();
  t.after(() => watch.stop());

  // The reported annotation (patch) on the finished pod, the finalizer's release on the held one.
  await eventually(async () => {
    const pod = await admin().core.readNamespacedPod({ namespace: ns, name: "done" });
    return pod.metadata?.annotations?.[REPORTED_ANNOTATION] !== undefined;
  }, "the finished pod to be marked reported");
  await eventually(
    async () =>
      (await ignoreNotFound(admin().core.readNamespacedPod({ namespace: ns, name: "held" }))) === undefined,
    "the held pod's finalizer to be released and the pod to go",
  );
  const uids = received.map((r) => r.param.idempotency_key).sort();
  assert.deepEqual(uids, [done.metadata?.uid, held.metadata?.uid].sort());
  assert.ok(received.every((r) => r.param.status === "ok"));
  assert.deepEqual(logs, [], "no warning: no permission was missing (the namespace check included)");

  // What the manifest leaves out is refused.
  assert.equal(
    await refusal(() => watcherClient.core.deleteNamespacedPod({ namespace: ns, name: "done" })),
    "Forbidden",
  );
  assert.equal(
    await refusal(() =>
      watcherClient.core.createNamespacedPod({ namespace: ns, body: jobPod(ns, "new", false) }),
    ),
    "Forbidden",
  );
  assert.equal(
    await refusal(() => watcherClient.core.listNamespacedConfigMap({ namespace: ns })),
    "Forbidden",
  );
  assert.equal(await refusal(() => watcherClient.core.listPodForAllNamespaces({})), "Forbidden");
});

test("Verifies that the webhook's settings reader follows the settings ConfigMaps as the service account of manifests/jobs/rbac.yaml, which refuses what it leaves out", async (t) => {
  const ns = await testNamespace(t, "jobs-rbac");
  const webhookClient = await clientAs(t, ns, "kubewise-jobs-webhook");
  const logs: Record<string, unknown>[] = [];
  const log = pino({ level: "warn" }, { write: (line: string) => void logs.push(JSON.parse(line)) });
  const settings = new ConfigMapSettings({ client: webhookClient, startTimeoutMs: 30_000, log });
  await settings.start();
  t.after(() => settings.stop());

  await saveTunedSettings(admin(), ns, "nightly", { cpu: 1.5, resources: "limits" });
  await eventually(
    async () => (await settings.settingsFor(ns, "nightly"))?.cpu === 1.5,
    "the tuned settings to reach the webhook's reader",
  );
  // A watch it may not open would be retried from relists, slower but silently but for this.
  assert.deepEqual(logs, [], "no warning: the list and the watch were both allowed");

  assert.equal(
    await refusal(() =>
      webhookClient.core.readNamespacedConfigMap({ namespace: ns, name: SETTINGS_CONFIGMAP }),
    ),
    "Forbidden",
    "it never reads one by name",
  );
  assert.equal(
    await refusal(() => webhookClient.core.listNamespacedConfigMap({ namespace: ns })),
    "Forbidden",
    "other ConfigMaps are not its to list",
  );
  assert.equal(
    await refusal(() =>
      webhookClient.core.patchNamespacedConfigMap({
        namespace: ns,
        name: SETTINGS_CONFIGMAP,
        body: { metadata: { labels: { probe: "x" } } },
      }),
    ),
    "Forbidden",
  );
  assert.equal(await refusal(() => webhookClient.core.listNamespacedPod({ namespace: ns })), "Forbidden");
});
