import { test } from "node:test";
import assert from "node:assert/strict";
import { ApiException } from "@kubernetes/client-node";
import { pino } from "pino";
import type { KubeClient } from "../kube/index.js";
import type { Logger } from "../log.js";
import { JobsError } from "./errors.js";
import { checkNamespacesExist, JobPodWatcher } from "./watcher.js";

/** fakeClient answers readNamespace from a table of names to HTTP status codes (200 if absent). */
function fakeClient(codes: Record<string, number>, read: string[] = []): KubeClient {
  const core = {
    readNamespace: async ({ name }: { name: string }) => {
      read.push(name);
      const code = codes[name] ?? 200;
      if (code === 0) return new Promise(() => {});
      if (code !== 200) {
        const body = JSON.stringify({ kind: "Status", code, message: `namespaces "${name}" says ${code}` });
        throw new ApiException(code, `HTTP ${code}`, body, {});
      }
      return { metadata: { name } };
    },
  };
  return { core } as unknown as KubeClient;
}

/** capture is a pino logger whose lines are kept, parsed, for assertions. */
function capture(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: "debug" }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  return { log, lines };
}

test("Verifies that a namespace that does not exist fails start, naming it and where it came from", async () => {
  const read: string[] = [];
  const watcher = new JobPodWatcher({
    client: fakeClient({ defualt: 404 }, read),
    namespaces: ["batch", "defualt"],
    namespacesFrom: "POD_NAMESPACES",
  });
  await assert.rejects(
    watcher.start(() => {}),
    (err: unknown) => {
      assert.ok(err instanceof JobsError, String(err));
      assert.equal(err.reason, "namespace-not-found");
      assert.match(err.message, /^POD_NAMESPACES lists "defualt", which does not exist \(check the spelling/);
      return true;
    },
  );
  assert.deepEqual(read.sort(), ["batch", "defualt"], "every namespace is checked");
});

test("Verifies that several missing namespaces are named at once, and without a source the message still names them", async () => {
  await assert.rejects(checkNamespacesExist(fakeClient({ a: 404, b: 404 }), ["a", "b", "c"]), {
    message: /^namespaces "a", "b" do not exist/,
  });
  await assert.rejects(
    checkNamespacesExist(fakeClient({ a: 404, b: 404 }), ["a", "b"], { from: "--namespaces" }),
    { message: /^--namespaces lists "a", "b", which do not exist/ },
  );
});

test("Verifies that a forbidden namespace read warns and goes on, and other failures are left to the pod list", async () => {
  const { log, lines } = capture();
  await checkNamespacesExist(
    fakeClient({ locked: 403, flaky: 503, hung: 0 }),
    ["ok", "locked", "flaky", "hung"],
    {
      log,
      timeoutMs: 20,
    },
  );
  const warnings = lines.filter((l) => l.level === 40);
  assert.equal(warnings.length, 1);
  assert.equal(warnings[0]?.namespace, "locked");
  assert.match(String(warnings[0]?.msg), /cannot check that the namespace exists/);
  assert.deepEqual(
    lines
      .filter((l) => l.level === 20)
      .map((l) => l.namespace)
      .sort(),
    ["flaky", "hung"],
  );
});
