import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { TLSSocket } from "node:tls";
import type { V1Pod } from "@kubernetes/client-node";
import { AgentError } from "./errors.js";
import { KubeletPodSource, monitoredPods, type KubeletSourceOptions } from "./podsource.js";
import { makeTestPki, type TestPki } from "./testdata/certs.js";
import { makePod, makeTempRoot, removeTree, uidFor } from "./testdata/fixtures.js";

let pki: TestPki;
let server: Server;
let endpoint: string;
let answer: { status: number; body: string } = { status: 200, body: "" };
const seen: { cn?: string; authorization?: string; path?: string }[] = [];

const pods = [
  makePod({ name: "a", uid: uidFor(1), qos: "burstable" }),
  makePod({ name: "b", uid: uidFor(2), qos: "guaranteed", namespace: "kube-system" }),
];

before(async () => {
  pki = makeTestPki(makeTempRoot("kubewise-pki-"));
  answer = { status: 200, body: JSON.stringify({ kind: "PodList", apiVersion: "v1", items: pods }) };
  // Like a kubelet with x509 client authentication: no certificate signed by our CA, no TLS.
  server = createServer(
    {
      cert: pki.pem(pki.serverCert),
      key: pki.pem(pki.serverKey),
      ca: pki.pem(pki.caCert),
      requestCert: true,
      rejectUnauthorized: true,
    },
    (req, res) => {
      const peer = (req.socket as TLSSocket).getPeerCertificate();
      seen.push({ cn: peer.subject?.CN, authorization: req.headers.authorization, path: req.url });
      res.writeHead(answer.status, { "content-type": "application/json" }).end(answer.body);
    },
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  endpoint = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  removeTree(pki.dir);
});

function source(over: Partial<KubeletSourceOptions> = {}): KubeletPodSource {
  return new KubeletPodSource({
    endpoint,
    serverVerify: pki.caCert,
    clientCertPath: pki.clientCert,
    clientKeyPath: pki.clientKey,
    timeoutMs: 5000,
    ...over,
  });
}

async function failure(p: Promise<unknown>): Promise<AgentError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof AgentError, String(err));
    return err;
  }
  assert.fail("expected a failure");
}

test("Verifies that the kubelet source lists pods over TLS with a client certificate and a verified server", async () => {
  const list = await source().listPods();
  assert.deepEqual(
    list.map((p) => p.metadata?.name),
    ["a", "b"],
  );
  assert.deepEqual(seen.at(-1), { cn: "kubewise-agent", authorization: undefined, path: "/pods" });
});

test("Verifies that the kubelet refuses the agent without a client certificate or with a stranger's", async () => {
  const none = await failure(source({ clientCertPath: undefined, clientKeyPath: undefined }).listPods());
  assert.equal(none.reason, "pod-source");
  assert.match(none.message, /cannot list pods from kubelet https:\/\/127\.0\.0\.1:\d+\/pods/);
  const stranger = await failure(
    source({ clientCertPath: pki.otherClientCert, clientKeyPath: pki.otherClientKey }).listPods(),
  );
  assert.equal(stranger.reason, "pod-source");
});

test("Verifies that server verification is on by default and a wrong CA or name fails with a hint", async () => {
  const systemCas = await failure(source({ serverVerify: true }).listPods());
  assert.match(systemCas.message, /did not verify: set ssl\.server_verify/);
  const wrongCa = await failure(source({ serverVerify: pki.otherCaCert }).listPods());
  assert.match(wrongCa.message, /did not verify/);
  const wrongName = await failure(source({ serverName: "other.test" }).listPods());
  assert.match(wrongName.message, /did not verify/);
  assert.equal((await source({ serverName: "kubelet.test" }).listPods()).length, 2);
  assert.equal(
    (await source({ serverVerify: false }).listPods()).length,
    2,
    "verification off is possible when asked",
  );
});

test("Verifies that a bearer token is read from its file on each request", async () => {
  const file = join(pki.dir, "token");
  writeFileSync(file, "tok-1\n");
  const s = source({ tokenPath: file });
  await s.listPods();
  assert.equal(seen.at(-1)?.authorization, "Bearer tok-1");
  writeFileSync(file, "tok-2\n");
  await s.listPods();
  assert.equal(seen.at(-1)?.authorization, "Bearer tok-2");
});

