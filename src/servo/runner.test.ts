import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Servo } from "./runner.js";
import { HttpTransport } from "./transport.js";
import { parseCommand, ServoError, type AdjustParam, type MeasureParam } from "./protocol.js";
import type { AdjustConnector, MeasureConnector, Measurement, ProgressCallback } from "./connectors/types.js";

interface Posted {
  event: string;
  param: Record<string, unknown> | null;
  auth: string | undefined;
}

/** scriptedOptimizer answers WHATS_NEXT from a list and records every event, over real HTTP. */
async function scriptedOptimizer(
  commands: unknown[],
  onProgress: (p: Posted) => unknown = () => ({ status: "ok" }),
  failFirst = 0,
): Promise<{ url: string; posted: Posted[]; server: Server }> {
  const posted: Posted[] = [];
  let failures = failFirst;
  const server = createServer((req: IncomingMessage, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      if (failures-- > 0) {
        res.writeHead(503).end("busy");
        return;
      }
      const msg = JSON.parse(body) as { event: string; param: Record<string, unknown> | null };
      const entry = { ...msg, auth: req.headers.authorization };
      posted.push(entry);
      let reply: unknown = { status: "ok" };
      if (msg.event === "WHATS_NEXT") reply = commands.shift() ?? { cmd: "SLEEP", param: { duration: 3600 } };
      else if (msg.param && "progress" in msg.param) reply = onProgress(entry);
      res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify(reply));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/accounts/acme/applications/web/servo`, posted, server };
}

class MemoryApp implements AdjustConnector {
  readonly name = "memory";
  cpu = 1;
  adjusted: AdjustParam[] = [];
  describe() {
    return Promise.resolve({
      web: {
        settings: {
          cpu: { type: "range" as const, min: 0.5, max: 2, step: 0.5, pinned: false, value: this.cpu },
        },
      },
    });
  }
  adjust(param: AdjustParam, progress: ProgressCallback) {
    this.adjusted.push(param);
    progress(50, "half way");
    this.cpu = Number(param.state.application.components.web?.settings.cpu?.value);
    return Promise.resolve({ adjusted: true, reason: "success" });
  }
}

class SlowMeasure implements MeasureConnector {
  readonly name = "slow";
  describeMetrics() {
    return { rps: { unit: "rps" } };
  }
  async measure(
    _param: MeasureParam,
    progress: ProgressCallback,
    signal?: AbortSignal,
  ): Promise<Measurement> {
    for (let i = 0; i < 50; i++) {
      if (signal?.aborted)
        throw new ServoError("cancelled", "measurement was cancelled", { status: "cancelled" });
      progress(i * 2, `measuring ${i}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    return { metrics: { rps: { value: 42, unit: "rps" } }, annotations: { note: "x" } };
  }
}

