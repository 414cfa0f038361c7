import { test } from "node:test";
import assert from "node:assert/strict";
import type { PoolAssignment } from "./controller.js";
import { IntrospectionServer, type AssignmentsResponse, type IntrospectionSource } from "./http.js";
import { SwarmMetrics } from "./metrics.js";

function source(overrides: Partial<IntrospectionSource> = {}): IntrospectionSource {
  const pool: PoolAssignment = {
    namespace: "swarm",
    name: "streams",
    workload: { kind: "StatefulSet", name: "swarm-worker" },
    configMap: { name: "swarm-worker-config", key: "config.yml" },
    strategy: "restart",
    workers: { "swarm-worker-0": { jobs: ["stream:a"], version: 2 } },
    pendingRestarts: [],
    conditions: [],
  };
  return {
    identity: "pod-a",
    metrics: new SwarmMetrics(),
    isLeader: () => true,
    leader: () => "pod-a",
    synced: () => true,
    assignments: () => [pool],
    ...overrides,
  };
}

async function serve(
  t: { after: (fn: () => Promise<void>) => void },
  s: IntrospectionSource,
): Promise<string> {
  const server = new IntrospectionServer(s, { host: "127.0.0.1", port: 0 });
  const { port } = await server.start();
  t.after(() => server.stop());
  return `http://127.0.0.1:${port}`;
}

test("Verifies that /assignments shows each pool by namespace/name, and who leads", async (t) => {
  const base = await serve(t, source());
  const res = await fetch(`${base}/assignments`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "application/json");
  const body = (await res.json()) as AssignmentsResponse;
  assert.equal(body.identity, "pod-a");
  assert.equal(body.leader, true);
  assert.equal(body.holder, "pod-a");
  assert.deepEqual(Object.keys(body.pools), ["swarm/streams"]);
  assert.deepEqual(body.pools["swarm/streams"]?.workers, {
    "swarm-worker-0": { jobs: ["stream:a"], version: 2 },
  });
});

test("Verifies that /readyz waits for the caches while /healthz answers at once", async (t) => {
  const base = await serve(
    t,
    source({ synced: () => false, leader: () => undefined, isLeader: () => false }),
  );
  assert.equal((await fetch(`${base}/healthz`)).status, 200);
  assert.equal((await fetch(`${base}/readyz`)).status, 503);
  const body = (await (await fetch(`${base}/assignments`)).json()) as AssignmentsResponse;
  assert.equal(body.leader, false);
  assert.equal("holder" in body, false, "no holder seen yet");
});

test("Verifies that /metrics serves the controller's counters and other paths and methods are refused", async (t) => {
  const s = source();
  s.metrics.observe("success", 12);
  s.metrics.observe("terminal", 3, "InsufficientWorkers");
  s.metrics.leader.set(1);
  const base = await serve(t, s);
  const text = await (await fetch(`${base}/metrics`)).text();
  assert.match(text, /^kubewise_swarm_reconciles_total\{result="success"\} 1$/m);
  assert.match(text, /^kubewise_swarm_reconcile_errors_total\{reason="InsufficientWorkers"\} 1$/m);
  assert.match(text, /^kubewise_swarm_leader 1$/m);
  assert.equal(await s.metrics.count("reconciles"), 2);
  assert.equal(await s.metrics.count("reconciles", { result: "terminal" }), 1);
  assert.equal((await fetch(`${base}/other`)).status, 404);
  assert.equal((await fetch(`${base}/assignments`, { method: "POST" })).status, 405);
});
