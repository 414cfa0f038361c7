import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError } from "../config/index.js";
import { loadAgentConfig, parseAgentConfig } from "./config.js";
import { makeTempRoot, removeTree } from "./testdata/fixtures.js";

test("Verifies that an empty agent.yaml gets WCA's defaults and monitoring only", () => {
  const c = parseAgentConfig(undefined);
  assert.equal(c.cgroup_driver, "cgroupfs");
  assert.equal(c.cgroup_root, "/sys/fs/cgroup");
  assert.equal(c.pod_source, "apiserver");
  assert.equal(c.kubelet_endpoint, "https://127.0.0.1:10250");
  assert.equal(c.ssl.server_verify, true);
  assert.deepEqual(c.monitored_namespaces, ["default"]);
  assert.equal(c.allocation.enabled, false);
  assert.equal(c.allocation.from_annotations, false);
  assert.equal(c.cpu_manager.policy, "auto");
});

test("Verifies that a bad driver, a lone client key and a garbage quota are all reported with their paths", () => {
  assert.throws(
    () =>
      parseAgentConfig(
        {
          cgroup_driver: "cgroupv2",
          ssl: { client_key_path: "/k.pem" },
          allocation: { rules: [{ name: "r", cpu_quota: "lots" }] },
        },
        "agent.yaml",
      ),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /cgroup_driver: must be one of "systemd", "cgroupfs" \(got "cgroupv2"\)/);
      assert.match(err.message, /ssl: client_cert_path and client_key_path go together/);
      assert.match(err.message, /allocation\.rules\.0\.cpu_quota: .*"max"/);
      return true;
    },
  );
});

test("Verifies that a full agent.yaml loads from a file, server_verify taking a CA path", () => {
  const dir = makeTempRoot("kubewise-agent-config-");
  try {
    const file = join(dir, "agent.yaml");
    writeFileSync(
      file,
      [
        "apiVersion: kubewise.dev/v1alpha1",
        "kind: AgentConfiguration",
        "cgroup_driver: systemd",
        "pod_source: kubelet",
        "ssl:",
        "  server_verify: /etc/kubernetes/pki/ca.crt",
        "  client_cert_path: /c.pem",
        "  client_key_path: /k.pem",
        "monitored_namespaces: [default, batch]",
        "allocation:",
        "  enabled: true",
        "  rules:",
        "    - name: batch-cap",
        "      namespaces: [batch]",
        "      selector: { matchExpressions: [{ key: tier, operator: In, values: [low] }] }",
        "      cpu_quota: 500m",
        "      cpu_shares: 512",
        "      cpuset_cpus: 0-3",
      ].join("\n"),
    );
    const c = loadAgentConfig(file);
    assert.equal(c.ssl.server_verify, "/etc/kubernetes/pki/ca.crt");
    assert.equal(c.allocation.rules[0]?.cpu_quota, "500m");
    assert.deepEqual(c.monitored_namespaces, ["default", "batch"]);
  } finally {
    removeTree(dir);
  }
});

test("Verifies that unknown keys are refused rather than ignored", () => {
  assert.throws(() => parseAgentConfig({ kubelet_enabled: true }), /unknown key "kubelet_enabled"/);
});
