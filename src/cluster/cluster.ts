import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { stringify } from "yaml";
import { KubeClient, ResourceWatcher, waitForObject, type V1Node } from "../kube/index.js";
import type { Logger } from "../log.js";
import { ensureBinaries } from "./binaries.js";
import { ClusterError } from "./errors.js";
import { createCertificateAuthority, createSigningKey } from "./pki.js";
import {
  freePort,
  isOurProcess,
  probe,
  startProcess,
  stopProcess,
  waitHealthy,
  type ComponentName,
  type ComponentRecord,
  type TlsClient,
} from "./process.js";
import { projectRoot } from "./binaries.js";

/** DEFAULT_CLUSTER_DIR is where `kubewise cluster up` keeps its state when --dir is not given. */
export const DEFAULT_CLUSTER_DIR = ".kubewise/cluster";

/** NodeCapacity is what each fake node offers the scheduler. */
export interface NodeCapacity {
  cpu: string;
  memory: string;
  pods: string;
}

export const DEFAULT_NODE_CAPACITY: NodeCapacity = { cpu: "8", memory: "32Gi", pods: "110" };

/** ClusterState is state.json: how to reach, stop and restart the cluster's processes. */
export interface ClusterState {
  version: 1;
  dir: string;
  binDir: string;
  kubeconfig: string;
  server: string;
  nodes: number;
  components: ComponentRecord[];
  startedAt: string;
}

export interface UpOptions {
  dir?: string;
  nodes?: number;
  capacity?: NodeCapacity;
  log: Logger;
  /** onProgress receives a line for each step and each change while waiting. */
  onProgress?: (message: string) => void;
}

/** UpResult says whether the cluster was started now or was already running. */
export interface UpResult {
  state: ClusterState;
  started: boolean;
  /** cleaned is true when stale state from a crashed cluster was removed first. */
  cleaned: boolean;
  elapsedMs: number;
}

const STATE_FILE = "state.json";
const NODE_ANNOTATION = "kwok.x-k8s.io/node";

export function resolveDir(dir?: string): string {
  return resolve(dir ?? DEFAULT_CLUSTER_DIR);
}

/** readState returns the recorded state of the cluster in dir, if any. */
export function readState(dir?: string): ClusterState | undefined {
  const file = join(resolveDir(dir), STATE_FILE);
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, "utf8")) as ClusterState;
  } catch {
    return undefined;
  }
}

function writeState(state: ClusterState): void {
  writeFileSync(join(state.dir, STATE_FILE), `${JSON.stringify(state, null, 2)}\n`);
}

function tlsOf(dir: string): TlsClient {
  const pki = join(dir, "pki");
  return {
    ca: readFileSync(join(pki, "ca.crt"), "utf8"),
    cert: readFileSync(join(pki, "admin.crt"), "utf8"),
    key: readFileSync(join(pki, "admin.key"), "utf8"),
  };
}

/** ComponentHealth is one line of `kubewise cluster status`. */
export interface ComponentHealth {
  name: ComponentName;
  pid: number;
  port: number;
  running: boolean;
  healthy: boolean;
  detail: string;
}

/** clusterHealth probes every recorded component. */
export async function clusterHealth(state: ClusterState): Promise<ComponentHealth[]> {
  const tls = tlsOf(state.dir);
  return Promise.all(
    state.components.map(async (c) => {
      const running = isOurProcess(c);
      const result = running
        ? await probe(c.health, c.name === "kube-apiserver" ? tls : {})
        : { ok: false, detail: "not running" };
      return { name: c.name, pid: c.pid, port: c.port, running, healthy: result.ok, detail: result.detail };
    }),
  );
}

/** isRunning tells whether every recorded process is alive and the API server is ready. */
export async function isRunning(state: ClusterState): Promise<boolean> {
  const health = await clusterHealth(state);
  return health.length > 0 && health.every((h) => h.running && (h.healthy || h.name !== "kube-apiserver"));
}

/**
 * up starts the local control plane in dir: etcd, kube-apiserver, kube-controller-manager,
 * kube-scheduler and kwok on free 127.0.0.1 ports, then N fake nodes; it returns once the API
 * server is ready, every node is Ready and the default service account exists. On a running
 * cluster it changes nothing; after a crash it stops what is left and starts fresh.
 */
