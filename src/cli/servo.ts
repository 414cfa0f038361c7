import { readFileSync } from "node:fs";
import { Command } from "commander";
import {
  HttpTransport,
  InProcessTransport,
  LocalOptimizer,
  Servo,
  ServoError,
  TrialStore,
  assembleServo,
  loadServoConfig,
  optimizerConfigSchema,
  parseCommand,
  servoPodFromEnv,
  type OptimizerTransport,
  type ServoConfig,
  type Command as ServoCommand,
} from "../servo/index.js";
import {
  action,
  connect,
  packageVersion,
  readToken,
  withOptimizerFlags,
  type CommandContext,
  type OptimizerFlags,
} from "./common.js";

interface ConfigFlags {
  config: string;
}

interface ParamFlags extends ConfigFlags {
  file?: string;
}

interface RunFlags extends ConfigFlags, OptimizerFlags {}

/** servoCommand is `kubewise servo`: tune a workload through the servo protocol. */
export function servoCommand(): Command {
  const servo = new Command("servo")
    .summary("tune a Deployment and its tuning pod (Opsani servo protocol)")
    .description(
      "tune cpu, memory, replicas and env of a Deployment and its tuning pod through the Opsani servo " +
        "protocol, against a remote optimizer or the local one (seed: servo-k8s + servo-k8slive)",
    );
  const withConfig = (cmd: Command): Command =>
    cmd.requiredOption(
      "-c, --config <file>",
      "servo configuration (k8s, k8slive, measure, optimizer sections)",
    );

  withOptimizerFlags(withConfig(servo.command("run")))
    .description(
      "run the servo loop: HELLO, then WHATS_NEXT -> DESCRIBE/MEASURE/ADJUST/SLEEP until stopped (GOODBYE on " +
        "SIGINT/SIGTERM). With no --optimizer (nor a remote section) it runs the local optimizer in-process until its study ends.",
    )
    .action(action(runServo));

  withConfig(servo.command("describe"))
    .description("print the DESCRIPTION reply (current settings and metrics) as JSON")
    .action(action(runDescribe));

  withConfig(servo.command("adjust"))
    .description(
      'apply an ADJUST param ({"state": {"application": ...}, "control": {...}}) from a file or stdin ' +
        "and print the ADJUSTMENT reply as JSON; exits 1 when the adjust failed or was rejected, " +
        "130 when it was interrupted",
    )
    .option("-f, --file <file>", "read the param from this file (default: stdin)")
    .action(action(runAdjust));

  withConfig(servo.command("measure"))
    .description(
      'run a MEASURE param ({"metrics": [...], "control": {...}}) and print the MEASUREMENT reply; ' +
        "exits 1 on failure, 130 when interrupted",
    )
    .option("-f, --file <file>", "read the param from this file (default: stdin)")
    .action(action(runMeasure));
  return servo;
}

/** oneShot builds a servo for describe/adjust/measure, which run one command and talk to no optimizer. */
function oneShot(ctx: CommandContext, file: string): Servo {
  const config: ServoConfig = loadServoConfig(file);
  const parts = assembleServo(config, {
    client: connect(ctx.global),
    log: ctx.log,
    servoPod: servoPodFromEnv(),
  });
  return new Servo({ ...parts, log: ctx.log, transport: noOptimizer, agent: `kubewise/${packageVersion()}` });
}

const noOptimizer: OptimizerTransport = {
  target: "none",
  send: () => Promise.reject(new ServoError("invalid-config", "a one-shot command talks to no optimizer")),
};

function readParam(file: string | undefined): unknown {
  const text = readFileSync(file && file !== "-" ? file : 0, "utf8");
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new ServoError("invalid-message", `${file ?? "stdin"}: not JSON (${(err as Error).message})`);
  }
}

/** commandFrom reads a one-shot command's param from `file` (or stdin); errors name the file. */
function commandFrom(cmd: "ADJUST" | "MEASURE", file: string | undefined): ServoCommand {
  const param = readParam(file);
  try {
    return parseCommand({ cmd, param });
  } catch (err) {
    if (!(err instanceof ServoError)) throw err;
    throw new ServoError(
      err.reason,
      `${file && file !== "-" ? file : "stdin"}: invalid ${cmd} ${err.message.replace(/^invalid command: /, "")}`,
    );
  }
}

async function runDescribe(ctx: CommandContext, flags: ConfigFlags): Promise<void> {
  const servo = oneShot(ctx, flags.config);
  const reply = await servo.execute(parseCommand({ cmd: "DESCRIBE", param: {} }), ctx.signal);
  print(reply);
}

async function runAdjust(ctx: CommandContext, flags: ParamFlags): Promise<void> {
  const command = commandFrom("ADJUST", flags.file);
  const servo = oneShot(ctx, flags.config);
  print(
    await servo.execute(command, ctx.signal, (p, m) =>
      ctx.log.info({ progress: Math.round(p) }, m ?? "adjusting"),
    ),
  );
}

async function runMeasure(ctx: CommandContext, flags: ParamFlags): Promise<void> {
  const command = commandFrom("MEASURE", flags.file);
  const servo = oneShot(ctx, flags.config);
  print(
    await servo.execute(command, ctx.signal, (p, m) =>
      ctx.log.info({ progress: Math.round(p) }, m ?? "measuring"),
    ),
  );
}

function print(reply: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(reply, null, 2)}\n`);
  // 130 for a cancelled command (Ctrl-C, SIGTERM), as a shell reports an interrupted one.
  if (reply.status === "cancelled") process.exitCode = 130;
  else if (reply.status !== undefined && reply.status !== "ok") process.exitCode = 1;
}

async function runServo(ctx: CommandContext, flags: RunFlags): Promise<void> {
  const config = loadServoConfig(flags.config);
  const parts = assembleServo(config, {
    client: connect(ctx.global),
    log: ctx.log,
    servoPod: servoPodFromEnv(),
  });
  const agent = `kubewise/${packageVersion()}`;
  const maxSleepSeconds = flags.maxSleep;
  // The remote optimizer: --optimizer, else the config's remote section; else the local one.
  const remoteUrl = flags.optimizer ?? config.remote?.url;
  if (remoteUrl !== undefined) {
    const token =
      flags.tokenFile !== undefined
        ? readToken(flags.tokenFile)
        : readToken(config.remote?.tokenFile, `${flags.config}: remote.token_file`);
    const transport = new HttpTransport({ url: remoteUrl, token, agent, log: ctx.log });
    const servo = new Servo({ ...parts, transport, log: ctx.log, agent, maxSleepSeconds });
    await servo.run(ctx.signal);
    return;
  }
  if (!config.optimizer) {
    throw new ServoError(
      "invalid-config",
      `${flags.config}: no --optimizer URL, no remote section and no optimizer section: add an optimizer section (objective, max_trials, ...) to run the local optimizer, or a remote section (url, token_file) for a remote one`,
    );
  }
  const optimizerConfig = optimizerConfigSchema.parse(config.optimizer);
  const store = TrialStore.open(optimizerConfig.db);
  try {
    const optimizer = new LocalOptimizer({ config: optimizerConfig, store, log: ctx.log });
    const servo = new Servo({
      ...parts,
      transport: new InProcessTransport(optimizer),
      log: ctx.log,
      agent,
      maxSleepSeconds,
    });
    await servo.run(ctx.signal, (last) => last.cmd === "SLEEP" && optimizer.summary().done !== undefined);
    const summary = optimizer.summary();
    process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  } finally {
    store.close();
  }
}
