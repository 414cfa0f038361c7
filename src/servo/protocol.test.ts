import { test } from "node:test";
import assert from "node:assert/strict";
import {
  adjustCommand,
  failureFromError,
  measureCommand,
  parseCommand,
  parseDescriptor,
  parseDurationSeconds,
  parseEvent,
  parseOptimizerReply,
  progressParam,
  readingValue,
  resultStatus,
  ServoError,
  sleepCommand,
  stateValues,
} from "./protocol.js";

void test("Verifies that a servox MEASURE command parses with a metrics dict and control defaults", () => {
  const cmd = parseCommand({
    cmd: "MEASURE",
    cmd_uid: "abc",
    param: { metrics: { throughput: { unit: "rpm" } }, control: { warmup: 30, duration: 180, delay: 10 } },
  });
  assert.equal(cmd.cmd, "MEASURE");
  if (cmd.cmd !== "MEASURE") return;
  assert.equal(cmd.cmd_uid, "abc");
  assert.deepEqual(cmd.param.metrics, { throughput: { unit: "rpm" } });
  assert.equal(cmd.param.control.warmup, 30);
  assert.equal(cmd.param.control.duration, 180);
  assert.equal(cmd.param.control.delay, 10);
});

void test("Verifies that an old MEASURE with a metrics list, `past` and no control gets defaults", () => {
  const cmd = parseCommand({ cmd: "MEASURE", param: { metrics: ["a", "b"], control: { past: 7 } } });
  assert.ok(cmd.cmd === "MEASURE");
  assert.deepEqual(cmd.param.metrics, { a: {}, b: {} });
  assert.equal(cmd.param.control.delay, 7);
  assert.equal(cmd.param.control.duration, 1);
  assert.equal(cmd.param.control.warmup, 0);
  assert.equal(cmd.cmd_uid, undefined);
  const bare = parseCommand({ cmd: "MEASURE", param: { metrics: [] } });
  assert.ok(bare.cmd === "MEASURE");
  assert.deepEqual(bare.param.control.duration, 1);
});

void test("Verifies that ADJUST keeps userdata extra keys and reads duration strings", () => {
  const cmd = parseCommand({
    cmd: "ADJUST",
    param: {
      state: {
        application: { components: { main: { settings: { cpu: { value: 1.0 }, mem: { value: 0.5 } } } } },
      },
      control: { settlement: "1m30s", userdata: { deploy_to: "tuning", custom: 3 } },
    },
  });
  assert.ok(cmd.cmd === "ADJUST");
  assert.equal(cmd.param.control.settlement, 90);
  assert.equal(cmd.param.control.userdata?.deploy_to, "tuning");
  assert.equal(cmd.param.control.userdata?.custom, 3);
  assert.deepEqual(stateValues(cmd.param.state), { main: { cpu: 1, mem: 0.5 } });
});

void test("Verifies that SLEEP without param or duration sleeps 120 s", () => {
  const a = parseCommand({ cmd: "SLEEP" });
  const b = parseCommand({ cmd: "SLEEP", param: { data: { reason: "idle" } } });
  assert.ok(a.cmd === "SLEEP" && b.cmd === "SLEEP");
  assert.equal(a.param.duration, 120);
  assert.equal(b.param.duration, 120);
  assert.deepEqual(b.param.data, { reason: "idle" });
});

void test("Verifies that unknown commands and bad params are errors naming the field", () => {
  assert.throws(() => parseCommand({ cmd: "DANCE" }), ServoError);
  assert.throws(
    () => parseCommand({ cmd: "ADJUST", param: { state: {} } }),
    (err: unknown) => err instanceof ServoError && /state\.application/.test(err.message),
  );
  assert.throws(
    () => parseCommand({ cmd: "MEASURE", param: { control: { duration: "soon" } } }),
    /control\.duration: must be seconds/,
  );
});

void test("Verifies that the builders emit shapes the parser accepts (round trip)", () => {
  const adjust = parseCommand(adjustCommand({ web: { cpu: 0.25, mode: "fast" } }, { settlement: 5 }, "u1"));
  assert.ok(adjust.cmd === "ADJUST");
  assert.deepEqual(stateValues(adjust.param.state), { web: { cpu: 0.25, mode: "fast" } });
  assert.equal(adjust.cmd_uid, "u1");
  const measure = parseCommand(measureCommand({ rps: { unit: "rps" } }, { duration: 60 }));
  assert.ok(measure.cmd === "MEASURE");
  assert.equal(measure.param.control.duration, 60);
  const sleep = parseCommand(sleepCommand(30, "done"));
  assert.ok(sleep.cmd === "SLEEP");
  assert.deepEqual(sleep.param, { duration: 30, data: { reason: "done" } });
});

