import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Outbox, type NewReport } from "./outbox.js";
import {
  backoffDelay,
  classifyStatus,
  DEFAULT_BACKOFF,
  parseRetryAfter,
  Reporter,
  reportUrl,
  type ReporterOptions,
} from "./reporter.js";
import type { ReportTarget } from "./config.js";

interface Received {
  url: string;
  headers: IncomingMessage["headers"];
  body: { event: string; param: { idempotency_key: string } };
}

type Responder = (req: Received, res: ServerResponse) => void;

async function receiver(
  respond: Responder,
): Promise<{ url: string; received: Received[]; close: () => Promise<void> }> {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const entry = {
        url: req.url ?? "",
        headers: req.headers,
        body: JSON.parse(Buffer.concat(chunks).toString("utf8")),
      };
      received.push(entry);
      respond(entry, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/metrics/{acct}/{app_id}/servo`,
    received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function reply(res: ServerResponse, status: number, headers: Record<string, string> = {}): void {
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(status < 300 ? '{"status":"ok"}' : '{"status":"error","message":"nope"}');
}

function tempOutbox(now?: () => number): Outbox {
  return Outbox.open(
    join(mkdtempSync(join(tmpdir(), "kubewise-reporter-")), "outbox.sqlite"),
    now ? { now } : {},
  );
}

function report(uid: string, appId = "render video/1"): NewReport {
  return {
    uid,
    appId,
    namespace: "batch",
    pod: `pod-${uid}`,
    param: { status: "ok", reason: "success", annotations: {}, idempotency_key: uid },
  };
}

/** fakeTime is a clock that moves only when the reporter sleeps; sleeps are recorded. */
function fakeTime(): { now: () => number; sleeps: number[]; sleep: ReporterOptions["sleep"] } {
  let now = 1_700_000_000_000;
  const sleeps: number[] = [];
  return {
    now: () => now,
    sleeps,
    sleep: async (ms, signal) => {
      sleeps.push(ms);
      now += ms;
      // An idle loop waits for a notify; a timed wait returns on the next turn of the event loop.
      if (ms >= 60_000 && !signal.aborted)
        await new Promise((r) => signal.addEventListener("abort", r, { once: true }));
      else await new Promise((r) => setImmediate(r));
    },
  };
}

async function until(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const target = (url: string, token?: string): ReportTarget => ({
  urlTemplate: url,
  account: "acme.example",
  token,
});

test("Verifies that backoff doubles from 1 s to a 30 s cap and jitters within [base/2, base]", () => {
  const low = [1, 2, 3, 4, 5, 6, 7, 8].map((n) => backoffDelay(n, DEFAULT_BACKOFF, () => 0));
  const high = [1, 2, 3, 4, 5, 6, 7, 8].map((n) => backoffDelay(n, DEFAULT_BACKOFF, () => 0.999999));
  assert.deepEqual(low, [500, 1000, 2000, 4000, 8000, 15000, 15000, 15000]);
  assert.deepEqual(high, [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
  assert.equal(
    backoffDelay(100, { initialMs: 10, maxMs: 50, factor: 3 }, () => 0.5),
    38,
  );
});

test("Verifies that statuses are sorted into delivered, retry and rejected", () => {
  assert.equal(classifyStatus(200), "delivered");
  assert.equal(classifyStatus(204), "delivered");
  for (const s of [301, 302, 307, 401, 403, 404, 408, 429, 500, 502, 503, 504])
    assert.equal(classifyStatus(s), "retry", String(s));
  for (const s of [400, 405, 409, 410, 413, 422, 451]) assert.equal(classifyStatus(s), "rejected", String(s));
});

test("Verifies that Retry-After is read as seconds or a date, and bounded", () => {
  const now = Date.parse("2024-05-01T10:00:00Z");
  assert.equal(parseRetryAfter("7", now), 7000);
  assert.equal(parseRetryAfter("Wed, 01 May 2024 10:00:20 GMT", now), 20_000);
  assert.equal(parseRetryAfter("99999", now), 300_000);
  assert.equal(parseRetryAfter("soon", now), undefined);
  assert.equal(parseRetryAfter(null, now), undefined);
});

test("Verifies that {acct} and {app_id} are filled and URL-encoded", () => {
  assert.equal(
    reportUrl(target("https://x.example/m/{acct}/{app_id}/servo"), "render video/1?x"),
    "https://x.example/m/acme.example/render%20video%2F1%3Fx/servo",
  );
});

test("Verifies that a report fails N times, then is delivered exactly once, with growing delays", async () => {
  let failuresLeft = 3;
  const rx = await receiver((_req, res) => reply(res, failuresLeft-- > 0 ? 503 : 200));
  const time = fakeTime();
  const outbox = tempOutbox(time.now);
  const delivered: string[] = [];
  const reporter = new Reporter({
    outbox,
    target: target(rx.url),
    now: time.now,
    sleep: time.sleep,
    random: () => 0.5,
    markReported: async (entry) => {
      delivered.push(entry.uid);
    },
  });
  try {
    outbox.enqueue(report("uid-1"));
    reporter.start();
    await until(() => delivered.length === 1, "delivery");
    await reporter.stop();
    assert.equal(rx.received.length, 4);
    assert.equal(rx.received.filter((r) => r.body.param.idempotency_key === "uid-1").length, 4);
    assert.deepEqual(time.sleeps.slice(0, 3), [750, 1500, 3000], "1 s, 2 s, 4 s bases with jitter 0.5");
    assert.equal(outbox.get("uid-1")?.state, "delivered");
    assert.equal(outbox.get("uid-1")?.attempts, 4);
    assert.ok(outbox.get("uid-1")?.markedAt !== undefined);
    assert.deepEqual(delivered, ["uid-1"]);
    assert.equal(rx.received[0]?.url, "/metrics/acme.example/render%20video%2F1/servo");
    assert.equal(rx.received[0]?.body.event, "MEASUREMENT");
    assert.equal(rx.received[0]?.headers["idempotency-key"], "uid-1");
    assert.equal(rx.received[0]?.headers["content-type"], "application/json");
  } finally {
    await reporter.stop();
    outbox.close();
    await rx.close();
  }
});

test("Verifies that an outage ridden out by a restarted reporter delivers each uid exactly once", async () => {
  let up = false;
  const rx = await receiver((_req, res) => reply(res, up ? 200 : 502));
  const file = join(mkdtempSync(join(tmpdir(), "kubewise-reporter-")), "outbox.sqlite");
  const fast = { initialMs: 2, maxMs: 10, factor: 2 };
  let outbox = Outbox.open(file);
  let reporter = new Reporter({ outbox, target: target(rx.url), backoff: fast });
  try {
    for (const uid of ["a", "b", "c"]) outbox.enqueue(report(uid));
    reporter.start();
    await until(() => rx.received.length >= 5, "several failed attempts");
    await reporter.stop();
    outbox.close();
    const check = Outbox.open(file);
    assert.equal(check.pending().length, 3, "nothing lost or half-sent while the endpoint was down");
    check.close();
  } finally {
    await reporter.stop();
  }
  // A new process: the endpoint is back, and the same outbox file is reopened.
  const tried = rx.received.length;
  up = true;
  outbox = Outbox.open(file);
  reporter = new Reporter({ outbox, target: target(rx.url), backoff: fast });
  try {
    reporter.start();
    await until(() => outbox.counts().delivered === 3, "all delivered");
    outbox.enqueue(report("a"));
    reporter.notify();
    await new Promise((r) => setTimeout(r, 50));
    await reporter.stop();
    const accepted = rx.received.slice(tried).map((r) => r.body.param.idempotency_key);
    assert.deepEqual(accepted.sort(), ["a", "b", "c"], "each uid accepted once, none re-sent after delivery");
  } finally {
    await reporter.stop();
    outbox.close();
    await rx.close();
  }
});

test("Verifies that a payload 4xx (400) is rejected at once and the queue moves on", async () => {
  const rx = await receiver((req, res) => reply(res, req.body.param.idempotency_key === "bad" ? 400 : 200));
  const outbox = tempOutbox();
  const reporter = new Reporter({ outbox, target: target(rx.url) });
  try {
    outbox.enqueue(report("bad"));
    outbox.enqueue(report("good"));
    assert.equal(await reporter.runOnce(), undefined, "nothing left to wait for");
    assert.equal(outbox.get("bad")?.state, "rejected");
    assert.match(outbox.get("bad")?.lastError ?? "", /^HTTP 400: \{"status":"error"/);
    assert.equal(outbox.get("good")?.state, "delivered");
    assert.equal(await reporter.runOnce(), undefined);
    assert.equal(rx.received.length, 2, "the rejected report is not retried");
    assert.deepEqual(reporter.status().rejected, 1);
  } finally {
    outbox.close();
    await rx.close();
  }
});

test("Verifies that 429 with Retry-After waits at least that long, and 408 is retried", async () => {
  const statuses = [429, 408, 200];
  const rx = await receiver((_req, res) => reply(res, statuses.shift() ?? 200, { "retry-after": "12" }));
  const time = fakeTime();
  const outbox = tempOutbox(time.now);
  const reporter = new Reporter({
    outbox,
    target: target(rx.url),
    now: time.now,
    sleep: time.sleep,
    random: () => 0,
  });
  try {
    outbox.enqueue(report("x"));
    assert.equal(await reporter.runOnce(), 12_000);
    assert.equal(await reporter.runOnce(), 12_000, "still backing off: nothing is sent early");
    assert.equal(rx.received.length, 1);
    await time.sleep?.(12_000, new AbortController().signal);
    assert.equal(await reporter.runOnce(), 12_000, "the 408 also carried Retry-After");
    await time.sleep?.(12_000, new AbortController().signal);
    assert.equal(await reporter.runOnce(), undefined);
    assert.equal(outbox.get("x")?.state, "delivered");
    assert.equal(rx.received.length, 3);
  } finally {
    outbox.close();
    await rx.close();
  }
});

test("Verifies that connection errors are retried with backoff", async () => {
  const rx = await receiver((_req, res) => reply(res, 200));
  const url = rx.url;
  await rx.close();
  const time = fakeTime();
  const outbox = tempOutbox(time.now);
  const reporter = new Reporter({
    outbox,
    target: target(url),
    now: time.now,
    sleep: time.sleep,
    random: () => 0,
  });
  try {
    outbox.enqueue(report("x"));
    assert.equal(await reporter.runOnce(), 500);
    assert.equal(outbox.get("x")?.state, "pending");
    assert.match(outbox.get("x")?.lastError ?? "", /fetch failed \(ECONNREFUSED\)/);
    assert.equal(reporter.status().consecutiveFailures, 1);
  } finally {
    outbox.close();
  }
});

test("Verifies that the bearer token is sent when configured and no header otherwise", async () => {
  const rx = await receiver((_req, res) => reply(res, 200));
  const outbox = tempOutbox();
  try {
    outbox.enqueue(report("with"));
    await new Reporter({ outbox, target: target(rx.url, "s3cret") }).runOnce();
    outbox.enqueue(report("without"));
    await new Reporter({ outbox, target: target(rx.url) }).runOnce();
    outbox.enqueue(report("prefixed"));
    await new Reporter({ outbox, target: target(rx.url, "Bearer abc") }).runOnce();
    const byUid = new Map(rx.received.map((r) => [r.body.param.idempotency_key, r.headers]));
    assert.equal(byUid.get("with")?.authorization, "Bearer s3cret");
    assert.equal(byUid.get("without")?.authorization, undefined);
    assert.equal(byUid.get("prefixed")?.authorization, "Bearer abc");
  } finally {
    outbox.close();
    await rx.close();
  }
});

test("Verifies that the token is never logged, even when delivery fails", async () => {
  const rx = await receiver((_req, res) => reply(res, 401));
  const outbox = tempOutbox();
  const lines: string[] = [];
  const { pino } = await import("pino");
  const log = pino({ level: "debug" }, { write: (line: string) => lines.push(line) });
  try {
    outbox.enqueue(report("x"));
    await new Reporter({ outbox, target: target(rx.url, "TOPSECRET-42"), log }).runOnce();
    assert.ok(lines.some((l) => l.includes("kept in the outbox")));
    assert.ok(lines.every((l) => !l.includes("TOPSECRET")));
  } finally {
    outbox.close();
    await rx.close();
  }
});

test("Verifies that a failing markReported hook is retried without sending the report again", async () => {
  const rx = await receiver((_req, res) => reply(res, 200));
  const time = fakeTime();
  const outbox = tempOutbox(time.now);
  let hookFailures = 2;
  const marked: string[] = [];
  const reporter = new Reporter({
    outbox,
    target: target(rx.url),
    now: time.now,
    sleep: time.sleep,
    random: () => 0,
    markReported: async (entry) => {
      if (hookFailures-- > 0) throw new Error("api server unavailable");
      marked.push(entry.uid);
    },
  });
  try {
    outbox.enqueue(report("x"));
    assert.equal(await reporter.runOnce(), 500, "the hook failed once: wait before trying it again");
    assert.equal(outbox.get("x")?.state, "delivered");
    await time.sleep?.(500, new AbortController().signal);
    assert.equal(await reporter.runOnce(), 1000);
    await time.sleep?.(1000, new AbortController().signal);
    assert.equal(await reporter.runOnce(), undefined);
    assert.deepEqual(marked, ["x"]);
    assert.ok(outbox.get("x")?.markedAt !== undefined);
    assert.equal(rx.received.length, 1, "delivered once; only the hook was retried");
  } finally {
    outbox.close();
    await rx.close();
  }
});

test("Verifies that a redirect is not followed as a GET but kept and retried, with advice", async () => {
  const rx = await receiver((_req, res) => reply(res, 302, { location: "https://elsewhere.example/x" }));
  const outbox = tempOutbox();
  try {
    outbox.enqueue(report("x"));
    assert.equal(await new Reporter({ outbox, target: target(rx.url), random: () => 0 }).runOnce(), 500);
    assert.equal(outbox.get("x")?.state, "pending");
    assert.match(
      outbox.get("x")?.lastError ?? "",
      /HTTP 302 redirect to https:\/\/elsewhere\.example\/x; set OPTUNE_URL/,
    );
  } finally {
    outbox.close();
    await rx.close();
  }
});

test("Verifies that 401, 403 and 404 keep the report, back off with a cap, warn with the status, and deliver once fixed", async () => {
  const statuses = [401, 403, 404, 401, 401, 401, 401, 401];
  const rx = await receiver((_req, res) => reply(res, statuses.shift() ?? 200));
  const time = fakeTime();
  const outbox = tempOutbox(time.now);
  const lines: string[] = [];
  const { pino } = await import("pino");
  const log = pino({ level: "debug" }, { write: (line: string) => lines.push(line) });
  const reporter = new Reporter({
    outbox,
    target: target(rx.url),
    now: time.now,
    sleep: time.sleep,
    random: () => 0.999999,
    backoff: { initialMs: 1000, maxMs: 4000 },
    log,
  });
  try {
    outbox.enqueue(report("x"));
    const waits: (number | undefined)[] = [];
    for (let i = 0; i < 9; i++) {
      const wait = await reporter.runOnce();
      waits.push(wait);
      if (wait !== undefined) await time.sleep?.(wait, new AbortController().signal);
    }
    assert.deepEqual(
      waits,
      [1000, 2000, 4000, 4000, 4000, 4000, 4000, 4000, undefined],
      "exponential, capped, then delivered",
    );
    assert.equal(outbox.get("x")?.state, "delivered");
    assert.equal(outbox.get("x")?.attempts, 9);
    assert.equal(reporter.status().rejected, 0);
    const warnings = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.level === 40);
    assert.deepEqual(
      warnings.slice(0, 3).map((w) => w.status),
      [401, 403, 404],
    );
    assert.match(String(warnings[0]?.msg), /HTTP 401.*kept in the outbox and will be retried/);
    assert.match(String(warnings[0]?.error), /check OPTUNE_AUTH_TOKEN/);
    assert.match(String(warnings[2]?.error), /check OPTUNE_URL and OPTUNE_ACCOUNT/);
  } finally {
    outbox.close();
    await rx.close();
  }
});

test("Verifies that a report that keeps failing (404 for its app id) does not hold up the others", async () => {
  const rx = await receiver((req, res) => reply(res, req.url.includes("/missing/") ? 404 : 200));
  const time = fakeTime();
  const outbox = tempOutbox(time.now);
  const reporter = new Reporter({
    outbox,
    target: target(rx.url),
    now: time.now,
    sleep: time.sleep,
    random: () => 0,
  });
  try {
    outbox.enqueue(report("stuck", "missing"));
    await time.sleep?.(10, new AbortController().signal);
    outbox.enqueue(report("a"));
    assert.equal(await reporter.runOnce(), 500, "the first report failed: the queue waits");
    assert.equal(outbox.get("a")?.state, "pending");
    await time.sleep?.(500, new AbortController().signal);
    outbox.enqueue(report("b"));
    // The failed report went behind the others: they are sent first, then it is tried again.
    await reporter.runOnce();
    assert.equal(outbox.get("a")?.state, "delivered");
    assert.equal(outbox.get("b")?.state, "delivered");
    assert.equal(outbox.get("stuck")?.state, "pending");
    assert.deepEqual(
      rx.received.map((r) => r.body.param.idempotency_key),
      ["stuck", "a", "b", "stuck"],
    );
  } finally {
    outbox.close();
    await rx.close();
  }
});

test("Verifies that a timed-out request is retried and carries the same idempotency key", async () => {
  let first = true;
  const rx = await receiver((_req, res) => {
    if (first) {
      first = false;
      setTimeout(() => reply(res, 200), 300);
    } else reply(res, 200);
  });
  const outbox = tempOutbox();
  const reporter = new Reporter({ outbox, target: target(rx.url), requestTimeoutMs: 50, random: () => 0 });
  try {
    outbox.enqueue(report("slow"));
    const wait = await reporter.runOnce();
    assert.equal(wait, 500);
    assert.equal(outbox.get("slow")?.lastError, "request timed out");
    await new Promise((r) => setTimeout(r, 520));
    assert.equal(await reporter.runOnce(), undefined);
    assert.deepEqual(
      rx.received.map((r) => [r.headers["idempotency-key"], r.body.param.idempotency_key]),
      [
        ["slow", "slow"],
        ["slow", "slow"],
      ],
    );
  } finally {
    outbox.close();
    await rx.close();
  }
});
