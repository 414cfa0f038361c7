/**
 * The servo's k8s and k8slive connectors on the embedded cluster: every bullet of seed 000
 * (servo-k8slive), run through the same Servo.execute path the CLI and the servo loop use.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import type { V1Deployment, V1Pod, V1ResourceRequirements } from "../../src/kube/index.js";
import { applyObject, waitForDeleted, waitForPodReady, waitForRollout } from "../../src/kube/index.js";
import {
  Servo,
  assembleServo,
  parseCommand,
  parseServoConfig,
  type OptimizerTransport,
  type ServoConfig,
} from "../../src/servo/index.js";
import { testCluster, testNamespace } from "./support/cluster.js";

const seedText = readFileSync("test/fixtures/servo/seed.yaml", "utf8");
type Doc = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- test documents are edited freely

const noOptimizer: OptimizerTransport = { target: "none", send: () => Promise.reject(new Error("unused")) };

/** seedConfig is the seed's example YAML with the namespace pointed at the test's own. */
function seedConfig(
  namespace: string,
  edit: (doc: Record<string, Record<string, unknown>>) => void = () => {},
): ServoConfig {
  const doc = parse(seedText) as Record<string, Record<string, unknown>>;
  (doc.k8s as Record<string, unknown>).namespace = namespace;
  edit(doc);
  return parseServoConfig(doc, "seed.yaml");
}

function servoFor(config: ServoConfig, servoPod?: { name: string; namespace: string }): Servo {
  const parts = assembleServo(config, { client: testCluster().client, servoPod });
  return new Servo({ ...parts, transport: noOptimizer });
}

interface MainOptions {
  resources?: V1ResourceRequirements;
  nodeSelector?: Record<string, string>;
  minReadySeconds?: number;
  name?: string;
  /** env of the main container; @default COMMIT_DELAY=20 and OTHER=x */
  env?: { name: string; value: string }[];
}

async function createMain(namespace: string, options: MainOptions = {}): Promise<V1Deployment> {
  const name = options.name ?? "web-main";
  const labels = { app: name };
  const d: V1Deployment = {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name, namespace },
    spec: {
      replicas: 1,
      minReadySeconds: options.minReadySeconds,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels, annotations: { "example.com/team": "web" } },
        spec: {
          nodeSelector: options.nodeSelector,
          containers: [
            {
              name: "main",
              image: "example/web:1.0",
              env: options.env ?? [
                { name: "COMMIT_DELAY", value: "20" },
                { name: "OTHER", value: "x" },
              ],
              resources: options.resources ?? {
                requests: { cpu: "250m", memory: "256Mi" },
                limits: { cpu: "500m", memory: "512Mi" },
              },
            },
          ],
        },
      },
    },
  };
  await applyObject(testCluster().client, d);
  if (!options.nodeSelector)
    await waitForRollout(testCluster().client, namespace, name, { timeoutMs: 60_000 });
  return d;
}

function tuningAdjust(
  settings: Record<string, number | string>,
  control: Record<string, unknown> = {},
): ReturnType<typeof parseCommand> {
  return parseCommand({
    cmd: "ADJUST",
    cmd_uid: "test-1",
    param: {
      state: {
        application: {
          components: {
            "opsani-tuning": {
              settings: Object.fromEntries(Object.entries(settings).map(([k, value]) => [k, { value }])),
            },
          },
        },
      },
      control: { userdata: { deploy_to: "tuning" }, settlement: 0, ...control },
    },
  });
}

const describe = parseCommand({ cmd: "DESCRIBE", param: {} });

type Descriptor = {
  application: {
    components: Record<
      string,
      { settings: Record<string, { value: unknown; min?: number; max?: number; step?: number }> }
    >;
  };
};

function components(reply: Record<string, unknown>): Descriptor["application"]["components"] {
  return (reply.descriptor as Descriptor).application.components;
}

async function tuningPod(namespace: string): Promise<V1Pod | undefined> {
  return testCluster()
    .client.core.readNamespacedPod({ namespace, name: "opsani-tuning" })
    .catch(() => undefined);
}

