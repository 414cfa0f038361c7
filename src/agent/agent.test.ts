import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { silentLogger } from "../log.js";
import { NodeAgent } from "./agent.js";
import { parseAgentConfig } from "./config.js";
import { AgentError } from "./errors.js";
import { taskFromPod } from "./tasks.js";
import { makeTestPki, type TestPki } from "./testdata/certs.js";
import { buildTree, fixtureValues, makePod, makeTempRoot, removeTree, uidFor } from "./testdata/fixtures.js";

let pki: TestPki;
let kubelet: Server;
let endpoint: string;
let root: string;

const pods = [
  makePod({
    name: "web",
    uid: uidFor(1),
    qos: "burstable",
    runtime: "cri-o",
    labels: { "app.kubernetes.io/name": "web" },
  }),
  makePod({ name: "db", uid: uidFor(2), qos: "guaranteed", runtime: "cri-o", containers: 2 }),
];

before(async () => {
  pki = makeTestPki(makeTempRoot("kubewise-pki-"));
  kubelet = createServer(
    {
      cert: pki.pem(pki.serverCert),
      key: pki.pem(pki.serverKey),
      ca: pki.pem(pki.caCert),
      requestCert: true,
      rejectUnauthorized: true,
    },
    (_req, res) =>
      res
        .writeHead(200, { "content-type": "application/json" })
        .end(JSON.stringify({ kind: "PodList", items: pods })),
  );
  await new Promise<void>((resolve) => kubelet.listen(0, "127.0.0.1", resolve));
  endpoint = `https://127.0.0.1:${(kubelet.address() as AddressInfo).port}`;
  root = makeTempRoot();
  buildTree(
    root,
    { version: "v2", driver: "systemd" },
    pods.map((p, i) => {
      const t = taskFromPod(p);
      return { qos: t.qos, uid: t.cgroupUid, containers: t.containers, values: fixtureValues(i) };
    }),
  );
});

after(async () => {
  kubelet.closeAllConnections();
  await new Promise<void>((resolve) => kubelet.close(() => resolve()));
  removeTree(pki.dir);
  removeTree(root);
});

function config(): Record<string, unknown> {
  return {
    cgroup_driver: "systemd",
    pod_source: "kubelet",
    kubelet_endpoint: endpoint,
    ssl: { server_verify: pki.caCert, client_cert_path: pki.clientCert, client_key_path: pki.clientKey },
    interval_seconds: 0.1,
  };
}

test("Verifies that the node agent serves task metrics from the kubelet's pods and the cgroup tree", async () => {
  const agent = new NodeAgent({
    config: parseAgentConfig(config()),
    log: silentLogger,
    cgroupRoot: root,
    listen: "127.0.0.1:0",
    nodeName: "n1",
  });
  const address = await agent.start();
  try {
    assert.ok(address);
    let text = "";
    for (let i = 0; i < 50 && !text.includes("task_cpu_usage_seconds{"); i++) {
      await new Promise((r) => setTimeout(r, 50));
      text = await (await fetch(`http://127.0.0.1:${address.port}/metrics`)).text();
    }
    assert.match(
      text,
      /task_cpu_usage_seconds\{[^}]*app_kubernetes_io__name="web"[^}]*task_name="default\/web"[^}]*\} 1\.000123/,
    );
    assert.match(
      text,
      /task_subcontainers\{[^}]*task_name="default\/db"[^}]*\} 2/,
      "CRI-O scopes found under systemd",
    );
    assert.match(
      text,
      /kubewise_agent_info\{node="n1",cgroup_version="v2",cgroup_driver="systemd",pod_source="kubelet"\} 1/,
    );
  } finally {
    await agent.stop();
  }
});

