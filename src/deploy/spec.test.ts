import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError } from "../config/index.js";
import { loadServiceSpec, parseServiceSpec, parsePublicUri, type ServiceSpec } from "./spec.js";

const base = { name: "web", image: "nginx:1.27" };

function problems(doc: unknown, variables?: Record<string, string>): string {
  try {
    parseServiceSpec(doc, variables ? { variables } : {}, "service.yaml");
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err.message;
  }
  assert.fail("expected the spec to be rejected");
}

test("Verifies that Opta's forms and kubewise's forms of the same thing give the same spec", () => {
  const pairs: [object, object, (s: ServiceSpec) => unknown][] = [
    [{ env_vars: [{ name: "A", value: "1" }] }, { env_vars: { A: 1 } }, (s) => s.env],
    [
      { port: { http: 80 }, public_uri: "x.example.com/a" },
      { port: { http: 80 }, public_uri: ["x.example.com/a/"] },
      (s) => s.ingress.uris,
    ],
    [
      { resource_request: { cpu: 250, memory: 512 } },
      { resource_request: { cpu: "250m", memory: "512Mi" } },
      (s) => s.resources,
    ],
    [{ port: { http: 8080 } }, { ports: [{ name: "main", type: "http", port: 8080 }] }, (s) => s.ports],
    [
      { port: { grpc: 9000 } },
      { ports: [{ name: "main", type: "http", protocol: "grpc", port: 9000 }] },
      (s) => s.ports,
    ],
    [
      { autoscaling_target_cpu_percentage: "70%" },
      { autoscaling_target_cpu_percentage: 70 },
      (s) => s.autoscaling,
    ],
    [{ max_containers: "5" }, { max_containers: 5 }, (s) => s.replicas],
  ];
  for (const [a, b, pick] of pairs) {
    assert.deepEqual(
      pick(parseServiceSpec({ ...base, ...a })),
      pick(parseServiceSpec({ ...base, ...b })),
      JSON.stringify(a),
    );
  }
});

test("Verifies that a whole-number string is Opta's unit like a number, and other strings are Kubernetes quantities", () => {
  const resources = (request: object, variables: Record<string, string> = {}) =>
    parseServiceSpec({ ...base, resource_request: request }, { variables }).resources.requests;
  // `{vars.cpu}` filled with 100 is Opta's 100 millicores, not 100 cores; memory "128" is 128 MiB.
  assert.deepEqual(
    resources({ cpu: "{vars.cpu}", memory: "{vars.mem}" }, { "vars.cpu": "100", "vars.mem": "128" }),
    {
      cpu: 0.1,
      memory: 128 * 2 ** 20,
    },
  );
  assert.deepEqual(resources({ cpu: "250" }), resources({ cpu: 250 }));
  assert.deepEqual(resources({ cpu: "250" }), resources({ cpu: "250m" }));
  // A decimal string is read as Kubernetes reads it: cores.
  assert.equal(resources({ cpu: "1.5" }).cpu, 1.5);
  assert.equal(resources({ cpu: "0.25" }).cpu, 0.25);
  assert.equal(resources({ memory: "1Gi" }).memory, 2 ** 30);
  const storage = parseServiceSpec(
    { ...base, persistent_storage: [{ size: "{vars.size}", path: "/data" }] },
    { variables: { "vars.size": "10" } },
  ).persistentStorage;
  assert.deepEqual(storage, [{ size: 10 * 2 ** 30, path: "/data" }]);
});