test("Verifies that describe with no tuning pod reports the main component's values, its guard rails and replicas 0", async (t) => {
  const ns = await testNamespace(t, "servo-describe");
  await createMain(ns);
  const reply = await servoFor(seedConfig(ns)).execute(describe);
  assert.equal(reply.status, "ok", JSON.stringify(reply));
  const tuning = components(reply)["opsani-tuning"]?.settings;
  assert.ok(tuning, "the tuning component is reported under the k8slive component name");
  assert.deepEqual(
    { value: tuning.cpu?.value, min: tuning.cpu?.min, max: tuning.cpu?.max, step: tuning.cpu?.step },
    { value: 0.25, min: 0.125, max: 2, step: 0.125 },
  );
  assert.equal(tuning.mem?.value, 0.25);
  assert.deepEqual(
    { value: tuning.replicas?.value, min: tuning.replicas?.min, max: tuning.replicas?.max },
    { value: 0, min: 0, max: 1 },
  );
  assert.equal(tuning.COMMIT_DELAY?.value, 20);
  const main = components(reply)["web-main/main"]?.settings;
  assert.deepEqual(
    [main?.cpu?.value, main?.mem?.value, main?.replicas?.value, main?.COMMIT_DELAY?.value],
    [0.25, 0.25, 1, 20],
  );
});

test("Verifies that selector both reports the request if set, else the limit, else 0", async (t) => {
  const ns = await testNamespace(t, "servo-selector");
  await createMain(ns, { resources: { limits: { cpu: "750m" } } });
  const tuning = components(await servoFor(seedConfig(ns)).execute(describe))["opsani-tuning"]?.settings;
  assert.equal(tuning?.cpu?.value, 0.75, "no request: the limit");
  assert.equal(tuning?.mem?.value, 0, "neither: 0");
});

test("Verifies that adjust with deploy_to tuning creates the tuning pod from the main template with the adjusted values", async (t) => {
  const { client } = testCluster();
  const ns = await testNamespace(t, "servo-create");
  await createMain(ns);
  const servo = servoFor(seedConfig(ns));
  const progress: number[] = [];
  const reply = await servo.execute(
    tuningAdjust({ cpu: 0.5, mem: 0.75, replicas: 1, COMMIT_DELAY: 40 }),
    undefined,
    (p) => progress.push(p),
  );
  assert.equal(reply.status, "ok", JSON.stringify(reply));
  assert.equal(reply.cmd_uid, "test-1");
  assert.ok(progress.length > 0 && progress.every((p) => p >= 0 && p <= 100));

  const pod = await tuningPod(ns);
  assert.ok(pod, "the tuning pod exists");
  assert.equal(pod.metadata?.labels?.opsani_role, "tuning");
  assert.equal(pod.metadata?.labels?.app, "web-main", "template labels are kept");
  assert.equal(pod.metadata?.annotations?.["opsani.com/opsani-tuning-for"], "web-main");
  assert.equal(pod.metadata?.annotations?.["example.com/team"], "web", "template annotations are kept");
  const c = pod.spec?.containers[0];
  assert.deepEqual({ ...c?.resources?.requests }, { cpu: "500m", memory: "768Mi" });
  assert.deepEqual({ ...c?.resources?.limits }, { cpu: "500m", memory: "768Mi" });
  assert.deepEqual(
    c?.env?.map((e) => [e.name, e.value]),
    [
      ["COMMIT_DELAY", "40"],
      ["OTHER", "x"],
    ],
  );
  assert.equal(
    pod.metadata?.ownerReferences?.[0]?.controller,
    true,
    "a controller owner keeps the main ReplicaSet from adopting it",
  );
  assert.ok(
    pod.status?.conditions?.some((x) => x.type === "Ready" && x.status === "True"),
    "the adjust waited for readiness",
  );

  const after = components(await servo.execute(describe));
  assert.deepEqual(
    [
      after["opsani-tuning"]?.settings.cpu?.value,
      after["opsani-tuning"]?.settings.mem?.value,
      after["opsani-tuning"]?.settings.replicas?.value,
      after["opsani-tuning"]?.settings.COMMIT_DELAY?.value,
    ],
    [0.5, 0.75, 1, 40],
  );
  assert.equal(after["web-main/main"]?.settings.cpu?.value, 0.25, "the main deployment is untouched");
  const main = await client.apps.readNamespacedDeployment({ namespace: ns, name: "web-main" });
  assert.equal(main.metadata?.generation, 1);
  const rsPods = await client.core.listNamespacedPod({
    namespace: ns,
    labelSelector: "app=web-main,!opsani_role",
  });
  assert.equal(rsPods.items.length, 1, "the main ReplicaSet still has exactly its own pod");
});