export async function up(options: UpOptions): Promise<UpResult> {
  const started = Date.now();
  const dir = resolveDir(options.dir);
  const say = options.onProgress ?? ((m: string) => options.log.info(m));
  const previous = readState(dir);
  let cleaned = false;
  if (previous) {
    if (await isRunning(previous))
      return { state: previous, started: false, cleaned, elapsedMs: Date.now() - started };
    say("found state of a cluster that is no longer running: cleaning it up");
    await stopComponents(previous);
    rmSync(dir, { recursive: true, force: true });
    cleaned = true;
  }
  const binDir = await ensureBinaries(say);
  mkdirSync(join(dir, "logs"), { recursive: true });
  mkdirSync(join(dir, "pki"), { recursive: true });
  say("creating certificates");
  await writePki(dir);
  const tls = tlsOf(dir);
  const ports = {
    etcd: await freePort(),
    etcdPeer: await freePort(),
    apiserver: await freePort(),
    controllerManager: await freePort(),
    scheduler: await freePort(),
    kwok: await freePort(),
  };
  const server = `https://127.0.0.1:${ports.apiserver}`;
  const kubeconfig = join(dir, "kubeconfig");
  writeFileSync(kubeconfig, renderKubeconfig(server, tls), { mode: 0o600 });
  const nodes = options.nodes ?? 3;
  const state: ClusterState = {
    version: 1,
    dir,
    binDir,
    kubeconfig,
    server,
    nodes,
    components: [],
    startedAt: new Date().toISOString(),
  };
  const specs = componentSpecs(dir, binDir, ports, kubeconfig);
  try {
    for (const spec of specs) {
      say(`starting ${spec.name} on 127.0.0.1:${spec.port}`);
      const record = startProcess(spec, dir);
      state.components.push(record);
      writeState(state);
      await waitHealthy(record, spec.name === "kube-apiserver" ? tls : {}, 60_000);
    }
    const client = KubeClient.connect({ kubeconfig });
    say(`creating ${nodes} fake node(s)`);
    await createNodes(client, nodes, options.capacity ?? DEFAULT_NODE_CAPACITY);
    await waitForNodesReady(client, nodes, say);
    say("waiting for the default service account");
    await waitForObject(
      client,
      { apiVersion: "v1", kind: "ServiceAccount", namespace: "default", name: "default" },
      (sa) => (sa ? { state: "done", value: undefined } : { state: "waiting" }),
      { timeoutMs: 60_000 },
    );
  } catch (err) {
    options.log.error({ dir }, "cluster failed to start; stopping what was started");
    await stopComponents(state);
    throw err;
  }
  return { state, started: true, cleaned, elapsedMs: Date.now() - started };
}

interface Ports {
  etcd: number;
  etcdPeer: number;
  apiserver: number;
  controllerManager: number;
  scheduler: number;
  kwok: number;
}