test("Verifies that a cpu or memory amount written as a whole-number string is noted with the unit it is read in", () => {
  const notes = (extra: object, variables: Record<string, string> = {}) =>
    parseServiceSpec({ ...base, ...extra }, { variables }).notes;
  const spec = parseServiceSpec({
    ...base,
    resource_request: { cpu: "2", memory: "1" },
    resource_limits: { cpu: "4", memory: "2" },
  });
  // Still Opta's reading: 2 millicores and 1 MiB.
  assert.deepEqual(spec.resources.requests, { cpu: 0.002, memory: 2 ** 20 });
  assert.deepEqual(spec.notes, [
    'resource_request.cpu: "2" is read as 2 millicores (Opta\'s unit), where Kubernetes reads 2 cores: for 2 cores write "2000m"; write "2m" (or the number 2) to keep 2 millicores',
    'resource_request.memory: "1" is read as 1 MiB (Opta\'s unit), where Kubernetes reads 1 byte: write "1Mi" (or the number 1) to keep 1 MiB, or give the unit you mean ("1Gi")',
    'resource_limits.cpu: "4" is read as 4 millicores (Opta\'s unit), where Kubernetes reads 4 cores: for 4 cores write "4000m"; write "4m" (or the number 4) to keep 4 millicores',
    'resource_limits.memory: "2" is read as 2 MiB (Opta\'s unit), where Kubernetes reads 2 bytes: write "2Mi" (or the number 2) to keep 2 MiB, or give the unit you mean ("2Gi")',
  ]);
  // The forms that say what they mean get no note: numbers (Opta), quantities with a unit, decimals (cores).
  assert.deepEqual(notes({ resource_request: { cpu: 2, memory: 1 } }), []);
  assert.deepEqual(notes({ resource_request: { cpu: "2000m", memory: "1Gi" } }), []);
  assert.deepEqual(notes({ resource_request: { cpu: "1.5" }, resource_limits: { cpu: false } }), []);
  // Opta's placeholder idiom is read in millicores by Opta too, so it is not noted.
  assert.deepEqual(notes({ resource_request: { cpu: "{vars.cpu}" } }, { "vars.cpu": "100" }), []);
});

test("Verifies that an autoscaling target set with a fixed replica count is noted as having no effect", () => {
  const notes = (extra: object) => parseServiceSpec({ ...base, ...extra }).notes;
  assert.deepEqual(notes({ min_containers: 2, max_containers: 2, autoscaling_target_cpu_percentage: 60 }), [
    "autoscaling_target_cpu_percentage: has no effect with a fixed replica count (min_containers equals max_containers: 2), so no autoscaler is rendered; set max_containers above min_containers to autoscale",
  ]);
  assert.match(
    notes({ replicas: 3, autoscaling_target_mem_percentage: "70%" }).join("\n"),
    /^autoscaling_target_mem_percentage: has no effect with a fixed replica count \(replicas is set: 3\)/,
  );
  // The defaults (80%) are not noted, and an autoscaled service keeps its targets without a note.
  assert.deepEqual(notes({ min_containers: 2, max_containers: 2 }), []);
  const scaled = parseServiceSpec({ ...base, max_containers: 4, autoscaling_target_cpu_percentage: 60 });
  assert.deepEqual(scaled.notes, []);
  assert.deepEqual(scaled.autoscaling, { cpuPercent: 60, memoryPercent: 80 });
});

test("Verifies that env_vars: and public_uri: left empty (YAML null) mean none, as in Opta", () => {
  const spec = parseServiceSpec({ ...base, port: { http: 80 }, env_vars: null, public_uri: null });
  assert.deepEqual(spec.env, []);
  assert.deepEqual(spec.ingress.uris, []);
});

test("Verifies that sticky sessions use Opta's cookie name unless sticky_session_cookie says otherwise", () => {
  const sticky = (extra: object) =>
    parseServiceSpec({
      ...base,
      port: { http: 80 },
      public_uri: "a.example.com",
      sticky_session: true,
      ...extra,
    }).ingress.stickySession;
  assert.deepEqual(sticky({}), { cookieName: "opta-cookie", maxAgeSeconds: 86400 });
  assert.equal(sticky({ sticky_session_cookie: "shop" })?.cookieName, "shop");
});

test("Verifies Opta's defaults: AUTO image, 1-3 replicas, 80% targets, 30 s probe delays, no probes without a healthcheck", () => {
  const spec = parseServiceSpec({ name: "web", port: { http: 80 } });
  assert.equal(spec.image, "AUTO");
  assert.deepEqual(spec.replicas, { min: 1, max: 3 });
  assert.deepEqual(spec.autoscaling, { cpuPercent: 80, memoryPercent: 80 });
  assert.deepEqual(spec.ports, [{ name: "main", type: "http", port: 80, servicePort: 80 }]);
  assert.equal(spec.liveness, undefined);
  assert.equal(spec.readiness, undefined);
  assert.equal(
    parseServiceSpec({ ...base, healthcheck_path: "/h", port: { http: 80 } }).liveness?.initialDelaySeconds,
    30,
  );
});