test("Verifies the servo loop: HELLO, each command answered with its event, bearer token sent, GOODBYE at the end", async (t) => {
  const opt = await scriptedOptimizer(
    [
      { cmd: "DESCRIBE", cmd_uid: "u1", param: {} },
      {
        cmd: "ADJUST",
        cmd_uid: "u2",
        param: {
          state: { application: { components: { web: { settings: { cpu: { value: 1.5 } } } } } },
          control: {},
        },
      },
      { cmd: "MEASURE", cmd_uid: "u3", param: { metrics: ["rps"], control: { duration: 1 } } },
      { cmd: "SLEEP", param: { duration: 0 } },
    ],
    () => ({ status: "ok" }),
    2,
  );
  t.after(() => opt.server.close());
  const app = new MemoryApp();
  const transport = new HttpTransport({ url: opt.url, token: "s3cret", initialBackoffMs: 10 });
  const servo = new Servo({
    transport,
    adjusters: [app],
    measurer: new SlowMeasure(),
    progressIntervalMs: 0,
  });
  const summary = await servo.run(new AbortController().signal, (c) => c.cmd === "SLEEP");
  assert.equal(summary.commands, 4);
  const events = opt.posted.filter((p) => !(p.param && "progress" in p.param)).map((p) => p.event);
  assert.deepEqual(events, [
    "HELLO",
    "WHATS_NEXT",
    "DESCRIPTION",
    "WHATS_NEXT",
    "ADJUSTMENT",
    "WHATS_NEXT",
    "MEASUREMENT",
    "WHATS_NEXT",
    "GOODBYE",
  ]);
  assert.ok(opt.posted.every((p) => p.auth === "Bearer s3cret"));
  const description = opt.posted.find((p) => p.event === "DESCRIPTION")?.param as Record<string, unknown>;
  assert.equal(description.cmd_uid, "u1");
  assert.deepEqual((description.descriptor as { measurement: unknown }).measurement, {
    metrics: { rps: { unit: "rps" } },
  });
  const adjustment = opt.posted.find((p) => p.event === "ADJUSTMENT" && p.param && !("progress" in p.param))
    ?.param as Record<string, unknown>;
  assert.deepEqual([adjustment.status, adjustment.reason, adjustment.cmd_uid], ["ok", "success", "u2"]);
  assert.equal(app.cpu, 1.5);
  const measurement = opt.posted.find((p) => p.event === "MEASUREMENT" && p.param && !("progress" in p.param))
    ?.param as Record<string, unknown>;
  assert.deepEqual(measurement.metrics, { rps: { value: 42, unit: "rps" } });
  assert.ok(
    opt.posted.some(
      (p) => p.event === "MEASUREMENT" && p.param && "progress" in p.param && p.param.cmd_uid === "u3",
    ),
    "progress was posted while measuring",
  );
});

test("Verifies that an optimizer reply of cancel to a progress report cancels the running command", async (t) => {
  const opt = await scriptedOptimizer(
    [{ cmd: "MEASURE", cmd_uid: "m1", param: { metrics: ["rps"], control: { duration: 1 } } }],
    () => ({ status: "cancel", reason: "operator asked" }),
  );
  t.after(() => opt.server.close());
  const servo = new Servo({
    transport: new HttpTransport({ url: opt.url }),
    adjusters: [new MemoryApp()],
    measurer: new SlowMeasure(),
    progressIntervalMs: 0,
  });
  await servo.run(new AbortController().signal, (c) => c.cmd === "MEASURE");
  const reply = opt.posted.find(
    (p) => p.event === "MEASUREMENT" && p.param && !("progress" in p.param),
  )?.param;
  assert.equal(reply?.status, "cancelled");
  assert.equal(reply?.cmd_uid, "m1");
});

test("Verifies that stopping the servo sends GOODBYE with the reason and a 4xx is fatal", async (t) => {
  const opt = await scriptedOptimizer([{ cmd: "SLEEP", param: { duration: 3600 } }]);
  t.after(() => opt.server.close());
  const stop = new AbortController();
  const servo = new Servo({ transport: new HttpTransport({ url: opt.url }), adjusters: [new MemoryApp()] });
  const running = servo.run(stop.signal);
  while (!opt.posted.some((p) => p.event === "WHATS_NEXT")) await new Promise((r) => setTimeout(r, 10));
  stop.abort(new Error("SIGTERM"));
  await running;
  assert.deepEqual(opt.posted.at(-1), { event: "GOODBYE", param: { reason: "SIGTERM" }, auth: undefined });

  const refusing = createServer((_req, res) => res.writeHead(401).end("bad token"));
  await new Promise<void>((r) => refusing.listen(0, "127.0.0.1", r));
  t.after(() => refusing.close());
  const url = `http://127.0.0.1:${(refusing.address() as AddressInfo).port}/servo`;
  await assert.rejects(
    new HttpTransport({ url, initialBackoffMs: 1 }).send("HELLO", {}),
    /refused HELLO with HTTP 401: bad token/,
  );
});

/** QuietAdjust reports once, then waits silently (a rollout or settlement) until done or cancelled. */
class QuietAdjust extends MemoryApp {
  constructor(private readonly waitMs: number) {
    super();
  }
  override async adjust(_param: AdjustParam, progress: ProgressCallback, signal?: AbortSignal) {
    progress(10, "patched; waiting for the rollout");
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(resolve, this.waitMs);
      signal?.addEventListener("abort", () => {
        clearTimeout(timer);
        reject(new ServoError("cancelled", "adjust was cancelled", { status: "cancelled" }));
      });
    });
    return { adjusted: true, reason: "success" };
  }
}