function componentSpecs(
  dir: string,
  bin: string,
  p: Ports,
  kubeconfig: string,
): Omit<ComponentRecord, "pid">[] {
  const pki = join(dir, "pki");
  const log = (name: string): string => join(dir, "logs", `${name}.log`);
  const allowPaths = "--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics";
  const stages = ["nodes.yaml", "pods.yaml"].map(
    (f) => `--config=${join(projectRoot(), "src", "cluster", "stages", f)}`,
  );
  return [
    {
      name: "etcd",
      port: p.etcd,
      binary: join(bin, "etcd"),
      log: log("etcd"),
      health: `http://127.0.0.1:${p.etcd}/health`,
      args: [
        "--name=kubewise",
        `--data-dir=${join(dir, "etcd")}`,
        `--listen-client-urls=http://127.0.0.1:${p.etcd}`,
        `--advertise-client-urls=http://127.0.0.1:${p.etcd}`,
        `--listen-peer-urls=http://127.0.0.1:${p.etcdPeer}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${p.etcdPeer}`,
        `--initial-cluster=kubewise=http://127.0.0.1:${p.etcdPeer}`,
        "--auto-compaction-retention=1",
        "--quota-backend-bytes=8589934592",
        // A throwaway test cluster does not need durable writes; fsync dominates on small disks.
        "--unsafe-no-fsync=true",
        "--log-level=warn",
      ],
    },
    {
      name: "kube-apiserver",
      port: p.apiserver,
      binary: join(bin, "kube-apiserver"),
      log: log("kube-apiserver"),
      health: `https://127.0.0.1:${p.apiserver}/readyz`,
      args: [
        `--etcd-servers=http://127.0.0.1:${p.etcd}`,
        "--etcd-prefix=/registry",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        `--secure-port=${p.apiserver}`,
        `--tls-cert-file=${join(pki, "apiserver.crt")}`,
        `--tls-private-key-file=${join(pki, "apiserver.key")}`,
        `--client-ca-file=${join(pki, "ca.crt")}`,
        `--service-account-key-file=${join(pki, "sa.pub")}`,
        `--service-account-signing-key-file=${join(pki, "sa.key")}`,
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        "--authorization-mode=Node,RBAC",
        "--allow-privileged=true",
        "--service-cluster-ip-range=10.96.0.0/16",
        // The advertise address is loopback, which the endpoint reconciler refuses to publish.
        "--endpoint-reconciler-type=none",
        `--cert-dir=${join(dir, "apiserver-certs")}`,
      ],
    },
    {
      name: "kube-controller-manager",
      port: p.controllerManager,
      binary: join(bin, "kube-controller-manager"),
      log: log("kube-controller-manager"),
      health: `https://127.0.0.1:${p.controllerManager}/healthz`,
      args: [
        `--kubeconfig=${kubeconfig}`,
        `--authentication-kubeconfig=${kubeconfig}`,
        `--authorization-kubeconfig=${kubeconfig}`,
        "--bind-address=127.0.0.1",
        `--secure-port=${p.controllerManager}`,
        allowPaths,
        `--root-ca-file=${join(pki, "ca.crt")}`,
        `--service-account-private-key-file=${join(pki, "sa.key")}`,
        `--cluster-signing-cert-file=${join(pki, "ca.crt")}`,
        `--cluster-signing-key-file=${join(pki, "ca.key")}`,
        "--leader-elect=false",
        "--use-service-account-credentials=true",
        "--node-monitor-grace-period=60s",
        `--cert-dir=${join(dir, "controller-manager-certs")}`,
      ],
    },
    {
      name: "kube-scheduler",
      port: p.scheduler,
      binary: join(bin, "kube-scheduler"),
      log: log("kube-scheduler"),
      health: `https://127.0.0.1:${p.scheduler}/healthz`,
      args: [
        `--kubeconfig=${kubeconfig}`,
        `--authentication-kubeconfig=${kubeconfig}`,
        `--authorization-kubeconfig=${kubeconfig}`,
        "--bind-address=127.0.0.1",
        `--secure-port=${p.scheduler}`,
        allowPaths,
        "--leader-elect=false",
        `--cert-dir=${join(dir, "scheduler-certs")}`,
      ],
    },
    {
      name: "kwok",
      port: p.kwok,
      binary: join(bin, "kwok"),
      log: log("kwok"),
      health: `http://127.0.0.1:${p.kwok}/healthz`,
      args: [
        `--kubeconfig=${kubeconfig}`,
        ...stages,
        "--manage-all-nodes=false",
        `--manage-nodes-with-annotation-selector=${NODE_ANNOTATION}=fake`,
        `--server-address=127.0.0.1:${p.kwok}`,
        "--node-ip=10.0.0.1",
        "--cidr=10.244.0.0/16",
        "--node-lease-duration-seconds=40",
      ],
    },
  ];
}

async function writePki(dir: string): Promise<void> {
  const pki = join(dir, "pki");
  const ca = await createCertificateAuthority("kubewise-local-ca");
  const serving = await ca.sign({
    commonName: "kube-apiserver",
    dnsNames: [
      "localhost",
      "kubernetes",
      "kubernetes.default",
      "kubernetes.default.svc",
      "kubernetes.default.svc.cluster.local",
    ],
    ipAddresses: ["127.0.0.1", "10.96.0.1"],
    usages: ["server"],
  });
  const admin = await ca.sign({
    commonName: "kubewise-admin",
    organizations: ["system:masters"],
    usages: ["client"],
  });
  const sa = await createSigningKey();
  const files: Record<string, string> = {
    "ca.crt": ca.cert,
    "ca.key": ca.key,
    "apiserver.crt": serving.cert,
    "apiserver.key": serving.key,
    "admin.crt": admin.cert,
    "admin.key": admin.key,
    "sa.key": sa.key,
    "sa.pub": sa.publicKey,
  };
  for (const [name, text] of Object.entries(files)) writeFileSync(join(pki, name), text, { mode: 0o600 });
}

