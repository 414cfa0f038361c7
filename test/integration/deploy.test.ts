/**
 * `kubewise deploy` plan, apply, status and delete on the embedded cluster. KWOK runs the pods:
 * they are scheduled and become Ready within seconds; a crash is simulated by patching the new
 * pod's status as a kubelet would.
 */
import { after, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadTarget } from "../../src/cli/deploy.js";
import {
  DeployError,
  applyService,
  deleteService,
  formatRollout,
  formatStatus,
  listServiceObjects,
  planService,
  serviceStatus,
  type DeployTarget,
} from "../../src/deploy/index.js";
import { ConfigError } from "../../src/config/index.js";
import { ResourceWatcher, isNotFound, type V1Deployment, type V1Pod } from "../../src/kube/index.js";
import { testCluster, testNamespace } from "./support/cluster.js";

const dir = mkdtempSync(join(tmpdir(), "kubewise-deploy-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;

function spec(lines: string): string {
  const file = join(dir, `service-${files++}.yaml`);
  writeFileSync(file, lines);
  return file;
}

function target(file: string, namespace: string): DeployTarget {
  return loadTarget({ file, namespace, var: {} }).target;
}

const full = (image: string, extra = "") => `
name: web
image: ${image}
ports:
  - { name: http, type: http, port: 8080 }
min_containers: 2
max_containers: 5
autoscaling_target_cpu_percentage: 70
resource_request: { cpu: 250m, memory: 256Mi }
env_vars: { LOG_LEVEL: info }
healthcheck_path: /health
${extra}`;

const fixed = (image: string, extra = "") => `
name: api
image: ${image}
ports: [{ name: http, type: http, port: 8080 }]
replicas: 2
${extra}`;

const apply = (client = testCluster().client, t: DeployTarget, rollbackOnFailure = false) =>
  applyService(client, t, { timeoutMs: 120_000, rollbackOnFailure });

/** resourceVersions reads every object of the service, by kind/name. */
/**
 * resourceVersions fingerprints what a write by kubewise would change: the generation (spec) where
 * the kind has one — controllers bump resourceVersion with status updates at any moment — else
 * the resourceVersion, plus labels and annotations, which change no generation.
 */
async function resourceVersions(namespace: string, service: string): Promise<Record<string, string>> {
  const objects = await listServiceObjects(testCluster().client, namespace, service);
  return Object.fromEntries(
    objects.map((o) => [
      `${o.kind}/${o.metadata?.name}`,
      [
        o.metadata?.generation ?? o.metadata?.resourceVersion ?? "",
        JSON.stringify(o.metadata?.labels ?? {}),
        JSON.stringify(o.metadata?.annotations ?? {}),
      ].join("|"),
    ]),
  );
}

/** assertNothingIn checks the namespace holds no object of any kind a service renders. */
async function assertNothingIn(namespace: string): Promise<void> {
  const { client } = testCluster();
  const [svc, dep, hpa, pdb, ing] = await Promise.all([
    client.core.listNamespacedService({ namespace }),
    client.apps.listNamespacedDeployment({ namespace }),
    client.autoscaling.listNamespacedHorizontalPodAutoscaler({ namespace }),
    client.policy.listNamespacedPodDisruptionBudget({ namespace }),
    client.networking.listNamespacedIngress({ namespace }),
  ]);
  const names = [svc, dep, hpa, pdb, ing].flatMap((l) => l.items.map((i) => i.metadata?.name));
  assert.deepEqual(names, [], "nothing was applied");
}

test("Verifies that apply creates the Deployment, Service, HPA, PDB and Ingress with the spec's values, and re-applying changes nothing", async (t) => {
  const { client } = testCluster();
  const ns = await testNamespace(t, "deploy");
  const file = spec(full("ghcr.io/acme/web:1.0", "public_uri: web.example.com/api\n"));
  const report = await apply(client, target(file, ns));
  assert.deepEqual(
    report.objects.map((o) => `${o.ref.kind} ${o.result}`),
    [
      "Service created",
      "Deployment created",
      "HorizontalPodAutoscaler created",
      "PodDisruptionBudget created",
      "Ingress created",
    ],
  );
  assert.equal(report.rollout?.state, "ready", report.rollout && formatRollout(report.rollout));

  const d = await client.apps.readNamespacedDeployment({ namespace: ns, name: "web" });
  const c = d.spec?.template.spec?.containers[0];
  assert.equal(c?.image, "ghcr.io/acme/web:1.0");
  assert.deepEqual(c?.resources?.requests, { cpu: "250m", memory: "256Mi" });
  assert.deepEqual(
    c?.env?.map((e) => [e.name, e.value]),
    [["LOG_LEVEL", "info"]],
  );
  assert.equal(c?.readinessProbe?.httpGet?.path, "/health");
  assert.equal((d.status?.readyReplicas ?? 0) >= 1, true, "apply waited for a ready pod");
  const svc = await client.core.readNamespacedService({ namespace: ns, name: "web" });
  assert.deepEqual(
    svc.spec?.ports?.map((p) => [p.port, p.targetPort]),
    [[80, "http"]],
  );
  const hpa = await client.autoscaling.readNamespacedHorizontalPodAutoscaler({ namespace: ns, name: "web" });
  assert.equal(hpa.apiVersion ?? "autoscaling/v2", "autoscaling/v2");
  assert.equal(hpa.spec?.minReplicas, 2);
  assert.equal(hpa.spec?.maxReplicas, 5);
  assert.equal(
    hpa.spec?.metrics?.find((m) => m.resource?.name === "cpu")?.resource?.target.averageUtilization,
    70,
  );
  const pdb = await client.policy.readNamespacedPodDisruptionBudget({ namespace: ns, name: "web" });
  assert.equal(pdb.spec?.maxUnavailable, 1);
  const ingresses = await client.networking.listNamespacedIngress({ namespace: ns });
  assert.equal(ingresses.items.length, 1);
  assert.equal(ingresses.items[0]?.spec?.rules?.[0]?.host, "web.example.com");

  const before = await resourceVersions(ns, "web");
  const again = await apply(client, target(file, ns));
  assert.deepEqual(
    again.objects.map((o) => o.result),
    ["unchanged", "unchanged", "unchanged", "unchanged", "unchanged"],
  );
  assert.deepEqual(await resourceVersions(ns, "web"), before, "no object was written");
  assert.equal((await planService(client, target(file, ns))).changed, false);
});

test("Verifies that plan shows each changed field and the objects to prune, writes nothing, and exits 2 then 0", async (t) => {
  const { client, kubeconfig } = testCluster();
  const ns = await testNamespace(t, "deploy");
  const v1 = spec(full("ghcr.io/acme/web:1.0", "public_uri: web.example.com/api\n"));
  await applyService(client, target(v1, ns), { wait: false });
  const before = await resourceVersions(ns, "web");

  const v2 = spec(full("ghcr.io/acme/web:1.1").replace("LOG_LEVEL: info", "LOG_LEVEL: debug, NEW: x"));
  const plan = await planService(client, target(v2, ns));
  assert.equal(plan.changed, true);
  const deployment = plan.objects.find((o) => o.ref.kind === "Deployment");
  assert.equal(deployment?.action, "update");
  const paths = deployment?.changes.map((c) => `${c.op} ${c.path}`) ?? [];
  assert.ok(paths.includes("changed spec.template.spec.containers[web].image"), paths.join("\n"));
  assert.ok(
    paths.includes("changed spec.template.spec.containers[web].env[LOG_LEVEL].value"),
    paths.join("\n"),
  );
  assert.ok(paths.includes("added spec.template.spec.containers[web].env[NEW]"), paths.join("\n"));
  assert.deepEqual(
    plan.prune.map((p) => p.ref.kind),
    ["Ingress"],
  );
  assert.equal(plan.objects.find((o) => o.ref.kind === "Service")?.action, "unchanged");
  assert.deepEqual(await resourceVersions(ns, "web"), before, "a plan writes nothing");

  const cli = (file: string) =>
    spawnSync(
      process.execPath,
      [
        "--import",
        "tsx",
        "src/cli/main.ts",
        "--kubeconfig",
        kubeconfig,
        "deploy",
        "plan",
        "-f",
        file,
        "-n",
        ns,
      ],
      { encoding: "utf8" },
    );
  const changed = cli(v2);
  assert.equal(changed.status, 2, changed.stderr);
  assert.match(changed.stdout, /~ Deployment\/web \(update\)\n/);
  assert.match(
    changed.stdout,
    /~ spec\.template\.spec\.containers\[web\]\.image: "ghcr\.io\/acme\/web:1\.0" -> "ghcr\.io\/acme\/web:1\.1"/,
  );
  assert.match(changed.stdout, /- Ingress\/web-[0-9a-f]{8} \(prune: no longer in the spec\)/);
  const same = cli(v1);
  assert.equal(same.status, 0, same.stdout + same.stderr);
  assert.match(same.stdout, /no changes \(exit code 0\)/);
});

test("Verifies that removing the ingress from the spec prunes it, and objects others made are left alone", async (t) => {
  const { client } = testCluster();
  const ns = await testNamespace(t, "deploy");
  await applyService(
    client,
    target(spec(full("ghcr.io/acme/web:1.0", "public_uri: web.example.com\n")), ns),
    {
      wait: false,
    },
  );
  const ours =
    (await client.networking.listNamespacedIngress({ namespace: ns })).items[0]?.metadata?.name ?? "";
  const labels = { "app.kubernetes.io/name": "web", "app.kubernetes.io/managed-by": "kubewise" };
  const ingress = (name: string, l: Record<string, string>) => ({
    metadata: { name, labels: l },
    spec: { defaultBackend: { service: { name: "web", port: { number: 80 } } } },
  });
  // Labelled as ours but created by someone else (no kubewise apply), and one labelled by Helm.
  await client.networking.createNamespacedIngress({ namespace: ns, body: ingress("hand-made", labels) });
  await client.networking.createNamespacedIngress({
    namespace: ns,
    body: ingress("helm-made", { ...labels, "app.kubernetes.io/managed-by": "Helm" }),
  });

  const report = await applyService(client, target(spec(full("ghcr.io/acme/web:1.0")), ns), { wait: false });
  assert.deepEqual(
    report.objects
      .filter((o) => o.result !== "unchanged")
      .map((o) => `${o.ref.kind}/${o.ref.name} ${o.result}`),
    [`Ingress/${ours} pruned`],
  );
  assert.deepEqual(
    report.kept.map((k) => k.ref.name),
    ["hand-made"],
  );
  const left = (await client.networking.listNamespacedIngress({ namespace: ns })).items.map(
    (i) => i.metadata?.name,
  );
  assert.deepEqual(left.sort(), ["hand-made", "helm-made"]);
});

test("Verifies that changing the image rolls out and apply returns only once every replica runs the new image", async (t) => {
  const { client } = testCluster();
  const ns = await testNamespace(t, "deploy");
  await apply(client, target(spec(fixed("ghcr.io/acme/api:1.0")), ns));
  const progress: string[] = [];
  const report = await applyService(client, target(spec(fixed("ghcr.io/acme/api:2.0")), ns), {
    timeoutMs: 120_000,
    onProgress: (m) => progress.push(m),
  });
  const dep = report.objects.find((o) => o.ref.kind === "Deployment");
  assert.equal(dep?.result, "updated");
  assert.deepEqual(
    dep?.changes.map((c) => c.path),
    ["spec.template.spec.containers[api].image"],
  );
  assert.equal(report.rollout?.state, "ready");
  // Read right after apply returned: the rollout must already be complete.
  const d = await client.apps.readNamespacedDeployment({ namespace: ns, name: "api" });
  assert.equal(d.status?.observedGeneration, d.metadata?.generation);
  assert.equal(d.status?.updatedReplicas, 2);
  assert.equal(d.status?.availableReplicas, 2);
  assert.equal(d.status?.replicas, 2, "no old replica is left");
  assert.equal(d.metadata?.annotations?.["deployment.kubernetes.io/revision"], "2");
  const pods = await client.core.listNamespacedPod({
    namespace: ns,
    labelSelector: "app.kubernetes.io/name=api",
  });
  const live = pods.items.filter((p) => !p.metadata?.deletionTimestamp);
  assert.deepEqual(
    live.map((p) => p.spec?.containers[0]?.image),
    ["ghcr.io/acme/api:2.0", "ghcr.io/acme/api:2.0"],
  );
  assert.ok(progress.length > 0, "progress was reported while waiting");
});

/** crashNewPod waits for the first pod running `image` and marks its container restarted, as a kubelet would. */
async function crashNewPod(t: TestContext, namespace: string, image: string): Promise<string> {
  const { client } = testCluster();
  const pods = new ResourceWatcher<V1Pod>(client, { apiVersion: "v1", kind: "Pod", namespace });
  t.after(() => pods.stop());
  const pod = await new Promise<V1Pod>((resolve) => {
    const check = (): void => {
      const found = pods
        .list()
        .find(
          (p) => p.spec?.containers[0]?.image === image && p.status?.containerStatuses?.[0] !== undefined,
        );
      if (found) resolve(found);
    };
    pods.on(check);
    pods.start();
    void pods.synced().then(check);
  });
  const name = pod.metadata?.name ?? "";
  const now = new Date();
  await client.core.patchNamespacedPodStatus({
    namespace,
    name,
    body: [
      { op: "replace", path: "/status/containerStatuses/0/restartCount", value: 1 },
      {
        op: "add",
        path: "/status/containerStatuses/0/lastState",
        value: { terminated: { exitCode: 1, reason: "Error", startedAt: now, finishedAt: now } },
      },
    ],
  });
  return name;
}

test("Verifies that a crashing new pod fails the rollout with its reason, and --rollback-on-failure restores the previous image", async (t) => {
  const { client } = testCluster();
  const ns = await testNamespace(t, "deploy");
  await apply(client, target(spec(fixed("ghcr.io/acme/api:1.0").replace("replicas: 2", "replicas: 1")), ns));
  // Keep the next rollout open while the test crashes its pod: a new pod counts as available
  // only after 20 s of readiness. Set by another field manager, so kubewise's apply keeps it.
  await client.apps.patchNamespacedDeployment({
    namespace: ns,
    name: "api",
    fieldManager: "kubewise-test",
    body: [{ op: "add", path: "/spec/minReadySeconds", value: 20 }],
  });
  const bad = "ghcr.io/acme/api:2.0-broken";
  const applying = apply(client, target(spec(fixed(bad).replace("replicas: 2", "replicas: 1")), ns), true);
  const crashed = await crashNewPod(t, ns, bad);
  const report = await applying;
  const rollout = report.rollout;
  assert.equal(rollout?.state, "failed");
  if (rollout?.state !== "failed") return;
  assert.equal(rollout.reason, "restarted");
  assert.match(
    rollout.message,
    new RegExp(`${crashed}: container api restarted 1 time\\(s\\) \\(last exit 1, Error\\)`),
  );
  const pod = rollout.pods.find((p) => p.name === crashed);
  assert.equal(pod?.problem?.reason, "restarted");
  assert.equal(rollout.rollback?.revision, 1);
  assert.equal(rollout.rollback?.ready, true, rollout.rollback?.message);
  assert.match(formatRollout(rollout), /failed \(restarted\)[\s\S]*rolled back to revision 1/);
  const d = await client.apps.readNamespacedDeployment({ namespace: ns, name: "api" });
  assert.equal(d.spec?.template.spec?.containers[0]?.image, "ghcr.io/acme/api:1.0");
});

test("Verifies that an unschedulable new revision is reported as such and rolled back", async (t) => {
  const { client } = testCluster();
  const ns = await testNamespace(t, "deploy");
  await apply(client, target(spec(fixed("ghcr.io/acme/api:1.0")), ns));
  // Nodes offer 8 CPUs: a 64-CPU request can never be scheduled.
  const huge = spec(fixed("ghcr.io/acme/api:1.1", 'resource_request: { cpu: "64000m", memory: 128Mi }\n'));
  const report = await apply(client, target(huge, ns), true);
  const rollout = report.rollout;
  assert.equal(rollout?.state, "failed");
  if (rollout?.state !== "failed") return;
  assert.equal(rollout.reason, "unschedulable");
  assert.ok(rollout.pods.some((p) => p.problem?.reason === "unschedulable"));
  assert.equal(rollout.rollback?.ready, true, rollout.rollback?.message);
  const d = await client.apps.readNamespacedDeployment({ namespace: ns, name: "api" });
  assert.equal(d.spec?.template.spec?.containers[0]?.resources?.requests?.cpu, "100m");
});

test("Verifies that moving from fixed replicas to autoscaling never drops the Deployment's replica count: kubewise hands spec.replicas over instead of resetting it to 1", async (t) => {
  const { client } = testCluster();
  const ns = await testNamespace(t, "deploy");
  await apply(client, target(spec(fixed("ghcr.io/acme/api:1.0").replace("replicas: 2", "replicas: 3")), ns));
  // Every spec.replicas the Deployment takes, as the API server stores it, from now on.
  const seen: number[] = [];
  const deployments = new ResourceWatcher<V1Deployment>(client, {
    apiVersion: "apps/v1",
    kind: "Deployment",
    namespace: ns,
  });
  t.after(() => deployments.stop());
  deployments.on((e) => {
    if (e.object.spec?.replicas !== undefined) seen.push(e.object.spec.replicas);
  });
  deployments.start();
  await deployments.synced();

  const autoscaled = target(
    spec(fixed("ghcr.io/acme/api:1.0").replace("replicas: 2", "min_containers: 2\nmax_containers: 5")),
    ns,
  );
  const plan = await planService(client, autoscaled);
  const planned = plan.objects.find((o) => o.ref.kind === "Deployment");
  assert.equal(planned?.handoverReplicas, 3);
  assert.deepEqual(planned?.changes, [], "the plan shows no replica change, not 3 -> 1");
  const report = await apply(client, autoscaled);
  assert.equal(report.rollout?.state, "ready");
  const d = await client.apps.readNamespacedDeployment({ namespace: ns, name: "api" });
  // Wait until the watcher has seen the Deployment as it is now, so no event is missed.
  await waitFor(() =>
    deployments.list().some((x) => x.metadata?.resourceVersion === d.metadata?.resourceVersion),
  );
  assert.ok(seen.length > 0);
  assert.ok(Math.min(...seen) >= 3, `spec.replicas went ${seen.join(" -> ")}`);
  assert.equal(d.spec?.replicas, 3);
  const kubewise = d.metadata?.managedFields?.find(
    (f) => f.manager === "kubewise" && f.operation === "Apply",
  );
  assert.equal(
    (kubewise?.fieldsV1 as { "f:spec"?: Record<string, unknown> })["f:spec"]?.["f:replicas"],
    undefined,
    "kubewise no longer owns spec.replicas, so the HPA can set it",
  );
  const again = await apply(client, autoscaled);
  assert.deepEqual(
    again.objects.map((o) => `${o.ref.kind} ${o.result}`),
    [
      "Service unchanged",
      "Deployment unchanged",
      "HorizontalPodAutoscaler unchanged",
      "PodDisruptionBudget unchanged",
    ],
  );
});

async function waitFor(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail("timed out waiting");
    await new Promise((r) => setTimeout(r, 50));
  }
}

test("Verifies that bad specs give clear errors and apply nothing: invalid fields, a value the API server rejects, a missing namespace, a foreign object", async (t) => {
  const { client } = testCluster();
  const ns = await testNamespace(t, "deploy");

  const invalid = spec(full("ghcr.io/acme/web:1.0").replace("min_containers: 2", "min_containers: 9"));
  assert.throws(
    () => target(invalid, ns),
    (err: unknown) =>
      err instanceof ConfigError && /min_containers: must be at most max_containers \(5\)/.test(err.message),
  );

  // Valid to kubewise, refused by the API server: only the Ingress is bad, and it comes last.
  const rejected = spec(
    full("ghcr.io/acme/web:1.0", "public_uri: web.example.com\ningress_class: Not_A_Class\n"),
  );
  await assert.rejects(apply(client, target(rejected, ns)), (err: unknown) => {
    assert.ok(err instanceof DeployError, String(err));
    assert.match(
      err.message,
      /the API server rejected 1 of 5 object\(s\) of service web, so nothing was applied/,
    );
    assert.match(err.message, /ingressClassName/);
    return true;
  });
  await assertNothingIn(ns);

  const missing = `${ns}-absent`;
  await assert.rejects(
    apply(client, target(spec(full("ghcr.io/acme/web:1.0")), missing)),
    /namespace .* does not exist, so nothing was applied: create it, or pass --create-namespace/,
  );
  await assert.rejects(client.core.readNamespace({ name: missing }), (err: unknown) => isNotFound(err));

  await client.core.createNamespacedService({
    namespace: ns,
    body: { metadata: { name: "web" }, spec: { ports: [{ port: 1234 }] } },
  });
  await assert.rejects(
    apply(client, target(spec(full("ghcr.io/acme/web:1.0")), ns)),
    /Service .*\/web \(managed by .*\)\ndelete them, or pass --adopt/,
  );
  const deployments = await client.apps.listNamespacedDeployment({ namespace: ns });
  assert.equal(deployments.items.length, 0);
  const svc = await client.core.readNamespacedService({ namespace: ns, name: "web" });
  assert.equal(svc.spec?.ports?.[0]?.port, 1234, "the foreign Service is untouched");
});

test("Verifies that --create-namespace creates a missing namespace and the service runs in it", async (t) => {
  const { client } = testCluster();
  const ns = `deploy-new-${Date.now().toString(36)}`;
  t.after(() => client.core.deleteNamespace({ name: ns }).catch(() => undefined));
  const report = await applyService(client, target(spec(fixed("ghcr.io/acme/api:1.0")), ns), {
    createNamespace: true,
    timeoutMs: 120_000,
  });
  assert.equal(report.namespaceCreated, true);
  assert.equal(report.rollout?.state, "ready");
  assert.equal((await client.core.readNamespace({ name: ns })).metadata?.name, ns);
});

test("Verifies that status shows the objects, rollout, autoscaler and pods, and delete removes everything kubewise applied", async (t) => {
  const { client } = testCluster();
  const ns = await testNamespace(t, "deploy");
  const file = spec(full("ghcr.io/acme/web:1.0", "public_uri: web.example.com\n"));
  await apply(client, target(file, ns));
  const status = await serviceStatus(client, ns, "web", target(file, ns).manifests);
  assert.deepEqual(
    status.objects.map((o) => `${o.ref.kind} ${o.present}`),
    [
      "Service true",
      "Deployment true",
      "HorizontalPodAutoscaler true",
      "PodDisruptionBudget true",
      "Ingress true",
    ],
  );
  assert.equal(status.workload?.done, true);
  assert.equal(status.autoscaler?.min, 2);
  assert.equal(status.autoscaler?.max, 5);
  assert.deepEqual(
    status.autoscaler?.metrics.map((m) => `${m.name} ${m.target}`),
    ["cpu 70", "memory 80"],
  );
  assert.ok(status.pods.length >= 1);
  assert.ok(status.pods.every((p) => p.ready && !p.problem));
  const text = formatStatus(status);
  assert.match(text, /Deployment\/web: \d\/\d ready/);
  assert.match(text, /HorizontalPodAutoscaler\/web: .*min 2, max 5; current\/target cpu \?%?\/70%/);

  const planned = target(
    spec(full("ghcr.io/acme/web:1.0", "public_uri: [web.example.com, web.example.com/v2]\n")),
    ns,
  );
  const withMissing = await serviceStatus(client, ns, "web", planned.manifests);
  assert.equal(
    withMissing.objects.filter((o) => !o.present).length,
    1,
    "the second Ingress is not applied yet",
  );

  const report = await deleteService(client, ns, "web", { timeoutMs: 120_000 });
  assert.deepEqual(
    report.deleted.map((r) => r.kind),
    ["Ingress", "PodDisruptionBudget", "HorizontalPodAutoscaler", "Deployment", "Service"],
  );
  assert.deepEqual(await listServiceObjects(client, ns, "web"), []);
  const pods = await client.core.listNamespacedPod({
    namespace: ns,
    labelSelector: "app.kubernetes.io/name=web",
  });
  assert.deepEqual(
    pods.items.map((p) => p.metadata?.name),
    [],
    "delete waited for the pods too",
  );
  const empty = await serviceStatus(client, ns, "web");
  assert.match(formatStatus(empty), /no objects: the service is not deployed here/);
});

const stateful = (image: string) => `
name: db
image: ${image}
ports: [{ name: http, type: http, port: 8080 }]
replicas: 2
persistent_storage: [{ size: 1, path: /data }]
`;

/**
 * claimVolumes creates a PersistentVolume pre-bound to each claim a StatefulSet "db" with `replicas`
 * pods will make: the embedded cluster has no provisioner, so without them the claims stay Pending
 * and the pods unschedulable. The PV controller binds them; no kubelet is involved.
 */
async function claimVolumes(t: TestContext, namespace: string, replicas: number): Promise<void> {
  const { client } = testCluster();
  for (let i = 0; i < replicas; i++) {
    const name = `${namespace}-storage-0-db-${i}`;
    await client.core.createPersistentVolume({
      body: {
        metadata: { name, labels: { "kubewise.dev/test": "true" } },
        spec: {
          capacity: { storage: "1Gi" },
          accessModes: ["ReadWriteOnce"],
          persistentVolumeReclaimPolicy: "Retain",
          hostPath: { path: `/tmp/${name}` },
          claimRef: { namespace, name: `storage-0-db-${i}` },
        },
      },
    });
    t.after(() => client.core.deletePersistentVolume({ name }).catch(() => undefined));
  }
}

test("Verifies that a persistent_storage service waits for its volume claims, fails fast on a crashing pod, and refuses --rollback-on-failure", async (t) => {
  const { client } = testCluster();
  const ns = await testNamespace(t, "deploy");
  // Until the claims bind, the scheduler calls the pods unschedulable: that is waited for, not a failure.
  let claimsPending: () => void = () => {};
  const pending = new Promise<void>((resolve) => (claimsPending = resolve));
  const progress: string[] = [];
  const applying = applyService(client, target(spec(stateful("ghcr.io/acme/db:1.0")), ns), {
    timeoutMs: 120_000,
    onProgress: (m) => {
      progress.push(m);
      if (/waits for its volume claims to bind/.test(m)) claimsPending();
    },
  });
  const settled = applying.then(
    () => "returned",
    () => "returned",
  );
  const first = await Promise.race([pending.then(() => "pending"), settled]);
  assert.equal(first, "pending", `apply did not wait for the claims; progress: ${progress.join("; ")}`);
  await claimVolumes(t, ns, 2);
  const created = await applying;
  assert.equal(created.rollout?.state, "ready", created.rollout && formatRollout(created.rollout));
  assert.ok(
    progress.some((m) =>
      /pod .*\/db-[01]: waits for its volume claims to bind \(.*PersistentVolumeClaims/.test(m),
    ),
    progress.join("\n"),
  );
  const claims = await client.core.listNamespacedPersistentVolumeClaim({ namespace: ns });
  assert.deepEqual(claims.items.map((c) => `${c.metadata?.name} ${c.status?.phase}`).sort(), [
    "storage-0-db-0 Bound",
    "storage-0-db-1 Bound",
  ]);

  // Keep the update open: with minReadySeconds the controller replaces db-0 only 20 s after db-1 is
  // ready. Set by another field manager, so kubewise's apply keeps it.
  await client.apps.patchNamespacedStatefulSet({
    namespace: ns,
    name: "db",
    fieldManager: "kubewise-test",
    body: [{ op: "add", path: "/spec/minReadySeconds", value: 20 }],
  });
  const bad = "ghcr.io/acme/db:2.0-broken";
  const started = Date.now();
  const updating = apply(client, target(spec(stateful(bad)), ns));
  const crashed = await crashNewPod(t, ns, bad);
  const report = await updating;
  const rollout = report.rollout;
  assert.equal(rollout?.state, "failed", rollout && formatRollout(rollout));
  if (rollout?.state !== "failed") return;
  assert.equal(rollout.reason, "restarted");
  assert.equal(rollout.workload.kind, "StatefulSet");
  assert.match(rollout.message, new RegExp(`${crashed}: container db restarted 1 time\\(s\\)`));
  assert.ok(Date.now() - started < 60_000, "failed on the crash, not at the 120 s timeout");
  assert.deepEqual(
    rollout.pods.map((p) => `${p.name} ${p.problem?.reason}`),
    [`${crashed} restarted`],
    "only pods of the new revision are reported",
  );
  assert.match(formatRollout(rollout), /rollout of StatefulSet\/db failed \(restarted\)/);

  const failed = await client.apps.readNamespacedStatefulSet({ namespace: ns, name: "db" });
  await assert.rejects(
    apply(client, target(spec(stateful("ghcr.io/acme/db:1.0")), ns), true),
    (err: unknown) => {
      assert.ok(err instanceof DeployError, String(err));
      assert.match(err.message, /--rollback-on-failure .*persistent_storage.*nothing was applied/);
      return true;
    },
  );
  const refused = await client.apps.readNamespacedStatefulSet({ namespace: ns, name: "db" });
  assert.equal(refused.metadata?.generation, failed.metadata?.generation, "nothing was applied");
  assert.equal(refused.spec?.template.spec?.containers[0]?.image, bad);
});
