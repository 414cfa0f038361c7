import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { KubeClient } from "./client.js";
import { KubeError } from "./errors.js";

/** kubeconfig writes a kubeconfig with one cluster/user/context per name and returns its path. */
function kubeconfig(dir: string, file: string, names: string[], current?: string, port = 6443): string {
  const path = join(dir, file);
  writeFileSync(
    path,
    stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: names.map((n) => ({ name: n, cluster: { server: `https://127.0.0.1:${port}` } })),
      users: names.map((n) => ({ name: n, user: { token: `token-${n}` } })),
      contexts: names.map((n) => ({ name: n, context: { cluster: n, user: n, namespace: `ns-${n}` } })),
      ...(current === undefined ? {} : { "current-context": current }),
    }),
  );
  return path;
}

function withEnv(t: TestContext, kubeconfigEnv: string | undefined): void {
  const saved = process.env.KUBECONFIG;
  if (kubeconfigEnv === undefined) delete process.env.KUBECONFIG;
  else process.env.KUBECONFIG = kubeconfigEnv;
  t.after(() => {
    if (saved === undefined) delete process.env.KUBECONFIG;
    else process.env.KUBECONFIG = saved;
  });
}

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), "kubewise-kubeconfig-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test("Verifies that KUBECONFIG with several files merges them as kubectl does: first definition and first current-context win, missing files skipped", (t) => {
  const dir = tempDir(t);
  const a = kubeconfig(dir, "a.yaml", ["alpha", "shared"], "alpha", 1111);
  const b = kubeconfig(dir, "b.yaml", ["beta", "shared"], "beta", 2222);
  withEnv(t, [a, join(dir, "missing.yaml"), "", b].join(":"));
  const client = KubeClient.connect();
  assert.equal(client.source, `${a}:${b}`);
  assert.equal(client.config.getCurrentContext(), "alpha");
  assert.deepEqual(
    client.config.getContexts().map((c) => c.name),
    ["alpha", "shared", "beta"],
  );
  assert.equal(client.config.getCluster("shared")?.server, "https://127.0.0.1:1111", "the first file's wins");
  const beta = KubeClient.connect({ context: "beta" });
  assert.equal(beta.server, "https://127.0.0.1:2222");
  assert.equal(beta.defaultNamespace, "ns-beta");
});

test("Verifies that --kubeconfig wins over KUBECONFIG, and an unknown --context names the contexts there are", (t) => {
  const dir = tempDir(t);
  const a = kubeconfig(dir, "a.yaml", ["alpha"], "alpha", 1111);
  const b = kubeconfig(dir, "b.yaml", ["beta"], "beta", 2222);
  withEnv(t, a);
  assert.equal(KubeClient.connect({ kubeconfig: b }).server, "https://127.0.0.1:2222");
  assert.throws(
    () => KubeClient.connect({ context: "gamma" }),
    (err: unknown) =>
      err instanceof KubeError && err.message === `context "gamma" is not in ${a} (contexts: alpha)`,
  );
});

test("Verifies that a KUBECONFIG file that does not exist, or has no current context, is a clear error", (t) => {
  const dir = tempDir(t);
  withEnv(t, join(dir, "nope.yaml"));
  assert.throws(
    () => KubeClient.connect(),
    (err: unknown) =>
      err instanceof KubeError && err.message.startsWith(`cannot load kubeconfig ${join(dir, "nope.yaml")}`),
  );
  const none = kubeconfig(dir, "none.yaml", ["alpha"]);
  withEnv(t, none);
  assert.throws(
    () => KubeClient.connect(),
    (err: unknown) => err instanceof KubeError && /has no current cluster/.test(err.message),
  );
});