test("Verifies that deploy_to main skips the tuning pod and the k8s connector patches and rolls out the main Deployment", async (t) => {
  const { client } = testCluster();
  const ns = await testNamespace(t, "servo-main");
  await createMain(ns);
  const servo = servoFor(seedConfig(ns));
  const reply = await servo.execute(
    parseCommand({
      cmd: "ADJUST",
      param: {
        state: {
          application: {
            components: {
              "web-main/main": {
                settings: {
                  cpu: { value: 1 },
                  mem: { value: 0.5 },
                  replicas: { value: 2 },
                  COMMIT_DELAY: { value: 7 },
                },
              },
              "opsani-tuning": { settings: { cpu: { value: 1 }, replicas: { value: 1 } } },
            },
          },
        },
        control: { userdata: { deploy_to: "main" }, settlement: 0 },
      },
    }),
  );
  assert.equal(reply.status, "ok", JSON.stringify(reply));
  assert.match(String(reply.message), /k8slive: Skipped/);
  assert.equal(await tuningPod(ns), undefined, "no tuning pod was created");
  const d = await client.apps.readNamespacedDeployment({ namespace: ns, name: "web-main" });
  const c = d.spec?.template.spec?.containers[0];
  assert.deepEqual(
    [c?.resources?.requests?.cpu, c?.resources?.limits?.memory, d.spec?.replicas],
    ["1", "512Mi", 2],
  );
  assert.equal(c?.env?.find((e) => e.name === "COMMIT_DELAY")?.value, "7");
  assert.equal(d.status?.availableReplicas, 2, "the adjust waited for the rollout");

  const skipped = await servo.execute(
    parseCommand({
      cmd: "ADJUST",
      param: {
        state: { application: { components: { "web-main/main": { settings: { cpu: { value: 0.5 } } } } } },
        control: { userdata: { deploy_to: "tuning" } },
      },
    }),
  );
  assert.equal(skipped.status, "ok");
  assert.match(String(skipped.reason), /k8s: Skipped due to 'adjust_on' condition/);
  const unchanged = await client.apps.readNamespacedDeployment({ namespace: ns, name: "web-main" });
  assert.equal(unchanged.metadata?.generation, d.metadata?.generation);
});

test("Verifies that replicas 0 deletes the tuning pod and replicas 2 is rejected without changing anything", async (t) => {
  const ns = await testNamespace(t, "servo-replicas");
  await createMain(ns);
  const servo = servoFor(seedConfig(ns));
  assert.equal((await servo.execute(tuningAdjust({ cpu: 0.5, mem: 0.5, replicas: 1 }))).status, "ok");
  const before = await tuningPod(ns);
  assert.ok(before);

  const two = await servo.execute(tuningAdjust({ cpu: 0.25, replicas: 2 }));
  assert.equal(two.status, "failed");
  assert.match(
    String(two.message),
    /replicas: 2 is not supported; the tuning pod takes only 0 \(remove it\) or 1/,
  );
  assert.equal(
    (await tuningPod(ns))?.metadata?.uid,
    before.metadata?.uid,
    "the tuning pod was left as it was",
  );

  const outOfRange = await servo.execute(tuningAdjust({ cpu: 3, replicas: 1 }));
  assert.equal(outOfRange.status, "failed");
  assert.match(String(outOfRange.message), /setting cpu: 3 is outside 0\.125\.\.2/);

  const zero = await servo.execute(tuningAdjust({ replicas: 0 }));
  assert.equal(zero.status, "ok", JSON.stringify(zero));
  assert.equal(await tuningPod(ns), undefined);
  const d = components(await servo.execute(describe))["opsani-tuning"]?.settings;
  assert.equal(d?.replicas?.value, 0);
});

