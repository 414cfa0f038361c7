/**
 * The servo: HELLO, then WHATS_NEXT in a loop, executing DESCRIBE, MEASURE, ADJUST or SLEEP and
 * answering with DESCRIPTION, MEASUREMENT or ADJUSTMENT; GOODBYE when stopped. While a command
 * runs, its progress is posted (at most every progressIntervalMs) and an optimizer reply of
 * `cancel` cancels it.
 */
import type { Logger } from "../log.js";
import { silentLogger } from "../log.js";
import type { AdjustConnector, ComponentDescription, MeasureConnector } from "./connectors/types.js";
import { systemClock, type Clock } from "./connectors/types.js";
import {
  RESPONSE_EVENT,
  ServoError,
  adjustmentReply,
  descriptionReply,
  failureFromError,
  helloParam,
  measurementReply,
  parseCommand,
  parseOptimizerReply,
  progressParam,
  serializeDescriptor,
  type AdjustParam,
  type Command,
  type DescriptorOut,
  type MeasureParam,
  type ServoEvent,
} from "./protocol.js";
import type { OptimizerTransport } from "./transport.js";

export interface ServoOptions {
  transport: OptimizerTransport;
  /** adjusters run in order on ADJUST (k8s, then k8slive, as servo-agg chained them). */
  adjusters: AdjustConnector[];
  measurer?: MeasureConnector;
  log?: Logger;
  clock?: Clock;
  agent?: string;
  /** progressIntervalMs between progress posts while a command runs. @default 10000 */
  progressIntervalMs?: number;
  /** maxSleepSeconds caps a SLEEP (for demos and tests). */
  maxSleepSeconds?: number;
}

/** ServoRunSummary says how a run ended. */
export interface ServoRunSummary {
  commands: number;
  reason: string;
}

/** Servo executes optimizer commands against its connectors. */
export class Servo {
  private readonly log: Logger;
  private readonly clock: Clock;

  constructor(private readonly options: ServoOptions) {
    this.log = (options.log ?? silentLogger).child({ component: "servo" });
    this.clock = options.clock ?? systemClock;
  }

  /** describe merges every adjuster's components with the measure connector's metrics. */
  async describe(signal?: AbortSignal): Promise<DescriptorOut> {
    const components: Record<string, ComponentDescription> = {};
    for (const connector of this.options.adjusters) {
      for (const [name, c] of Object.entries(await connector.describe(signal))) {
        if (components[name]) {
          throw new ServoError(
            "invalid-config",
            `component ${name} is described by two connectors (${connector.name} and another)`,
          );
        }
        components[name] = c;
      }
    }
    const out: DescriptorOut = { application: { components } };
    if (this.options.measurer) out.measurement = { metrics: this.options.measurer.describeMetrics() };
    return out;
  }

  /**
   * execute runs one command and returns the param of the reply event (DESCRIPTION, MEASUREMENT,
   * ADJUSTMENT). Failures become `{status, reason, message}` replies, never exceptions, except
   * SLEEP, which has no reply. `onProgress` receives (percent, message) while it runs.
   */
  async execute(
    command: Command,
    signal?: AbortSignal,
    onProgress?: (percent: number, message?: string) => void,
  ): Promise<Record<string, unknown>> {
    const uid = command.cmd_uid;
    const progress = onProgress ?? (() => {});
    try {
      switch (command.cmd) {
        case "DESCRIBE":
          return descriptionReply(await this.describe(signal), uid);
        case "MEASURE":
          return await this.measure(command.param, progress, signal, uid);
        case "ADJUST":
          return await this.adjust(command.param, progress, signal, uid);
        case "SLEEP":
          return {};
      }
    } catch (err) {
      this.log.warn({ cmd: command.cmd, err: (err as Error).message }, "command failed");
      return failureFromError(
        signal?.aborted && !(err instanceof ServoError)
          ? new ServoError("cancelled", "cancelled", { status: "cancelled" })
          : err,
        uid,
      );
    }
  }

  private async measure(
    param: MeasureParam,
    progress: (p: number, m?: string) => void,
    signal: AbortSignal | undefined,
    uid: string | undefined,
  ): Promise<Record<string, unknown>> {
    if (!this.options.measurer)
      throw new ServoError("measure-failed", "no measure connector is configured (add a `measure` section)");
    const result = await this.options.measurer.measure(param, progress, signal);
    return measurementReply(result.metrics, result.annotations, uid);
  }

  private async adjust(
    param: AdjustParam,
    progress: (p: number, m?: string) => void,
    signal: AbortSignal | undefined,
    uid: string | undefined,
  ): Promise<Record<string, unknown>> {
    // A component this servo does not have is a mistake of the sender (a typo, or another
    // servo's app): it fails, rather than being skipped by every connector and answered "ok".
    const known = Object.keys((await this.describe(signal)).application.components);
    const unknown = Object.keys(param.state.application.components).filter((c) => !known.includes(c));
    if (unknown.length > 0) {
      throw new ServoError(
        "adjust-failed",
        `unknown component${unknown.length > 1 ? "s" : ""} ${unknown.map((c) => JSON.stringify(c)).join(", ")} in the adjustment; this servo has ${known.map((c) => JSON.stringify(c)).join(", ") || "no components"}`,
        { status: "failed" },
      );
    }
    const n = this.options.adjusters.length;
    const skips: string[] = [];
    for (const [i, connector] of this.options.adjusters.entries()) {
      const scaled = (p: number, m?: string): void => progress((100 * i + p) / n, m);
      const outcome = await connector.adjust(param, scaled, signal);
      this.log.info(
        { connector: connector.name, adjusted: outcome.adjusted, reason: outcome.reason },
        "adjust step done",
      );
      if (!outcome.adjusted) skips.push(`${connector.name}: ${outcome.reason}`);
    }
    const state = serializeDescriptor(await this.describe(signal));
    const reply = adjustmentReply(state as unknown as Record<string, unknown>, uid);
    if (skips.length === n && n > 0) reply.reason = skips.join("; ");
    else if (skips.length > 0) reply.message = `skipped: ${skips.join("; ")}`;
    return reply;
  }