test("Verifies that HTTP errors and non-pod answers become pod-source errors that say what came back", async () => {
  const saved = answer;
  try {
    answer = {
      status: 403,
      body: "Forbidden (user=kubewise-agent, verb=get, resource=nodes, subresource=proxy)",
    };
    assert.match(
      (await failure(source().listPods())).message,
      /HTTP 403 \(check the client certificate.*\): Forbidden/,
    );
    answer = { status: 200, body: "<html>" };
    assert.match((await failure(source().listPods())).message, /not JSON/);
    answer = { status: 200, body: '{"kind":"Status"}' };
    assert.match((await failure(source().listPods())).message, /without a pod list/);
  } finally {
    answer = saved;
  }
  const closed = await failure(source({ endpoint: "https://127.0.0.1:1" }).listPods());
  assert.match(closed.message, /ECONNREFUSED/);
});

test("Verifies that unreadable credential files stop the kubelet source at construction, naming field, path and problem", () => {
  const empty = join(pki.dir, "empty.pem");
  writeFileSync(empty, "");
  const cases: [Partial<KubeletSourceOptions>, RegExp][] = [
    [{ clientCertPath: "/nonexist.crt" }, /ssl\.client_cert_path "\/nonexist\.crt": no such file/],
    [
      { clientKeyPath: "/nonexistent/key.pem" },
      /ssl\.client_key_path "\/nonexistent\/key\.pem": no such file/,
    ],
    [{ serverVerify: pki.dir }, /ssl\.server_verify ".*": not a regular file/],
    [{ tokenPath: "/nonexistent/token" }, /kubelet_token_path "\/nonexistent\/token": no such file/],
    [{ clientCertPath: empty }, /ssl\.client_cert_path ".*empty\.pem": the file is empty/],
  ];
  for (const [over, expected] of cases) {
    assert.throws(
      () => source(over),
      (err: unknown) => {
        assert.ok(err instanceof AgentError, String(err));
        assert.equal(err.reason, "config");
        assert.match(err.message, /^cannot use the kubelet credentials: /);
        assert.match(err.message, expected);
        return true;
      },
    );
  }
  assert.throws(
    () => source({ clientCertPath: "/nonexist.crt", clientKeyPath: "/nonexist.key" }),
    /ssl\.client_cert_path "\/nonexist\.crt": no such file; ssl\.client_key_path "\/nonexist\.key": no such file/,
    "every problem at once",
  );
  // A plain-HTTP endpoint uses no TLS files, so they are not checked.
  assert.ok(source({ endpoint: "http://127.0.0.1:1", clientCertPath: "/nonexist.crt" }));
});

test("Verifies that credentials are still read on each request: a file gone after the start fails that listing only", async () => {
  const cert = join(pki.dir, "rotating.crt");
  writeFileSync(cert, readFileSync(pki.clientCert));
  const s = source({ clientCertPath: cert });
  assert.equal((await s.listPods()).length, 2);
  rmSync(cert);
  const gone = await failure(s.listPods());
  assert.equal(gone.reason, "pod-source");
  assert.match(gone.message, /ssl\.client_cert_path ".*rotating\.crt": no such file/);
  writeFileSync(cert, readFileSync(pki.clientCert));
  assert.equal((await s.listPods()).length, 2);
});

test("Verifies that only monitored namespaces and pods that can have a cgroup are kept, ready or not", () => {
  const unready = makePod({ name: "unready", uid: uidFor(3), qos: "burstable" });
  unready.status!.containerStatuses![0]!.ready = false;
  const pending = makePod({ name: "pending", uid: uidFor(4), qos: "burstable", phase: "Pending" });
  pending.status!.containerStatuses = [];
  const initRunning = makePod({ name: "init", uid: uidFor(5), qos: "burstable", phase: "Pending" });
  const done = makePod({ name: "done", uid: uidFor(6), qos: "burstable", phase: "Succeeded" });
  const all: V1Pod[] = [...pods, unready, pending, initRunning, done];
  assert.deepEqual(
    monitoredPods(all, { namespaces: ["default"] }).map((p) => p.metadata?.name),
    ["a", "unready", "init"],
  );
  assert.deepEqual(
    monitoredPods(all, { namespaces: ["kube-system"] }).map((p) => p.metadata?.name),
    ["b"],
  );
});