test("Verifies that Opta's legacy tcp port is a websocket port, and tcp, grpc and websocket ports are checked by TCP", () => {
  const legacy = parseServiceSpec({ ...base, port: { tcp: 3000 } });
  assert.deepEqual(legacy.ports[0], {
    name: "main",
    type: "http",
    protocol: "websocket",
    port: 3000,
    servicePort: 80,
  });
  for (const ports of [
    [{ name: "db", type: "tcp", port: 5432 }],
    [{ name: "rpc", type: "grpc", port: 9000 }],
    [{ name: "ws", type: "http", protocol: "websocket", port: 3000 }],
  ]) {
    const spec = parseServiceSpec({ ...base, ports, healthcheck_path: "/health" });
    assert.deepEqual(spec.liveness?.probe, { kind: "tcp" });
    assert.deepEqual(spec.readiness?.probe, { kind: "tcp" });
  }
  const tcp = parseServiceSpec({ ...base, ports: [{ name: "db", type: "tcp", port: 5432 }] });
  assert.equal(tcp.ports[0]?.servicePort, 5432, "a tcp port's service port defaults to its own port");
  assert.deepEqual(
    tcp.readiness?.probe,
    { kind: "tcp" },
    "tcp ports are probed even with no healthcheck set",
  );
});

test("Verifies that a specific liveness/readiness probe wins over healthcheck_*", () => {
  const spec = parseServiceSpec({
    ...base,
    port: { http: 80 },
    healthcheck_path: "/health",
    readiness_probe_command: ["cat", "/tmp/ready"],
  });
  assert.deepEqual(spec.liveness?.probe, { kind: "http", path: "/health" });
  assert.deepEqual(spec.readiness?.probe, { kind: "exec", command: ["cat", "/tmp/ready"] });
});

test("Verifies that public_uri reads Opta's host/path forms", () => {
  assert.deepEqual(parsePublicUri("/hello"), { path: "/hello" });
  assert.deepEqual(parsePublicUri("all"), { path: "/" });
  assert.deepEqual(parsePublicUri("*/api/"), { path: "/api" });
  assert.deepEqual(parsePublicUri("app.example.com"), { host: "app.example.com", path: "/" });
  assert.deepEqual(parsePublicUri("*.example.com/v1/x"), { host: "*.example.com", path: "/v1/x" });
  assert.match(String(parsePublicUri("https://a.com")), /without a scheme/);
  assert.match(String(parsePublicUri("Bad_Host/x")), /not a lower-case DNS name/);
  assert.match(String(parsePublicUri("a.com/(x)")), /may hold only/);
});

test("Verifies that Opta placeholders are filled from variables, and a missing one names the flag", () => {
  const doc = { ...base, port: { http: 80 }, public_uri: "app.{parent[domain]}/{module_name}" };
  const spec = parseServiceSpec(doc, { variables: { "parent.domain": "example.com" } });
  assert.deepEqual(spec.ingress.uris, [{ host: "app.example.com", path: "/web" }]);
  assert.match(problems(doc), /public_uri: no value for \{parent\.domain\}: pass --var parent\.domain=VALUE/);
  const json = parseServiceSpec({ ...base, env_vars: { CONFIG: '{"a": 1}' } });
  assert.deepEqual(json.env, [{ name: "CONFIG", value: '{"a": 1}' }], "JSON braces are not placeholders");
});