void test("Verifies that an old-servo descriptor without setting types parses as range and enum", () => {
  const d = parseDescriptor({
    application: {
      components: {
        web: {
          settings: {
            cpu: { value: 0.5, min: 0.125, max: 2, step: 0.125, type: "range" },
            mem: { value: null, min: "0.125", max: "4", step: "0.125" },
            GC: { values: ["G1", "Parallel"], value: "G1" },
          },
        },
      },
    },
    measurement: { metrics: { "requests throughput": { unit: "rpm" } } },
    optimization: { perf: "metrics['requests throughput']" },
  });
  const s = d.application.components.web?.settings;
  assert.equal(s?.cpu?.type, "range");
  assert.equal(s?.cpu?.pinned, false);
  assert.ok(s?.mem?.type === "range");
  assert.equal(s.mem.max, 4);
  assert.equal(s.mem.value, null);
  assert.ok(s?.GC?.type === "enum");
  assert.deepEqual(s.GC.values, ["G1", "Parallel"]);
  assert.equal(d.optimization?.perf, "metrics['requests throughput']");
});

void test("Verifies that a servox descriptor with units and pinned settings parses", () => {
  const d = parseDescriptor({
    application: {
      components: {
        "web/main": {
          settings: {
            cpu: { type: "range", unit: "cores", min: 0.25, max: 4, step: 0.125, pinned: false, value: 1 },
            replicas: { type: "range", unit: "", min: 0, max: 99999, step: 1, pinned: true, value: 2 },
          },
        },
      },
    },
  });
  assert.equal(d.application.components["web/main"]?.settings.replicas?.pinned, true);
  assert.throws(() =>
    parseDescriptor({ application: { components: { a: { settings: { x: { type: "set" } } } } } }),
  );
});

void test("Verifies that an old MEASUREMENT without status is a result with status ok", () => {
  const e = parseEvent({ event: "MEASUREMENT", param: { metrics: { rps: { value: 12.5, unit: "rps" } } } });
  assert.equal(e.event, "MEASUREMENT");
  assert.ok(!("progress" in e));
  assert.equal(resultStatus(e.param as { status?: string }), "ok");
});

void test("Verifies that a servox MEASUREMENT with time series reduces to the mean of its points", () => {
  const e = parseEvent({
    event: "MEASUREMENT",
    param: {
      status: "ok",
      reason: "success",
      cmd_uid: "u",
      metrics: {
        p90: {
          unit: "ms",
          values: [
            {
              id: "1700000000",
              data: [
                [1, 10],
                [2, 20],
                [3, "30"],
              ],
            },
          ],
        },
        rps: { unit: "rps", value: "7" },
      },
      annotations: { note: "x" },
    },
  });
  assert.ok(e.event === "MEASUREMENT" && !("progress" in e));
  const metrics = e.param.metrics ?? {};
  assert.ok(metrics.p90 && metrics.rps);
  assert.equal(readingValue(metrics.p90), 20);
  assert.equal(readingValue(metrics.rps), 7);
  assert.equal(readingValue({ values: [{ id: "", data: [] }] }), undefined);
});

void test("Verifies that progress reports are told apart from results, old and new", () => {
  const old = parseEvent({ event: "ADJUSTMENT", param: { progress: null, runtime: 3, message: "rolling" } });
  assert.ok("progress" in old && old.progress);
  assert.equal(old.param.progress, null);
  const neu = parseEvent({ event: "MEASUREMENT", param: progressParam(42.5, 1.5, "u9", "measuring") });
  assert.ok("progress" in neu);
  assert.equal(neu.param.cmd_uid, "u9");
  assert.equal(neu.param.progress, 42.5);
  const failed = parseEvent({
    event: "ADJUSTMENT",
    param: { status: "rejected", reason: "unstable", message: "m" },
  });
  assert.ok(!("progress" in failed) && failed.event === "ADJUSTMENT");
  assert.equal(failed.param.status, "rejected");
});

void test("Verifies that HELLO, WHATS_NEXT and GOODBYE parse with null or missing params", () => {
  assert.deepEqual(parseEvent({ event: "WHATS_NEXT", param: null }), { event: "WHATS_NEXT", param: null });
  const hello = parseEvent({ event: "HELLO", param: { agent: "github.com/opsani/servo" } });
  assert.ok(hello.event === "HELLO");
  assert.equal(hello.param.agent, "github.com/opsani/servo");
  const bye = parseEvent({ event: "GOODBYE" });
  assert.ok(bye.event === "GOODBYE");
  assert.equal(bye.param.reason, undefined);
  assert.throws(() => parseEvent({ event: "DIAG" }), /invalid event/);
});

void test("Verifies that optimizer replies default to ok and failures keep a ServoError's status", () => {
  assert.deepEqual(parseOptimizerReply(null), { status: "ok" });
  assert.equal(parseOptimizerReply({ status: "cancel", reason: "stop" }).status, "cancel");
  const reply = failureFromError(new ServoError("unstable", "pod restarted", { status: "rejected" }), "u");
  assert.deepEqual(reply, { status: "rejected", reason: "unstable", message: "pod restarted", cmd_uid: "u" });
  assert.equal(failureFromError(new Error("boom")).reason, "unknown");
});

void test("Verifies that durations parse as numbers, numeric strings and unit strings only", () => {
  assert.equal(parseDurationSeconds(5), 5);
  assert.equal(parseDurationSeconds("2.5"), 2.5);
  assert.equal(parseDurationSeconds("1h2m3s"), 3723);
  assert.equal(parseDurationSeconds("250ms"), 0.25);
  assert.equal(parseDurationSeconds("5 minutes"), undefined);
  assert.equal(parseDurationSeconds(-1), undefined);
});
