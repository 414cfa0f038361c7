/**
 * Test harness for integration suites: every suite uses the embedded cluster that
 * scripts/run-tests.mjs started (or found running) for the whole run, and each test gets a
 * namespace of its own, deleted afterwards.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestContext } from "node:test";
import { readState, type ClusterState } from "../../../src/cluster/index.js";
import { KubeClient } from "../../../src/kube/index.js";

/** TEST_CLUSTER_DIR is where the test run's cluster lives (shared by every suite of a run). */
export const TEST_CLUSTER_DIR = process.env.KUBEWISE_TEST_CLUSTER_DIR ?? ".kubewise/test-cluster";

export interface TestCluster {
  client: KubeClient;
  state: ClusterState;
  kubeconfig: string;
  dir: string;
}

let cached: TestCluster | undefined;

/** testCluster connects to the run's cluster; it fails with how to start one when there is none. */
export function testCluster(): TestCluster {
  if (cached) return cached;
  const state = readState(TEST_CLUSTER_DIR);
  if (!state) {
    throw new Error(
      `no test cluster in ${TEST_CLUSTER_DIR}: run the integration tests with \`npm run test:integration\`, which starts one`,
    );
  }
  cached = {
    client: KubeClient.connect({ kubeconfig: state.kubeconfig }),
    state,
    kubeconfig: state.kubeconfig,
    dir: state.dir,
  };
  return cached;
}

/** testNamespace creates a namespace for one test and deletes it when the test ends. */
export async function testNamespace(t: TestContext, prefix = "t"): Promise<string> {
  const { client } = testCluster();
  const name = `${prefix}-${randomBytes(4).toString("hex")}`.toLowerCase().slice(0, 63);
  await client.core.createNamespace({
    body: { metadata: { name, labels: { "kubewise.dev/test": "true" } } },
  });
  t.after(async () => {
    await client.core.deleteNamespace({ name }).catch(() => undefined);
  });
  return name;
}

/**
 * serviceAccountClient creates a service account in `namespace`, mints a token for it and
 * connects as it (a kubeconfig in a temporary folder, removed when the test ends): the client a
 * component would have in the cluster, for tests of the shipped RBAC rules.
 */
export async function serviceAccountClient(
  t: TestContext,
  namespace: string,
  account: string,
): Promise<KubeClient> {
  const { client } = testCluster();
  await client.core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: account } } });
  const request = await client.core.createNamespacedServiceAccountToken({
    namespace,
    name: account,
    body: { spec: { audiences: [], expirationSeconds: 3600 } },
  });
  const cluster = client.config.getCurrentCluster();
  const token = request.status?.token;
  if (!cluster || !token) throw new Error(`no token was minted for service account ${namespace}/${account}`);
  const dir = mkdtempSync(join(tmpdir(), "kubewise-sa-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, "kubeconfig");
  const ca = cluster.caData ?? readFileSync(cluster.caFile ?? "").toString("base64");
  writeFileSync(
    file,
    JSON.stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "test", cluster: { server: cluster.server, "certificate-authority-data": ca } }],
      users: [{ name: account, user: { token } }],
      contexts: [{ name: "test", context: { cluster: "test", user: account } }],
      "current-context": "test",
    }),
  );
  return KubeClient.connect({ kubeconfig: file });
}

/** eventually polls `cond` every 100 ms until it holds, failing with `what` after `timeoutMs`. */
export async function eventually(
  cond: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
