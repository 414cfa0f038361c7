import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { V1Pod } from "@kubernetes/client-node";
import { resolveWatchConfig } from "./config.js";
import type { OutboxEntry } from "./outbox.js";
import { REPORTED_ANNOTATION } from "./reconcile.js";
import { JobsWatch, type JobPodSource, type PodListener } from "./service.js";

function pod(uid: string, phase: "Running" | "Succeeded"): V1Pod {
  const p = JSON.parse(
    readFileSync(new URL("./testdata/pod-succeeded.json", import.meta.url), "utf8"),
  ) as V1Pod;
  p.metadata = { ...p.metadata, uid, name: `render-${uid}` };
  if (phase === "Running") p.status = { phase, containerStatuses: [] };
  return p;
}

/** FakeCluster holds pods like the API would, and plays the source's part. */
class FakeCluster implements JobPodSource {
  readonly pods = new Map<string, V1Pod>();
  private listener: PodListener | undefined;
  marked: string[] = [];

  put(p: V1Pod, deleted = false, inferred = false): void {
    const uid = p.metadata?.uid ?? "";
    if (deleted) this.pods.delete(uid);
    else this.pods.set(uid, p);
    this.listener?.(p, deleted, inferred);
  }

  async start(listener: PodListener): Promise<void> {
    this.listener = listener;
    for (const p of this.pods.values()) listener(p, false);
  }

  async stop(): Promise<void> {
    this.listener = undefined;
  }

  // A method, not an arrow property: JobsWatch must call it with its `this`.
  async markReported(entry: OutboxEntry): Promise<void> {
    const p = this.pods.get(entry.uid);
    if (p === undefined) return; // gone: nothing to mark
    p.metadata = { ...p.metadata, annotations: { ...p.metadata?.annotations, [REPORTED_ANNOTATION]: "now" } };
    this.marked.push(entry.uid);
  }
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test("Verifies that killing the watcher during an outage loses nothing and reports each pod once", async () => {
  let up = false;
  const accepted: string[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as {
        param: { idempotency_key: string };
      };
      if (up) accepted.push(body.param.idempotency_key);
      res.writeHead(up ? 200 : 503).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  const outbox = join(mkdtempSync(join(tmpdir(), "kubewise-jobs-watch-")), "outbox.sqlite");
  const config = resolveWatchConfig(
    { url: `http://127.0.0.1:${port}/{acct}/{app_id}`, account: "acme", outbox },
    {},
  );
  const fast = { backoff: { initialMs: 2, maxMs: 10 } };
  const cluster = new FakeCluster();
  cluster.put(pod("done-before-start", "Succeeded"));
  cluster.put(pod("running", "Running"));

  let watch = new JobsWatch({ config, source: cluster, reporter: fast });
  try {
    await watch.start();
    cluster.put(pod("running", "Succeeded"));
    await new Promise((r) => setTimeout(r, 50));
    await watch.stop(); // killed during the outage
  } finally {
    await watch.stop();
  }
  // While no watcher runs, one finished pod is deleted (its report is only in the outbox) and
  // another pod finishes (nothing knows of it yet).
  cluster.put(pod("running", "Succeeded"), true);
  cluster.put(pod("finished-while-down", "Succeeded"));
  up = true;

  watch = new JobsWatch({ config, source: cluster, reporter: fast });
  try {
    await watch.start();
    await until(() => accepted.length === 3, "three reports");
    cluster.put(pod("finished-while-down", "Succeeded")); // a late MODIFIED event
    await until(() => cluster.marked.length === 2, "marks");
    await watch.stop();
    // A third start: everything is marked or delivered; nothing is sent again.
    watch = new JobsWatch({ config, source: cluster, reporter: fast });
    await watch.start();
    await new Promise((r) => setTimeout(r, 50));
  } finally {
    await watch.stop();
    await new Promise<void>((r) => server.close(() => r()));
  }
  assert.deepEqual([...accepted].sort(), ["done-before-start", "finished-while-down", "running"]);
  assert.deepEqual([...cluster.marked].sort(), ["done-before-start", "finished-while-down"]);
});

test("Verifies that a deletion the source inferred from a relist reaches the report as an unknown outcome", async () => {
  const reasons = new Map<string, string>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as {
        param: { idempotency_key: string; reason: string };
      };
      reasons.set(body.param.idempotency_key, body.param.reason);
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  const outbox = join(mkdtempSync(join(tmpdir(), "kubewise-jobs-watch-")), "outbox.sqlite");
  const config = resolveWatchConfig(
    { url: `http://127.0.0.1:${port}/{acct}/{app_id}`, account: "acme", outbox },
    {},
  );
  const cluster = new FakeCluster();
  cluster.put(pod("missed", "Running"));
  cluster.put(pod("seen", "Running"));
  const watch = new JobsWatch({
    config,
    source: cluster,
    reporter: { backoff: { initialMs: 2, maxMs: 10 } },
  });
  try {
    await watch.start();
    cluster.put(pod("missed", "Running"), true, true);
    cluster.put(pod("seen", "Running"), true, false);
    await until(() => reasons.size === 2, "both reports");
  } finally {
    await watch.stop();
    server.close();
  }
  assert.deepEqual(Object.fromEntries(reasons), { missed: "outcome-unknown", seen: "deleted-before-run" });
});
