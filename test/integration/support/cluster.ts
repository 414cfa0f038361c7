/**
 * Test harness for integration suites: every suite uses the embedded cluster that
 * scripts/run-tests.mjs started (or found running) for the whole run, and each test gets a
 * namespace of its own, deleted afterwards.
 */
import { randomBytes } from "node:crypto";
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