test("Verifies that an existing tuning pod with the original's underscore annotation is recognised", async (t) => {
  const { client } = testCluster();
  const ns = await testNamespace(t, "servo-legacy");
  await createMain(ns);
  await client.core.createNamespacedPod({
    namespace: ns,
    body: {
      metadata: {
        name: "opsani-tuning",
        labels: { opsani_role: "tuning" },
        annotations: { "opsani.com/opsani_tuning_for": "web-main" },
      },
      spec: {
        containers: [{ name: "main", image: "x", resources: { requests: { cpu: "1", memory: "1Gi" } } }],
      },
    },
  });
  const settings = components(await servoFor(seedConfig(ns)).execute(describe))["opsani-tuning"]?.settings;
  assert.deepEqual([settings?.cpu?.value, settings?.mem?.value, settings?.replicas?.value], [1, 1, 1]);
});

/**
 * restartDuringSettlement adjusts the tuning pod with the k8slive section edited by `live` and
 * the adjust's `control`, and patches a restart into the pod once it is ready.
 */
async function restartDuringSettlement(
  ns: string,
  live: Record<string, unknown>,
  control: Record<string, unknown> = { settlement: 30 },
): Promise<Record<string, unknown>> {
  const { client } = testCluster();
  await createMain(ns);
  const servo = servoFor(
    seedConfig(ns, (doc) => Object.assign(doc.k8slive as Record<string, unknown>, live)),
  );
  const pending = servo.execute(tuningAdjust({ cpu: 0.5, mem: 0.5, replicas: 1 }, control));
  await waitForPodReady(client, ns, "opsani-tuning", { timeoutMs: 60_000 });
  await client.core.patchNamespacedPodStatus({
    namespace: ns,
    name: "opsani-tuning",
    body: [{ op: "replace", path: "/status/containerStatuses/0/restartCount", value: 1 }],
  });
  return pending;
}

test("Verifies that a restart during settlement is rejected as unstable and on_fail destroy deletes the tuning pod", async (t) => {
  const ns = await testNamespace(t, "servo-unstable");
  const started = Date.now();
  const reply = await restartDuringSettlement(ns, { on_fail: "destroy" });
  assert.deepEqual([reply.status, reply.reason], ["rejected", "unstable"], JSON.stringify(reply));
  assert.match(String(reply.message), /restarted 1 time\(s\).*Destroy succeeded/);
  assert.ok(Date.now() - started < 25_000, "the restart ends the settlement at once");
  assert.equal(await tuningPod(ns), undefined);
});

test("Verifies that on_fail nop leaves the failed tuning pod in place", async (t) => {
  const ns = await testNamespace(t, "servo-nop");
  const reply = await restartDuringSettlement(ns, { on_fail: "nop" });
  assert.deepEqual([reply.status, reply.reason], ["rejected", "unstable"]);
  assert.ok(await tuningPod(ns), "the pod is kept for inspection");
});

test("Verifies that an unschedulable tuning pod is rejected as scheduling-failed and on_fail applies", async (t) => {
  const ns = await testNamespace(t, "servo-sched");
  await createMain(ns, { nodeSelector: { "kubewise.dev/no-such-node": "true" } });
  const reply = await servoFor(seedConfig(ns)).execute(
    tuningAdjust({ cpu: 0.5, replicas: 1 }, { timeout: 60 }),
  );
  assert.deepEqual([reply.status, reply.reason], ["rejected", "scheduling-failed"], JSON.stringify(reply));
  assert.match(String(reply.message), /cannot be scheduled.*Destroy succeeded/);
  assert.equal(await tuningPod(ns), undefined);
});