const bad: [string, object, RegExp, Record<string, string>?][] = [
  ["no name", { image: "x" }, /name: is required/],
  ["bad name", { ...base, name: "My_App" }, /name: must be lower-case .* \(got "My_App"\)/],
  ["misspelt field", { ...base, min_container: 2 }, /\(document\): unknown key "min_container"/],
  [
    "bad image",
    { ...base, image: "nginx:1.2 3" },
    /image: must be AUTO or an image reference: "1.2 3" is not an image tag/,
  ],
  ["port and ports", { ...base, port: { http: 80 }, ports: [] }, /port: cannot be used together with ports/],
  [
    "two keys in port",
    { ...base, port: { http: 80, tcp: 81 } },
    /port: must have exactly one of http, tcp, grpc, websocket/,
  ],
  [
    "port type",
    { ...base, ports: [{ name: "a", type: "udp", port: 53 }] },
    /ports\.0\.type: must be one of "http", "tcp", "grpc", "websocket" \(got "udp"\)/,
  ],
  [
    "port range",
    { ...base, ports: [{ name: "a", type: "tcp", port: 70000 }] },
    /ports\.0\.port: must be 1-65535 \(got 70000\)/,
  ],
  [
    "long port name",
    { ...base, ports: [{ name: "a-very-long-port-name", type: "tcp", port: 1 }] },
    /ports\.0\.name: must be at most 15/,
  ],
  [
    "tcp with protocol",
    { ...base, ports: [{ name: "a", type: "tcp", protocol: "grpc", port: 1 }] },
    /ports\.0\.protocol: grpc runs over http/,
  ],
  [
    "two http ports on 80",
    {
      ...base,
      ports: [
        { name: "a", type: "http", port: 1 },
        { name: "b", type: "http", port: 2 },
      ],
    },
    /ports\.1\.service_port: duplicates another port's servicePort \(http ports default to 80: set service_port\)/,
  ],
  [
    "probe_port unknown",
    { ...base, port: { http: 80 }, probe_port: "x" },
    /probe_port: must name one of the ports \(main\)/,
  ],
  [
    "min above max",
    { ...base, min_containers: 4, max_containers: 2 },
    /min_containers: must be at most max_containers \(2\) \(got 4\)/,
  ],
  [
    "min zero",
    { ...base, min_containers: 0, max_containers: 2 },
    /min_containers: can be 0 only when max_containers is 0/,
  ],
  ["replicas and min", { ...base, replicas: 2, min_containers: 1 }, /replicas: is a fixed count/],
  [
    "bad percentage",
    { ...base, autoscaling_target_cpu_percentage: "lots" },
    /autoscaling_target_cpu_percentage: must be a whole percentage/,
  ],
  [
    "unitless decimal memory",
    { ...base, resource_request: { memory: "0.5" } },
    /resource_request\.memory: needs a unit, e\.g\. "512Mi" \(a whole number such as 128 is MiB\) \(got "0\.5"\)/,
  ],
  [
    "garbage cpu",
    { ...base, resource_request: { cpu: "fast" } },
    /resource_request\.cpu: must be a whole number of millicores \(100\) or a quantity/,
  ],
  [
    "fractional millicores",
    { ...base, resource_request: { cpu: 0.5 } },
    /resource_request\.cpu: must be a whole number of millicores \(a number is millicores, as in Opta\): write 500 or "500m" for 0\.5 cores \(got 0\.5\)/,
  ],
  [
    "fractional millicores, not cores",
    { ...base, resource_limits: { cpu: 250.5 } },
    /resource_limits\.cpu: must be a whole number of millicores \(a number is millicores, as in Opta\): write 251 or a quantity such as "251m" \(got 250\.5\)/,
  ],
  [
    "zero cpu string",
    { ...base, resource_request: { cpu: "{vars.cpu}" } },
    /resource_request\.cpu: cpu must be more than zero \(got "0"\)/,
    { "vars.cpu": "0" },
  ],
  [
    "zero cpu",
    { ...base, resource_request: { cpu: 0 } },
    /resource_request\.cpu: cpu must be more than zero/,
  ],
  [
    "limit below request",
    { ...base, resource_request: { cpu: "1.5" }, resource_limits: { cpu: "500m" } },
    /resource_limits\.cpu: must be at least the cpu request \(or false for no limit\) \(got "500m"\)/,
  ],
  [
    "memory limit below",
    { ...base, resource_limits: { memory: 64 } },
    /resource_limits\.memory: must be at least the memory request \(got 64\)/,
  ],
  [
    "env name",
    { ...base, env_vars: [{ name: "1=A", value: "x" }] },
    /env_vars\.0\.name: is not a valid environment variable name/,
  ],
  [
    "env both",
    { ...base, env_vars: [{ name: "A", value: "x", secret: "s" }] },
    /env_vars\.0: needs exactly one of value, secret, config_map/,
  ],
  [
    "env map object",
    { ...base, env_vars: { A: { vault: "x" } } },
    /env_vars\.A: unknown key "vault"\n.*env_vars\.A: needs exactly one of secret, config_map|env_vars\.A: unknown key "vault"$/m,
  ],
  [
    "env scalar",
    { ...base, env_vars: "A=1" },
    /env_vars: must be a list of \{name, value\} or a map of name: value \(got "A=1"\)/,
  ],
  ["env twice", { ...base, env_vars: { A: "1" }, secrets: ["A"] }, /secrets\.0: defines A a second time/],
  ["healthcheck no slash", { ...base, healthcheck_path: "health" }, /healthcheck_path: must start with "\/"/],
  ["probe without port", { ...base, healthcheck_path: "/h" }, /healthcheck_path: needs a port to probe/],
  [
    "path and command",
    { ...base, port: { http: 80 }, liveness_probe_path: "/a", liveness_probe_command: ["x"] },
    /liveness_probe_command: set either liveness_probe_path or liveness_probe_command, not both/,
  ],
  [
    "uri without http port",
    { ...base, ports: [{ name: "db", type: "tcp", port: 5 }], public_uri: "/x" },
    /public_uri: needs an http port to route to/,
  ],
  [
    "uri with scheme",
    { ...base, port: { http: 80 }, public_uri: ["a.com", "https://b.com"] },
    /public_uri\.1: takes host\/path without a scheme.* \(got "https:\/\/b\.com"\)/,
  ],
  [
    "uri twice",
    { ...base, port: { http: 80 }, public_uri: ["a.com/x", "a.com/x/"] },
    /public_uri\.1: is listed twice/,
  ],
  ["tls without uri", { ...base, tls: true }, /tls: needs a public_uri to secure/],
  [
    "sticky and hash",
    { ...base, sticky_session: true, consistent_hash: "$remote_addr" },
    /consistent_hash: cannot be combined with sticky_session/,
  ],
  [
    "selector label",
    { ...base, pod_labels: { "app.kubernetes.io/name": "x" } },
    /pod_labels\."app\.kubernetes\.io\/name": is set by kubewise/,
  ],
  ["label value", { ...base, pod_labels: { team: "a b" } }, /pod_labels\.team: is not a valid label value/],
  [
    "toleration",
    { ...base, tolerations: [{ key: "k", operator: "Exists", value: "v" }] },
    /tolerations\.0\.value: must be empty with operator Exists/,
  ],
  [
    "surge and unavailable 0",
    { ...base, max_surge: 0, max_unavailable: "0%" },
    /max_unavailable: cannot be 0 when max_surge is 0 too/,
  ],
  [
    "surge format",
    { ...base, max_surge: "25" },
    /max_surge: must be a whole number or a percentage like "25%"/,
  ],
  [
    "pdb both",
    { ...base, pod_disruption_budget: { min_available: 1, max_unavailable: 1 } },
    /pod_disruption_budget: needs exactly one of min_available, max_unavailable/,
  ],
  [
    "service account",
    { ...base, service_account: 3 },
    /service_account: must be true, the name of an existing account/,
  ],
  [
    "cron schedule",
    { ...base, cron_jobs: [{ commands: ["x"], schedule: "daily" }] },
    /cron_jobs\.0\.schedule: must be a cron schedule/,
  ],
  [
    "storage size",
    { ...base, persistent_storage: [{ size: "1.5", path: "/d" }] },
    /persistent_storage\.0\.size: needs a unit, e\.g\. "512Mi" \(a whole number such as 10 is GiB\)/,
  ],
  ["opta type", { ...base, type: "aws-postgres" }, /type: must be one of "k8s-service"/],
];

