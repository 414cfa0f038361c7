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
      assert.match(err.message, /ssl\.client_key_path: client_cert_path and client_key_path go together/);
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

test("Verifies that WCA's client_cert and client_private_key are read as the ssl client certificate and key", () => {
  const c = parseAgentConfig({
    client_cert: "/etc/wca/client.crt",
    client_private_key: "/etc/wca/client.key",
  });
  assert.equal(c.ssl.client_cert_path, "/etc/wca/client.crt");
  assert.equal(c.ssl.client_key_path, "/etc/wca/client.key");
  assert.ok(!("client_cert" in c), "one spelling after parsing");
  const same = parseAgentConfig({
    client_cert: "/c.pem",
    client_private_key: "/k.pem",
    ssl: { client_cert_path: "/c.pem", client_key_path: "/k.pem" },
  });
  assert.equal(same.ssl.client_cert_path, "/c.pem");
  // One of each spelling is a pair too.
  const mixed = parseAgentConfig({ client_cert: "/c.pem", ssl: { client_key_path: "/k.pem" } });
  assert.deepEqual([mixed.ssl.client_cert_path, mixed.ssl.client_key_path], ["/c.pem", "/k.pem"]);
  assert.throws(
    () =>
      parseAgentConfig({
        client_cert: "/a.pem",
        client_private_key: "/k.pem",
        ssl: { client_cert_path: "/b.pem" },
      }),
    /client_cert: client_cert \(WCA's name\) is "\/a\.pem" but ssl\.client_cert_path is "\/b\.pem": set one of them/,
  );
  assert.throws(
    () => parseAgentConfig({ client_private_key: "/k.pem" }),
    /client_private_key: .*go together/,
  );
});

test("Verifies that cgroup_parent defaults per driver and a bad one is refused with the reason", () => {
  assert.equal(parseAgentConfig({}).cgroup_parent, undefined);
  assert.equal(parseAgentConfig({ cgroup_parent: "/custom/kubepods" }).cgroup_parent, "/custom/kubepods");
  assert.equal(
    parseAgentConfig({ cgroup_driver: "systemd", cgroup_parent: "/custom.slice/custom-kubepods.slice" })
      .cgroup_parent,
    "/custom.slice/custom-kubepods.slice",
  );
  assert.throws(
    () => parseAgentConfig({ cgroup_parent: "kubepods" }),
    /cgroup_parent: must be an absolute cgroup path/,
  );
  assert.throws(
    () => parseAgentConfig({ cgroup_parent: "/a/../b" }),
    /cgroup_parent: must not have empty, '\.' or '\.\.' parts/,
  );
  assert.throws(
    () => parseAgentConfig({ cgroup_parent: "/kubepods/" }),
    /cgroup_parent: must not have empty/,
  );
  assert.throws(
    () => parseAgentConfig({ cgroup_driver: "systemd", cgroup_parent: "/custom/kubepods" }),
    /cgroup_parent: must end in a systemd slice/,
  );
});

test("Verifies that a cross-field problem quotes the offending value, not the whole agent.yaml", () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ ssl: { client_cert_path: "/c.pem" } }, /ssl\.client_cert_path: .*go together.* \(got "\/c\.pem"\)$/m],
    [
      { client_cert: "/a.pem", client_private_key: "/k.pem", ssl: { client_cert_path: "/b.pem" } },
      /client_cert: .*set one of them \(got "\/a\.pem"\)$/m,
    ],
    [{ cgroup_parent: "kubepods" }, /cgroup_parent: must be an absolute cgroup path.* \(got "kubepods"\)$/m],
  ];
  for (const [data, expected] of cases) {
    assert.throws(
      () => parseAgentConfig({ cgroup_root: "/sys/fs/cgroup", ...data }, "agent.yaml"),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.match(err.message, expected);
        assert.doesNotMatch(err.message, /cgroup_root"/, "the document is not quoted as the value");
        return true;
      },
    );
  }
});

test("Verifies that listen must be HOST:PORT or empty, named with the file and field", () => {
  assert.equal(parseAgentConfig({ listen: "0.0.0.0:9100" }).listen, "0.0.0.0:9100");
  assert.equal(parseAgentConfig({ listen: "[::]:9100" }).listen, "[::]:9100");
  assert.equal(parseAgentConfig({ listen: "" }).listen, "");
  for (const bad of ["foo", "9477", "host:99999"]) {
    assert.throws(
      () => parseAgentConfig({ listen: bad }, "agent.yaml"),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError, String(err));
        assert.match(err.message, /^agent\.yaml: /);
        assert.match(err.message, new RegExp(`listen: must be HOST:PORT .* \\(got "${bad}"\\)`));
        return true;
      },
    );
  }
});

test("Verifies that monitored and rule namespaces must be namespace names (DNS labels)", () => {
  assert.deepEqual(parseAgentConfig({ monitored_namespaces: ["kube-system", "a1"] }).monitored_namespaces, [
    "kube-system",
    "a1",
  ]);
  for (const bad of ["Bad_NS", "-a", "a-", "a.b", "x".repeat(64)]) {
    assert.throws(
      () => parseAgentConfig({ monitored_namespaces: ["default", bad] }, "agent.yaml"),
      new RegExp(`monitored_namespaces\\.1: must be a namespace name.*\\(got "${bad}"\\)`),
    );
  }
  assert.equal(parseAgentConfig({ monitored_namespaces: ["x".repeat(63)] }).monitored_namespaces.length, 1);
  assert.throws(
    () => parseAgentConfig({ allocation: { rules: [{ name: "r", namespaces: ["Batch"] }] } }),
    /allocation\.rules\.0\.namespaces\.0: must be a namespace name/,
  );
});

test("Verifies that matchExpressions follow Kubernetes: values required for In/NotIn, forbidden for Exists/DoesNotExist", () => {
  const rule = (expr: Record<string, unknown>): unknown => ({
    allocation: { rules: [{ name: "r", selector: { matchExpressions: [expr] } }] },
  });
  const path = /allocation\.rules\.0\.selector\.matchExpressions\.0\.values: /;
  for (const operator of ["In", "NotIn"]) {
    assert.throws(() => parseAgentConfig(rule({ key: "a", operator })), path);
    assert.throws(
      () => parseAgentConfig(rule({ key: "a", operator, values: [] })),
      new RegExp(`values: must list at least one value with operator ${operator}`),
    );
    assert.equal(parseAgentConfig(rule({ key: "a", operator, values: ["x"] })).allocation.rules.length, 1);
  }
  for (const operator of ["Exists", "DoesNotExist"]) {
    assert.throws(
      () => parseAgentConfig(rule({ key: "a", operator, values: ["x"] })),
      new RegExp(`values: must be empty or absent with operator ${operator} \\(got \\["x"\\]\\)`),
    );
    assert.equal(parseAgentConfig(rule({ key: "a", operator })).allocation.rules.length, 1);
    assert.equal(parseAgentConfig(rule({ key: "a", operator, values: [] })).allocation.rules.length, 1);
  }
});