test("Verifies that deleting the servo's Deployment deletes the tuning pod through its owner reference", async (t) => {
  const { client } = testCluster();
  const ns = await testNamespace(t, "servo-owner");
  await createMain(ns);
  await createMain(ns, { name: "servo" });
  const servoPod = (await client.core.listNamespacedPod({ namespace: ns, labelSelector: "app=servo" }))
    .items[0];
  assert.ok(servoPod?.metadata?.name);
  const servo = servoFor(seedConfig(ns), { name: servoPod.metadata.name, namespace: ns });
  assert.equal((await servo.execute(tuningAdjust({ cpu: 0.5, replicas: 1 }))).status, "ok");
  const pod = await tuningPod(ns);
  assert.deepEqual(
    [pod?.metadata?.ownerReferences?.[0]?.kind, pod?.metadata?.ownerReferences?.[0]?.name],
    ["Deployment", "servo"],
  );
  await client.apps.deleteNamespacedDeployment({
    namespace: ns,
    name: "servo",
    propagationPolicy: "Background",
  });
  await waitForDeleted(
    client,
    { apiVersion: "v1", kind: "Pod", namespace: ns, name: "opsani-tuning" },
    { timeoutMs: 60_000 },
  );
});

test("Verifies that a crash during the main rollout is rejected as unstable and rolled back to the previous revision", async (t) => {
  const { client } = testCluster();
  const ns = await testNamespace(t, "servo-rollback");
  // minReadySeconds keeps the rollout open long enough to crash its new pod.
  await createMain(ns, { minReadySeconds: 15 });
  const servo = servoFor(seedConfig(ns));
  const pending = servo.execute(
    parseCommand({
      cmd: "ADJUST",
      param: {
        state: {
          application: { components: { "web-main/main": { settings: { COMMIT_DELAY: { value: 99 } } } } },
        },
        control: { userdata: { deploy_to: "main" } },
      },
    }),
  );
  let crashed: string | undefined;
  for (let i = 0; i < 200 && !crashed; i++) {
    const pods = await client.core.listNamespacedPod({ namespace: ns, labelSelector: "app=web-main" });
    const fresh = pods.items.find(
      (p) =>
        p.spec?.containers[0]?.env?.some((e) => e.name === "COMMIT_DELAY" && e.value === "99") &&
        p.status?.phase === "Running",
    );
    if (fresh?.metadata?.name) {
      await client.core.patchNamespacedPodStatus({
        namespace: ns,
        name: fresh.metadata.name,
        body: [{ op: "replace", path: "/status/containerStatuses/0/restartCount", value: 1 }],
      });
      crashed = fresh.metadata.name;
    } else await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(crashed, "a pod of the new revision came up");
  const reply = await pending;
  assert.deepEqual([reply.status, reply.reason], ["rejected", "unstable"], JSON.stringify(reply));
  assert.match(String(reply.message), /Rollback to revision 1 succeeded/);
  const d = await client.apps.readNamespacedDeployment({ namespace: ns, name: "web-main" });
  assert.equal(
    d.spec?.template.spec?.containers[0]?.env?.find((e) => e.name === "COMMIT_DELAY")?.value,
    "20",
  );
});

test("Verifies that a cancelled adjust answers cancelled and does not apply on_fail: the tuning pod stays", async (t) => {
  const { client } = testCluster();
  const ns = await testNamespace(t, "servo-cancel");
  await createMain(ns);
  const servo = servoFor(seedConfig(ns)); // on_fail: destroy
  const stop = new AbortController();
  const pending = servo.execute(
    tuningAdjust({ cpu: 0.5, mem: 0.5, replicas: 1 }, { settlement: 60 }),
    stop.signal,
  );
  await waitForPodReady(client, ns, "opsani-tuning", { timeoutMs: 60_000 });
  stop.abort(new Error("interrupted by SIGTERM"));
  const reply = await pending;
  assert.equal(reply.status, "cancelled", JSON.stringify(reply));
  assert.match(String(reply.message), /interrupted by SIGTERM/);
  assert.ok(await tuningPod(ns), "on_fail destroy is not applied to a cancel");
});

test("Verifies that without adjust_on, deploy_to alone gates the tuning pod: a missing or other deploy_to skips it", async (t) => {
  const ns = await testNamespace(t, "servo-deployto");
  await createMain(ns);
  const servo = servoFor(
    seedConfig(ns, (doc) => {
      delete (doc.k8slive as Record<string, unknown>).adjust_on;
    }),
  );
  for (const userdata of [{}, { deploy_to: "main" }]) {
    const reply = await servo.execute(tuningAdjust({ cpu: 0.5, replicas: 1 }, { userdata }));
    assert.equal(reply.status, "ok", JSON.stringify(reply));
    assert.equal(await tuningPod(ns), undefined, `no tuning pod for userdata ${JSON.stringify(userdata)}`);
  }
  const reply = await servo.execute(tuningAdjust({ cpu: 0.5, replicas: 1 }));
  assert.equal(reply.status, "ok", JSON.stringify(reply));
  assert.ok(await tuningPod(ns), "deploy_to tuning creates it");
});

test("Verifies that cpu_selector request and mem_selector limit write and read only that side of the tuning pod's resources", async (t) => {
  const ns = await testNamespace(t, "servo-selectors");
  await createMain(ns);
  const servo = servoFor(
    seedConfig(ns, (doc) => {
      const live = doc.k8slive as Record<string, unknown>;
      live.cpu_selector = "request";
      live.mem_selector = "limit";
    }),
  );
  const reply = await servo.execute(tuningAdjust({ cpu: 0.375, mem: 0.75, replicas: 1 }));
  assert.equal(reply.status, "ok", JSON.stringify(reply));
  // As servo-k8s does: the selected side is set and the other removed, so the API server
  // defaults a missing request to the limit.
  const c = (await tuningPod(ns))?.spec?.containers[0];
  assert.deepEqual({ ...c?.resources?.requests }, { cpu: "375m", memory: "768Mi" });
  assert.deepEqual({ ...c?.resources?.limits }, { memory: "768Mi" }, "the cpu limit is removed");
  const tuning = components(await servo.execute(describe))["opsani-tuning"]?.settings;
  assert.deepEqual([tuning?.cpu?.value, tuning?.mem?.value], [0.375, 0.75]);
});

test("Verifies that the k8slive settlement from the config is watched when the adjust's control gives none", async (t) => {
  const ns = await testNamespace(t, "servo-cfg-settle");
  const reply = await restartDuringSettlement(ns, { settlement: 30 }, { settlement: undefined });
  assert.deepEqual([reply.status, reply.reason], ["rejected", "unstable"], JSON.stringify(reply));
});

test("Verifies that the k8s connector refuses to change a pinned setting and lets the others through when it is repeated at its value", async (t) => {
  const { client } = testCluster();
  const ns = await testNamespace(t, "servo-pinned");
  await createMain(ns);
  const servo = servoFor(
    seedConfig(ns, (doc) => {
      const settings = (doc.k8s as Doc).application.components["web-main/main"].settings as Doc;
      settings.cpu.pinned = true;
    }),
  );
  const adjustMain = (settings: Record<string, number>): ReturnType<typeof parseCommand> =>
    parseCommand({
      cmd: "ADJUST",
      param: {
        state: {
          application: {
            components: {
              "web-main/main": {
                settings: Object.fromEntries(Object.entries(settings).map(([k, value]) => [k, { value }])),
              },
            },
          },
        },
        control: { userdata: { deploy_to: "main" }, settlement: 0 },
      },
    });
  const refused = await servo.execute(adjustMain({ cpu: 1, replicas: 2 }));
  assert.deepEqual([refused.status, refused.reason], ["failed", "adjust-failed"], JSON.stringify(refused));
  assert.match(String(refused.message), /setting cpu is pinned at 0\.25; it cannot be changed to 1/);
  const untouched = await client.apps.readNamespacedDeployment({ namespace: ns, name: "web-main" });
  assert.equal(untouched.metadata?.generation, 1, "nothing was applied");

  const repeated = await servo.execute(adjustMain({ cpu: 0.25, replicas: 2 }));
  assert.equal(repeated.status, "ok", JSON.stringify(repeated));
  const d = await client.apps.readNamespacedDeployment({ namespace: ns, name: "web-main" });
  assert.equal(d.spec?.replicas, 2);
  assert.equal(d.spec?.template.spec?.containers[0]?.resources?.requests?.cpu, "250m");
});

/** mainAdjust is an ADJUST of the main component with deploy_to main. */
function mainAdjust(
  settings: Record<string, number | string>,
  control: Record<string, unknown> = {},
): ReturnType<typeof parseCommand> {
  return parseCommand({
    cmd: "ADJUST",
    param: {
      state: {
        application: {
          components: {
            "web-main/main": {
              settings: Object.fromEntries(Object.entries(settings).map(([k, value]) => [k, { value }])),
            },
          },
        },
      },
      control: { userdata: { deploy_to: "main" }, ...control },
    },
  });
}

/**
 * restartNewMainPod patches a restart into the first Running pod of web-main whose COMMIT_DELAY
 * is `delay` (a pod of the adjusted revision), as a kubelet would report a crash.
 */
async function restartNewMainPod(ns: string, delay: string): Promise<string> {
  const { client } = testCluster();
  for (let i = 0; i < 300; i++) {
    const pods = await client.core.listNamespacedPod({ namespace: ns, labelSelector: "app=web-main" });
    const fresh = pods.items.find(
      (p) =>
        p.spec?.containers[0]?.env?.some((e) => e.name === "COMMIT_DELAY" && e.value === delay) &&
        p.status?.containerStatuses?.[0]?.ready === true &&
        p.metadata?.deletionTimestamp === undefined,
    );
    if (fresh?.metadata?.name) {
      await client.core.patchNamespacedPodStatus({
        namespace: ns,
        name: fresh.metadata.name,
        body: [{ op: "replace", path: "/status/containerStatuses/0/restartCount", value: 1 }],
      });
      return fresh.metadata.name;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no ready pod with COMMIT_DELAY=${delay} came up`);
}

test("Verifies that the main settlement watches the new pods: a restart after the rollout is rejected as unstable and on_fail destroy scales to 0", async (t) => {
  const { client } = testCluster();
  const ns = await testNamespace(t, "servo-main-settle");
  await createMain(ns);
  const servo = servoFor(
    seedConfig(ns, (doc) => {
      (doc.k8s as Doc).on_fail = "destroy";
    }),
  );
  const started = Date.now();
  let settling!: () => void;
  const settlementBegun = new Promise<void>((resolve) => (settling = resolve));
  const pending = servo.execute(mainAdjust({ COMMIT_DELAY: 42 }, { settlement: 60 }), undefined, (_p, m) => {
    if (m?.startsWith("settlement")) settling();
  });
  // The restart comes once the servo's rollout wait is over, so only the settlement can see it.
  await Promise.race([settlementBegun, pending]);
  await restartNewMainPod(ns, "42");
  const reply = await pending;
  assert.deepEqual([reply.status, reply.reason], ["rejected", "unstable"], JSON.stringify(reply));
  assert.match(
    String(reply.message),
    /settlement of the main deployment failed: .*Destroy \(scale to 0\) succeeded/,
  );
  assert.ok(Date.now() - started < 50_000, "the restart ends the 60 s settlement early");
  const d = await client.apps.readNamespacedDeployment({ namespace: ns, name: "web-main" });
  assert.equal(d.spec?.replicas, 0);
});

test("Verifies that main on_fail nop leaves the failed revision in place", async (t) => {
  const { client } = testCluster();
  const ns = await testNamespace(t, "servo-main-nop");
  await createMain(ns);
  const servo = servoFor(
    seedConfig(ns, (doc) => {
      (doc.k8s as Doc).on_fail = "nop";
    }),
  );
  const pending = servo.execute(mainAdjust({ COMMIT_DELAY: 43 }, { settlement: 60 }));
  await waitForRollout(client, ns, "web-main", { timeoutMs: 60_000 });
  await restartNewMainPod(ns, "43");
  const reply = await pending;
  assert.deepEqual([reply.status, reply.reason], ["rejected", "unstable"], JSON.stringify(reply));
  assert.doesNotMatch(String(reply.message), /Rollback|Destroy/);
  const d = await client.apps.readNamespacedDeployment({ namespace: ns, name: "web-main" });
  assert.equal(d.spec?.replicas, 1);
  assert.equal(
    d.spec?.template.spec?.containers[0]?.env?.find((e) => e.name === "COMMIT_DELAY")?.value,
    "43",
  );
});

test("Verifies that main replicas are bounded by the config: out of range or not listed fails and changes nothing", async (t) => {
  const { client } = testCluster();
  const ns = await testNamespace(t, "servo-main-replicas");
  await createMain(ns);
  const tooMany = await servoFor(seedConfig(ns)).execute(mainAdjust({ replicas: 5 }));
  assert.deepEqual([tooMany.status, tooMany.reason], ["failed", "adjust-failed"]);
  assert.match(String(tooMany.message), /replicas: 5 is not allowed; expected a whole number from 1 to 3/);
  const unlisted = servoFor(
    seedConfig(ns, (doc) => {
      delete (doc.k8s as Doc).application.components["web-main/main"].settings.replicas;
    }),
  );
  const described = components(await unlisted.execute(describe))["web-main/main"];
  assert.equal(described?.settings.replicas, undefined, "replicas is not described when not listed");
  const refused = await unlisted.execute(mainAdjust({ replicas: 2 }));
  assert.deepEqual([refused.status, refused.reason], ["failed", "adjust-failed"]);
  assert.match(String(refused.message), /has no setting replicas/);
  const d = await client.apps.readNamespacedDeployment({ namespace: ns, name: "web-main" });
  assert.deepEqual([d.spec?.replicas, d.metadata?.generation], [1, 1]);
});

test("Verifies that an env setting the container lacks is described at its default and added to the tuning pod", async (t) => {
  const ns = await testNamespace(t, "servo-env-default");
  await createMain(ns, { env: [{ name: "OTHER", value: "x" }] });
  const servo = servoFor(
    seedConfig(ns, (doc) => {
      (doc.k8s as Doc).application.components["web-main/main"].env.COMMIT_DELAY.default = 37;
    }),
  );
  const before = components(await servo.execute(describe));
  assert.equal(before["web-main/main"]?.settings.COMMIT_DELAY?.value, 37);
  assert.equal(before["opsani-tuning"]?.settings.COMMIT_DELAY?.value, 37);
  const reply = await servo.execute(tuningAdjust({ cpu: 0.5, replicas: 1, COMMIT_DELAY: 55 }));
  assert.equal(reply.status, "ok", JSON.stringify(reply));
  const env = (await tuningPod(ns))?.spec?.containers[0]?.env?.map((e) => ({ name: e.name, value: e.value }));
  assert.deepEqual(env, [
    { name: "OTHER", value: "x" },
    { name: "COMMIT_DELAY", value: "55" },
  ]);
});

test("Verifies that pod_name and component rename the tuning pod and its component", async (t) => {
  const { client } = testCluster();
  const ns = await testNamespace(t, "servo-renamed");
  await createMain(ns);
  const servo = servoFor(
    seedConfig(ns, (doc) => Object.assign(doc.k8slive as Doc, { pod_name: "tune-x", component: "canary" })),
  );
  assert.deepEqual(Object.keys(components(await servo.execute(describe))).sort(), [
    "canary",
    "web-main/main",
  ]);
  const reply = await servo.execute(
    parseCommand({
      cmd: "ADJUST",
      param: {
        state: { application: { components: { canary: { settings: { cpu: { value: 0.5 } } } } } },
        control: { userdata: { deploy_to: "tuning" } },
      },
    }),
  );
  assert.equal(reply.status, "ok", JSON.stringify(reply));
  const pod = await client.core.readNamespacedPod({ namespace: ns, name: "tune-x" });
  assert.equal(pod.metadata?.labels?.opsani_role, "tuning");
  assert.equal(await tuningPod(ns), undefined, "no pod under the default name");
  assert.equal(components(await servo.execute(describe)).canary?.settings.replicas?.value, 1);
});