for (const [what, doc, expected, variables] of bad) {
  test(`Verifies that a bad spec is refused with a clear message: ${what}`, () => {
    const message = problems(doc, variables);
    assert.match(message, /^service\.yaml: \d+ problems?:/);
    assert.match(message, expected);
  });
}

test("Verifies that every field problem is reported at once, not just the first", () => {
  const message = problems({ name: "x", image: "a b", min_containers: -1, sticky_session: "yes", typo: 1 });
  assert.match(message, /^service\.yaml: 4 problems:/);
});

test("Verifies that a missing file is reported as unreadable with its name", () => {
  assert.throws(
    () => loadServiceSpec("/nonexistent/service.yaml"),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.reason, "unreadable");
      assert.match(err.message, /\/nonexistent\/service\.yaml: .*file not found/s);
      return true;
    },
  );
});

test("Verifies that a service.yaml holding two services is refused rather than rendering only the first", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "kubewise-spec-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, "service.yaml");
  writeFileSync(file, "name: a\nimage: nginx\n---\nname: b\nimage: nginx\n");
  assert.throws(
    () => loadServiceSpec(file),
    (err: unknown) =>
      err instanceof ConfigError &&
      /holds 2 YAML documents \(separated by "---"\); expected one/.test(err.message),
  );
  writeFileSync(file, "name: a\nimage: nginx\n---\n");
  assert.equal(loadServiceSpec(file).name, "a", "a trailing --- is not a second document");
});

test("Verifies that Opta-only fields are accepted and reported as having no effect", () => {
  const spec = parseServiceSpec({
    ...base,
    links: ["db"],
    additional_iam_policies: ["arn:x"],
    max_history: 5,
  });
  assert.deepEqual(
    spec.notes.map((n) => n.split(":")[0]),
    ["links", "additional_iam_policies", "max_history"],
  );
});