test("Verifies that an unreadable client certificate stops the agent before it starts, naming the field and path", () => {
  const c = config();
  assert.throws(
    () =>
      new NodeAgent({
        config: parseAgentConfig({ ...c, ssl: { ...(c.ssl as object), client_cert_path: "/nonexist.crt" } }),
        log: silentLogger,
        cgroupRoot: root,
        listen: "127.0.0.1:0",
      }),
    (e: unknown) =>
      e instanceof AgentError &&
      e.reason === "config" &&
      /ssl\.client_cert_path "\/nonexist\.crt": no such file/.test(e.message),
  );
});

test("Verifies that the agent's /healthz turns 503 with the error once iterations keep failing, and /livez stays 200", async () => {
  const agent = new NodeAgent({
    config: parseAgentConfig({ ...config(), kubelet_endpoint: "https://127.0.0.1:1" }),
    log: silentLogger,
    cgroupRoot: root,
    listen: "127.0.0.1:0",
  });
  const address = await agent.start();
  try {
    assert.ok(address);
    let res = await fetch(`http://127.0.0.1:${address.port}/healthz`);
    for (let i = 0; i < 100 && res.status === 200; i++) {
      await new Promise((r) => setTimeout(r, 50));
      res = await fetch(`http://127.0.0.1:${address.port}/healthz`);
    }
    assert.equal(res.status, 503);
    assert.match(
      await res.text(),
      /iterations in a row failed; last error: cannot list pods from kubelet .*ECONNREFUSED/,
    );
    assert.equal((await fetch(`http://127.0.0.1:${address.port}/livez`)).status, 200);
  } finally {
    await agent.stop();
  }
});

test("Verifies that the apiserver source needs a node name and, in this build, a factory", () => {
  const base = {
    config: parseAgentConfig({ ...config(), pod_source: "apiserver" }),
    log: silentLogger,
    cgroupRoot: root,
    listen: "",
  };
  assert.throws(
    () => new NodeAgent(base),
    (e: unknown) => e instanceof AgentError && e.reason === "config" && /--node-name/.test(e.message),
  );
  assert.throws(
    () => new NodeAgent({ ...base, nodeName: "n1" }),
    (e: unknown) => e instanceof AgentError && e.reason === "unsupported",
  );
  let asked = "";
  const agent = new NodeAgent({
    ...base,
    nodeName: "n1",
    apiServerSource: (node) => {
      asked = node;
      return { name: "apiserver", listPods: async () => [] };
    },
  });
  assert.equal(agent.source.name, "apiserver");
  assert.equal(asked, "n1");
});

interface CliResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** cli runs the real entry point; asynchronously, since the test's kubelet lives in this process. */
function cli(args: string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--import", "tsx", "src/cli/main.ts", "agent", "run", ...args],
      { encoding: "utf8", env: { ...process.env, NODE_NAME: "from-env" }, timeout: 60_000 },
      (err, stdout, stderr) => resolve({ status: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

test("Verifies that `kubewise agent run --once` prints the metrics, and fails on a bad config", async () => {
  const file = join(root, "agent.yaml");
  writeFileSync(file, JSON.stringify(config()));
  const ok = await cli(["--config", file, "--cgroup-root", root, "--once"]);
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /task_mem_usage_bytes\{[^}]*task_name="default\/db"/);
  assert.match(ok.stdout, /node="from-env"/);
  writeFileSync(file, "cgroup_driver: cgroupv3\n");
  const bad = await cli(["--config", file, "--once"]);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /cgroup_driver: must be one of "systemd", "cgroupfs"/);
  const c = config();
  writeFileSync(
    file,
    JSON.stringify({ ...c, ssl: { ...(c.ssl as object), client_cert_path: "/nonexist.crt" } }),
  );
  const noCert = await cli(["--config", file, "--cgroup-root", root, "--listen", "127.0.0.1:0"]);
  assert.equal(noCert.status, 1, "exits at start instead of serving and failing every interval");
  assert.match(noCert.stderr, /ssl\.client_cert_path "\/nonexist\.crt": no such file/);
  assert.doesNotMatch(noCert.stderr, /iteration failed/);
});
