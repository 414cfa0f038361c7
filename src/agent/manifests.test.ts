import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import { parseAgentConfig } from "./config.js";
import { parseListen } from "./metrics.js";

// The shipped manifests must agree with the code: the ConfigMap's agent.yaml validates, and the
// DaemonSet's flags, mounts, ports and scrape annotations point at the same places.
const dir = fileURLToPath(new URL("../../manifests/agent/", import.meta.url));

interface Container {
  args: string[];
  livenessProbe?: { httpGet?: { path: string } };
  readinessProbe?: { httpGet?: { path: string } };
  env: { name: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
  ports: { containerPort: number }[];
  volumeMounts: { name: string; mountPath: string; readOnly?: boolean }[];
}

interface DaemonSet {
  spec: {
    template: {
      metadata: { annotations: Record<string, string> };
      spec: {
        containers: Container[];
        volumes: { name: string; hostPath?: { path: string }; configMap?: { name: string } }[];
      };
    };
  };
}

test("Verifies that the ConfigMap's agent.yaml is a valid agent configuration", () => {
  const cm = parse(readFileSync(`${dir}configmap.yaml`, "utf8")) as { data: Record<string, string> };
  const config = parseAgentConfig(parse(cm.data["agent.yaml"] ?? ""), "configmap agent.yaml");
  assert.equal(config.pod_source, "apiserver");
  assert.equal(config.allocation.enabled, false);
});

test("Verifies that the DaemonSet's flags, host cgroup mount, node name and scrape port agree", () => {
  const ds = parse(readFileSync(`${dir}daemonset.yaml`, "utf8")) as DaemonSet;
  const pod = ds.spec.template;
  const c = pod.spec.containers[0] as Container;
  const flag = (name: string): string | undefined =>
    c.args.find((a) => a.startsWith(`--${name}=`))?.split("=")[1];
  const cgroupMount = c.volumeMounts.find((m) => m.mountPath === flag("cgroup-root"));
  assert.ok(cgroupMount, "--cgroup-root is where the host cgroup hierarchy is mounted");
  assert.notEqual(cgroupMount.readOnly, true, "allocation writes cgroup files");
  assert.equal(pod.spec.volumes.find((v) => v.name === cgroupMount.name)?.hostPath?.path, "/sys/fs/cgroup");
  assert.ok(c.volumeMounts.some((m) => flag("config")?.startsWith(`${m.mountPath}/`)));
  const port = parseListen(flag("listen") ?? "").port;
  assert.equal(c.ports[0]?.containerPort, port);
  assert.equal(pod.metadata.annotations["prometheus.io/port"], String(port));
  assert.equal(pod.metadata.annotations["prometheus.io/scrape"], "true");
  assert.equal(c.env.find((e) => e.name === "NODE_NAME")?.valueFrom?.fieldRef?.fieldPath, "spec.nodeName");
  assert.deepEqual(c.args.slice(0, 2), ["agent", "run"]);
  // /healthz fails while iterations fail, which a restart does not cure: readiness only.
  assert.equal(c.readinessProbe?.httpGet?.path, "/healthz");
  assert.equal(c.livenessProbe?.httpGet?.path, "/livez");
});