const ADJUST = {
  cmd: "ADJUST",
  cmd_uid: "a1",
  param: {
    state: { application: { components: { web: { settings: { cpu: { value: 1 } } } } } },
    control: {},
  },
};

test("Verifies that a long silent wait keeps posting the last progress, and a cancel answered to one of those posts cancels it", async (t) => {
  const opt = await scriptedOptimizer([ADJUST]);
  t.after(() => opt.server.close());
  const servo = new Servo({
    transport: new HttpTransport({ url: opt.url }),
    adjusters: [new QuietAdjust(3500)],
    progressIntervalMs: 0,
  });
  await servo.run(new AbortController().signal, (c) => c.cmd === "ADJUST");
  const progress = opt.posted.filter((p) => p.event === "ADJUSTMENT" && p.param && "progress" in p.param);
  assert.ok(progress.length >= 3, `one report and at least two heartbeats, got ${progress.length}`);
  assert.ok(
    progress.every((p) => p.param?.message === "patched; waiting for the rollout" && p.param.progress === 10),
  );

  let posts = 0;
  const cancelling = await scriptedOptimizer([ADJUST], () =>
    ++posts >= 2 ? { status: "cancel", reason: "enough" } : { status: "ok" },
  );
  t.after(() => cancelling.server.close());
  const started = Date.now();
  await new Servo({
    transport: new HttpTransport({ url: cancelling.url }),
    adjusters: [new QuietAdjust(60_000)],
    progressIntervalMs: 0,
  }).run(new AbortController().signal, (c) => c.cmd === "ADJUST");
  const reply = cancelling.posted.find(
    (p) => p.event === "ADJUSTMENT" && p.param && !("progress" in p.param),
  );
  assert.equal(reply?.param?.status, "cancelled");
  assert.ok(Date.now() - started < 10_000, "cancelled on the first heartbeat, not after the wait");
});

test("Verifies that an ADJUST naming a component the servo does not have fails and changes nothing", async () => {
  const app = new MemoryApp();
  const servo = new Servo({
    transport: new HttpTransport({ url: "http://127.0.0.1:9/unused" }),
    adjusters: [app],
  });
  const reply = await servo.execute(
    parseCommand({
      cmd: "ADJUST",
      cmd_uid: "x1",
      param: {
        state: {
          application: {
            components: {
              web: { settings: { cpu: { value: 2 } } },
              wbe: { settings: { cpu: { value: 2 } } },
            },
          },
        },
        control: {},
      },
    }),
  );
  assert.equal(reply.status, "failed");
  assert.equal(reply.reason, "adjust-failed");
  assert.match(String(reply.message), /unknown component "wbe" in the adjustment; this servo has "web"/);
  assert.equal(app.adjusted.length, 0, "no connector ran");
  assert.equal(app.cpu, 1);
});

test("Verifies that a command running when the servo is stopped still sends its cancelled reply, then GOODBYE", async (t) => {
  const opt = await scriptedOptimizer([ADJUST]);
  t.after(() => opt.server.close());
  const stop = new AbortController();
  const servo = new Servo({
    transport: new HttpTransport({ url: opt.url }),
    adjusters: [new QuietAdjust(60_000)],
    progressIntervalMs: 0,
  });
  const running = servo.run(stop.signal);
  while (!opt.posted.some((p) => p.event === "ADJUSTMENT")) await new Promise((r) => setTimeout(r, 10));
  stop.abort(new Error("SIGTERM"));
  await running;
  const events = opt.posted.filter((p) => !(p.param && "progress" in p.param));
  assert.deepEqual(
    events.map((p) => p.event),
    ["HELLO", "WHATS_NEXT", "ADJUSTMENT", "GOODBYE"],
  );
  assert.equal(events[2]?.param?.status, "cancelled");
  assert.equal(events[2]?.param?.cmd_uid, "a1");
});