  /**
   * run talks to the optimizer until `signal` aborts (then GOODBYE) or `until` says stop after a
   * command. Transport failures of the main loop are retried by the transport itself.
   */
  async run(signal: AbortSignal, until?: (last: Command) => boolean): Promise<ServoRunSummary> {
    const { transport } = this.options;
    const agent = this.options.agent ?? "kubewise";
    this.log.info({ optimizer: transport.target }, "servo starting");
    await transport.send("HELLO", helloParam(agent), { signal });
    let commands = 0;
    let reason = "stopped";
    try {
      while (!signal.aborted) {
        const command = parseCommand(await transport.send("WHATS_NEXT", null, { signal }));
        commands++;
        this.log.info({ cmd: command.cmd, uid: command.cmd_uid }, "command received");
        if (command.cmd === "SLEEP") {
          const seconds = Math.min(
            command.param.duration,
            this.options.maxSleepSeconds ?? Number.POSITIVE_INFINITY,
          );
          this.log.info({ seconds, reason: command.param.data?.reason }, "sleeping");
          await this.clock.sleep(seconds * 1000, signal).catch(() => undefined);
        } else {
          await this.runCommand(command, signal);
        }
        if (until?.(command)) {
          reason = "done";
          break;
        }
      }
    } catch (err) {
      if (!signal.aborted) throw err;
    } finally {
      const why = signal.aborted ? String((signal.reason as Error | undefined)?.message ?? "signal") : reason;
      await transport.send("GOODBYE", { reason: why }, { attempts: 3 }).catch((err: Error) => {
        this.log.warn({ err: err.message }, "GOODBYE not delivered");
      });
      this.log.info({ commands, reason: why }, "servo stopped");
    }
    return { commands, reason };
  }

  /** runCommand executes one command with progress posts and cancel, then posts its reply. */
  private async runCommand(command: Command, outer: AbortSignal): Promise<void> {
    const event = RESPONSE_EVENT[command.cmd as keyof typeof RESPONSE_EVENT] as ServoEvent;
    const controller = new AbortController();
    const onOuter = (): void => controller.abort(outer.reason);
    outer.addEventListener("abort", onOuter, { once: true });
    const started = this.clock.now();
    const interval = this.options.progressIntervalMs ?? 10_000;
    let lastPost = 0;
    let posting: Promise<void> = Promise.resolve();
    const postProgress = (percent: number, message?: string): void => {
      const now = this.clock.now();
      if (now - lastPost < interval) return;
      lastPost = now;
      const param = progressParam(percent, (now - started) / 1000, command.cmd_uid, message);
      posting = posting
        .then(() => this.options.transport.send(event, param, { attempts: 1 }))
        .then((reply) => {
          const r = parseOptimizerReply(reply);
          if (r.status === "cancel") {
            this.log.info({ cmd: command.cmd, reason: r.reason }, "optimizer cancelled the command");
            controller.abort(
              new ServoError("cancelled", `cancelled by the optimizer${r.reason ? `: ${r.reason}` : ""}`, {
                status: "cancelled",
              }),
            );
          }
        })
        .catch((err: Error) => this.log.debug({ err: err.message }, "progress not delivered"));
    };
    // A connector reports progress when it has news; a long wait (a rollout, a 130 s settlement)
    // has none. The heartbeat re-posts the last progress every interval, so the optimizer keeps
    // hearing from the command and can cancel it at any time.
    let last: { percent: number; message?: string } = { percent: 0 };
    const report = (percent: number, message?: string): void => {
      last = message === undefined ? { percent } : { percent, message };
      postProgress(percent, message);
    };
    const finished = new AbortController();
    const heartbeat = (async () => {
      const every = Math.max(interval, 1000);
      while (!finished.signal.aborted) {
        await this.clock.sleep(every, finished.signal).catch(() => undefined);
        if (!finished.signal.aborted) postProgress(last.percent, last.message);
      }
    })();
    try {
      const reply = await this.execute(command, controller.signal, report);
      finished.abort();
      await heartbeat;
      await posting;
      // Stopping (SIGTERM) cancels the command; its cancelled reply still goes out, with a few
      // tries like GOODBYE, so the optimizer learns the command ended rather than timing it out.
      await this.options.transport.send(event, reply, outer.aborted ? { attempts: 3 } : { signal: outer });
      this.log.info({ cmd: command.cmd, status: reply.status, reason: reply.reason }, "command done");
    } finally {
      finished.abort();
      outer.removeEventListener("abort", onOuter);
    }
  }
}
