import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import type { V1Container, V1Pod } from "@kubernetes/client-node";
import { computeQos, QOS_LABEL, sanitizeLabelName, taskFromPod } from "./tasks.js";

const GiB = 2 ** 30;
const MiB = 2 ** 20;

function container(
  name: string,
  requests?: Record<string, string>,
  limits?: Record<string, string>,
  extra: Partial<V1Container> = {},
): V1Container {
  return { name, resources: { ...(requests ? { requests } : {}), ...(limits ? { limits } : {}) }, ...extra };
}

function pod(spec: V1Pod["spec"], meta: V1Pod["metadata"] = {}, status: V1Pod["status"] = {}): V1Pod {
  return { metadata: { name: "web", namespace: "shop", uid: "u-1", ...meta }, spec, status };
}

test("Verifies that task identity and labels follow WCA: ns/name, uid, sanitised labels, QoS label", () => {
  const t = taskFromPod(
    pod(
      { containers: [container("a")] },
      { labels: { "app.kubernetes.io/name": "web", "pod-template-hash": "abc", "1password.com/x": "y" } },
      { qosClass: "BestEffort" },
    ),
  );
  assert.equal(t.name, "shop/web");
  assert.equal(t.id, "u-1");
  assert.equal(t.qos, "besteffort");
  assert.deepEqual(t.labels, {
    app_kubernetes_io__name: "web",
    pod_template_hash: "abc",
    _1password_com__x: "y",
    [QOS_LABEL]: "besteffort",
    task_name: "shop/web",
    task_id: "u-1",
  });
  assert.equal(t.podLabels["app.kubernetes.io/name"], "web");
});

test("Verifies that label sanitising matches WCA's three rules and always yields a valid Prometheus name", () => {
  assert.equal(sanitizeLabelName("a.b-c/d"), "a_b_c__d");
  fc.assert(
    fc.property(fc.string({ minLength: 1, maxLength: 30 }), (key) => {
      assert.match(sanitizeLabelName(key), /^[a-zA-Z_][a-zA-Z0-9_]*$/);
    }),
  );
});

test("Verifies that a pod label cannot overwrite task_name or task_id", () => {
  const t = taskFromPod(pod({ containers: [] }, { labels: { task_name: "evil", task_id: "x" } }));
  assert.equal(t.labels.task_name, "shop/web");
  assert.equal(t.labels.task_id, "u-1");
});

test("Verifies that requests are max(max(init), sum(containers)) plus overhead, with WCA's short names", () => {
  const t = taskFromPod(
    pod({
      initContainers: [container("migrate", { cpu: "2", memory: "1Gi" })],
      containers: [
        container("a", { cpu: "250m", memory: "256Mi" }),
        container("b", { cpu: "500m", memory: "1Gi" }),
      ],
      overhead: { cpu: "100m", memory: "64Mi" },
    }),
  );
  assert.equal(t.resources.requests_cpus, 2.1);
  assert.equal(t.resources.cpus, 2.1);
  assert.equal(t.resources.requests_mem, 1.25 * GiB + 64 * MiB);
  assert.equal(t.resources.mem, t.resources.requests_mem);
  assert.equal(t.resources.disk, 0);
});

test("Verifies that sidecars (restartPolicy Always) add to the sum and to later init containers", () => {
  // Kubernetes' own example (KEP-753): sidecar 1 cpu, then init 2 cpu runs beside it (3), app 1 cpu.
  const t = taskFromPod(
    pod({
      initContainers: [
        container("proxy", { cpu: "1" }, undefined, { restartPolicy: "Always" }),
        container("init", { cpu: "2" }),
      ],
      containers: [container("app", { cpu: "1" })],
    }),
  );
  assert.equal(t.resources.requests_cpus, 3);
  const steady = taskFromPod(
    pod({
      initContainers: [
        container("proxy", { cpu: "1" }, undefined, { restartPolicy: "Always" }),
        container("init", { cpu: "100m" }),
      ],
      containers: [container("app", { cpu: "3" })],
    }),
  );
  assert.equal(steady.resources.requests_cpus, 4);
});

test("Verifies that limits default requests, and limits exist only when every container sets them", () => {
  const limited = taskFromPod(
    pod({ containers: [container("a", undefined, { cpu: "1", memory: "1Gi", "ephemeral-storage": "2Gi" })] }),
  );
  assert.equal(limited.resources.requests_cpus, 1);
  assert.equal(limited.resources.limits_cpus, 1);
  assert.equal(limited.resources.limits_mem, GiB);
  assert.equal(limited.resources.disk, 2 * GiB);
  assert.equal(limited.resources.requests_disk, 2 * GiB);
  const partly = taskFromPod(
    pod({
      containers: [container("a", undefined, { cpu: "1", memory: "1Gi" }), container("b", { cpu: "1" })],
    }),
  );
  assert.equal(
    partly.resources.limits_cpus,
    undefined,
    "container b has no cpu limit, so neither has the pod",
  );
  assert.equal(partly.resources.limits_mem, undefined);
  assert.equal(partly.resources.requests_cpus, 2);
});