function renderKubeconfig(server: string, tls: TlsClient): string {
  const b64 = (s: string | undefined): string => Buffer.from(s ?? "").toString("base64");
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "kubewise-local", cluster: { server, "certificate-authority-data": b64(tls.ca) } }],
    users: [
      {
        name: "kubewise-admin",
        user: { "client-certificate-data": b64(tls.cert), "client-key-data": b64(tls.key) },
      },
    ],
    contexts: [{ name: "kubewise-local", context: { cluster: "kubewise-local", user: "kubewise-admin" } }],
    "current-context": "kubewise-local",
  });
}

async function createNodes(client: KubeClient, count: number, capacity: NodeCapacity): Promise<void> {
  for (let i = 0; i < count; i++) {
    const name = `kwok-node-${i}`;
    const node: V1Node = {
      apiVersion: "v1",
      kind: "Node",
      metadata: {
        name,
        annotations: { [NODE_ANNOTATION]: "fake", "node.alpha.kubernetes.io/ttl": "0" },
        labels: {
          "kubernetes.io/hostname": name,
          "kubernetes.io/os": "linux",
          "kubernetes.io/arch": "amd64",
          "kubewise.dev/fake-node": "true",
        },
      },
      spec: {},
      status: { capacity: { ...capacity }, allocatable: { ...capacity } },
    };
    await client.core.createNode({ body: node });
  }
}

async function waitForNodesReady(client: KubeClient, count: number, say: (m: string) => void): Promise<void> {
  const watcher = new ResourceWatcher<V1Node>(client, {
    apiVersion: "v1",
    kind: "Node",
    labelSelector: "kubewise.dev/fake-node=true",
  });
  const ready = (): number =>
    watcher.list().filter((n) => n.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"))
      .length;
  try {
    await new Promise<void>((resolvePromise, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new ClusterError(
              "start-failed",
              `only ${ready()} of ${count} nodes became Ready in 60 s (see the kwok log)`,
            ),
          ),
        60_000,
      );
      const check = (): void => {
        const n = ready();
        say(`waiting for nodes to be Ready (${n}/${count})`);
        if (n >= count) {
          clearTimeout(timer);
          resolvePromise();
        }
      };
      watcher.on(check);
      watcher.start();
      watcher.synced().then(check, reject);
    });
  } finally {
    await watcher.stop();
  }
}

async function stopComponents(state: ClusterState): Promise<string[]> {
  const stopped: string[] = [];
  for (const c of [...state.components].reverse()) {
    if (await stopProcess(c)) stopped.push(c.name);
  }
  return stopped;
}

/** DownResult says which processes were stopped and whether the state folder was removed. */
export interface DownResult {
  found: boolean;
  stopped: string[];
  removed: boolean;
}

/** down stops exactly the processes `up` recorded (by pid, checked against the binary) and removes the state unless keep. */
export async function down(options: { dir?: string; keep?: boolean }): Promise<DownResult> {
  const dir = resolveDir(options.dir);
  const state = readState(dir);
  if (!state) return { found: false, stopped: [], removed: false };
  const stopped = await stopComponents(state);
  if (!options.keep) rmSync(dir, { recursive: true, force: true });
  return { found: true, stopped, removed: !options.keep };
}

/**
 * restartComponent stops one component and starts it again with the same flags and port, for
 * tests that need the API server to go away and come back.
 */
export async function stopComponent(dir: string | undefined, name: ComponentName): Promise<void> {
  const state = readState(dir);
  const record = state?.components.find((c) => c.name === name);
  if (!state || !record) throw new ClusterError("missing", `no ${name} recorded in ${resolveDir(dir)}`);
  await stopProcess(record);
}

export async function startComponent(dir: string | undefined, name: ComponentName): Promise<void> {
  const state = readState(dir);
  const index = state?.components.findIndex((c) => c.name === name) ?? -1;
  if (!state || index < 0) throw new ClusterError("missing", `no ${name} recorded in ${resolveDir(dir)}`);
  const old = state.components[index] as ComponentRecord;
  if (isOurProcess(old)) return;
  const record = startProcess(old, state.dir);
  state.components[index] = record;
  writeState(state);
  await waitHealthy(record, name === "kube-apiserver" ? tlsOf(state.dir) : {}, 60_000);
}

/** envExports renders the shell lines `kubewise cluster env` prints. */
export function envExports(state: ClusterState): string {
  return [
    `export KUBECONFIG=${shellQuote(state.kubeconfig)}`,
    `export PATH=${shellQuote(state.binDir)}:"$PATH"`,
    "",
  ].join("\n");
}

function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, "'\\''")}'`;
}