test("Verifies that extended resources are carried and garbage is a problem, not a crash", () => {
  const t = taskFromPod(
    pod({
      containers: [
        container(
          "a",
          { "nvidia.com/gpu": "2", "hugepages-2Mi": "4Mi", cpu: "lots" },
          { "nvidia.com/gpu": "2" },
        ),
      ],
    }),
  );
  assert.equal(t.resources["requests_nvidia.com/gpu"], 2);
  assert.equal(t.resources["limits_nvidia.com/gpu"], 2);
  assert.equal(t.resources["requests_hugepages-2Mi"], 4 * MiB);
  assert.equal(t.resources.requests_cpus, undefined);
  assert.deepEqual(t.problems, ['container a requests cpu: "lots" is not a quantity; ignored']);
});

test("Verifies that pod-level resources override the containers for cpu and memory", () => {
  const t = taskFromPod(
    pod({
      resources: { requests: { cpu: "3" }, limits: { cpu: "4", memory: "2Gi" } },
      containers: [container("a", { cpu: "1", "nvidia.com/gpu": "1" })],
    }),
  );
  assert.equal(t.resources.requests_cpus, 3);
  assert.equal(t.resources.limits_cpus, 4);
  assert.equal(t.resources.requests_mem, 2 * GiB, "pod-level request defaults to the pod-level limit");
  assert.equal(t.resources["requests_nvidia.com/gpu"], 1);
});

test("Verifies that the QoS class is computed as Kubernetes does when status has none", () => {
  const g = pod({ containers: [container("a", undefined, { cpu: "1", memory: "1Gi" })] });
  assert.equal(computeQos(g), "guaranteed");
  const b = pod({ containers: [container("a", { cpu: "1", memory: "1Gi" }, { cpu: "2", memory: "1Gi" })] });
  assert.equal(computeQos(b), "burstable");
  const onlyCpu = pod({ containers: [container("a", undefined, { cpu: "1" })] });
  assert.equal(computeQos(onlyCpu), "burstable");
  const gpuOnly = pod({ containers: [container("a", { "nvidia.com/gpu": "1" }, { "nvidia.com/gpu": "1" })] });
  assert.equal(computeQos(gpuOnly), "besteffort");
  const initUnlimited = pod({
    initContainers: [container("i", { cpu: "1" })],
    containers: [container("a", undefined, { cpu: "1", memory: "1Gi" })],
  });
  assert.equal(computeQos(initUnlimited), "burstable");
  assert.equal(taskFromPod({ ...g, status: { qosClass: "Burstable" } }).qos, "burstable", "status wins");
});

test("Verifies that container IDs give the runtime, and static pods use their mirror's config hash", () => {
  const t = taskFromPod(
    pod(
      { containers: [container("a"), container("b"), container("c")] },
      { annotations: { "kubernetes.io/config.mirror": "5b1e1f2c0d9a" } },
      {
        containerStatuses: [
          {
            name: "a",
            containerID: "containerd://aaa",
            image: "",
            imageID: "",
            ready: true,
            restartCount: 0,
          },
          { name: "b", containerID: "cri-o://bbb", image: "", imageID: "", ready: true, restartCount: 0 },
          { name: "c", containerID: "rkt://ccc", image: "", imageID: "", ready: true, restartCount: 0 },
        ],
      },
    ),
  );
  assert.deepEqual(t.containers, [
    { name: "a", runtime: "containerd", id: "aaa" },
    { name: "b", runtime: "cri-o", id: "bbb" },
  ]);
  assert.equal(t.cgroupUid, "5b1e1f2c0d9a");
  assert.match(t.problems[0] ?? "", /unknown runtime/);
});

test("Verifies that no pod JSON, however odd, makes taskFromPod throw", () => {
  const quantity = fc.oneof(
    fc.constantFrom("1", "250m", "1Gi", "", "-1", "1e400", "NaN", "max"),
    fc.string(),
  );
  const list = fc.dictionary(fc.constantFrom("cpu", "memory", "nvidia.com/gpu", "x"), quantity);
  const ctr = fc.record(
    {
      name: fc.string(),
      resources: fc.record({ requests: list, limits: list }, { requiredKeys: [] }),
      restartPolicy: fc.constantFrom("Always", undefined),
    },
    { requiredKeys: ["name"] },
  );
  const arb = fc.record(
    {
      metadata: fc.record(
        { name: fc.string(), labels: fc.dictionary(fc.string(), fc.string()) },
        { requiredKeys: [] },
      ),
      spec: fc.record(
        {
          containers: fc.array(ctr, { maxLength: 3 }),
          initContainers: fc.array(ctr, { maxLength: 3 }),
          overhead: list,
        },
        { requiredKeys: [] },
      ),
      status: fc.record({ qosClass: fc.string() }, { requiredKeys: [] }),
    },
    { requiredKeys: [] },
  );
  fc.assert(
    fc.property(arb, (p) => {
      const t = taskFromPod(p as V1Pod);
      assert.ok(["guaranteed", "burstable", "besteffort"].includes(t.qos));
      for (const v of Object.values(t.resources)) assert.ok(Number.isFinite(v) && v >= 0);
    }),
    { numRuns: 300 },
  );
});
