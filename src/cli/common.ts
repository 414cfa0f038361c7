import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { InvalidArgumentError, type Command } from "commander";
import { readState } from "../cluster/index.js";
import { describeError, KubewiseError } from "../errors.js";
import { KubeClient } from "../kube/index.js";
import { createLogger, type Logger } from "../log.js";

/** GlobalFlags are the options every command inherits from the root program. */
export interface GlobalFlags {
  verbose: boolean;
  kubeconfig?: string;
  context?: string;
}

/** CommandContext is what a command's run function receives besides its own flags. */
export interface CommandContext {
  global: GlobalFlags;
  log: Logger;
  /** signal aborts when the user presses Ctrl-C or the process gets SIGTERM. */
  signal: AbortSignal;
}

/** repoRoot is the folder holding package.json (the installed package or the checkout). */
export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..").replace(
  /\/dist$/,
  "",
);

/**
 * prog is how the user runs kubewise, for the commands the CLI suggests: the checkout's wrapper
 * (`./kubewise`, which sets KUBEWISE_PROG) or the installed `kubewise`.
 */
export function prog(): string {
  const called = process.env.KUBEWISE_PROG;
  return called !== undefined && called.length > 0 ? called : "kubewise";
}

/**
 * readToken reads a bearer token: from `file` when given (a clear error naming `what` when it
 * cannot be read or is empty), else from OPTUNE_AUTH_TOKEN, else none.
 */
export function readToken(file: string | undefined, what = "--token-file"): string | undefined {
  if (file === undefined) return process.env.OPTUNE_AUTH_TOKEN;
  let token: string;
  try {
    token = readFileSync(file, "utf8").trim();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new KubewiseError("invalid-config", `${what} ${file}: the token file cannot be read (${code})`, {
      cause: err,
    });
  }
  if (token === "") throw new KubewiseError("invalid-config", `${what} ${file}: the token file is empty`);
  return token;
}

export function packageVersion(): string {
  for (const dir of [repoRoot, join(repoRoot, "..")]) {
    try {
      return (JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { version: string }).version;
    } catch {
      // try the next candidate
    }
  }
  return "0.0.0";
}

/**
 * action wraps a command's run function: it builds the context (logger, abort signal on
 * SIGINT/SIGTERM), prints a KubewiseError as its message alone (with causes under --verbose) and
 * sets a non-zero exit code, so no user ever sees a stack trace for a problem they can fix.
 */
export function action<F>(
  run: (ctx: CommandContext, flags: F, ...args: string[]) => Promise<void>,
): (...args: unknown[]) => Promise<void> {
  return async (...args: unknown[]) => {
    const cmd = args[args.length - 1] as Command;
    const flags = cmd.opts() as F;
    const positional = args.slice(0, -2).map(String);
    const global = cmd.optsWithGlobals() as GlobalFlags;
    const log = createLogger({ level: global.verbose ? "debug" : "info" });
    const controller = new AbortController();
    const onSignal = (sig: NodeJS.Signals): void => {
      if (controller.signal.aborted) process.exit(130);
      log.info({ signal: sig }, "stopping");
      controller.abort(new KubewiseError("cancelled", `interrupted by ${sig}`));
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
    try {
      await run({ global, log, signal: controller.signal }, flags, ...positional);
    } catch (err) {
      process.exitCode = err instanceof KubewiseError && err.reason === "cancelled" ? 130 : 1;
      const known = err instanceof KubewiseError;
      process.stderr.write(`error: ${describeError(err, global.verbose || !known)}\n`);
    } finally {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    }
  };
}

/** OptimizerFlags are the flags withOptimizerFlags adds. */
export interface OptimizerFlags {
  optimizer?: string;
  tokenFile?: string;
  /** maxSleep is in seconds, already checked. */
  maxSleep?: number;
}

/**
 * withOptimizerFlags adds the flags of a command that runs a servo loop: the remote optimizer,
 * its token file, and a cap on the SLEEPs it asks for (a number of seconds, checked).
 */
export function withOptimizerFlags(cmd: Command): Command {
  return cmd
    .option(
      "--optimizer <url>",
      "remote optimizer servo endpoint, e.g. https://host/accounts/ACCT/applications/APP/servo",
    )
    .option(
      "--token-file <file>",
      "file holding the bearer token for the optimizer (or set OPTUNE_AUTH_TOKEN)",
    )
    .option("--max-sleep <seconds>", "cap each SLEEP the optimizer asks for", (value: string) => {
      const seconds = Number(value);
      if (value.trim() === "" || !Number.isFinite(seconds) || seconds < 0) {
        throw new InvalidArgumentError(`must be a number of seconds >= 0, not "${value}"`);
      }
      return seconds;
    });
}

/** parseIntFlag is a commander argument parser for whole numbers with a clear error. */
export function parseIntFlag(name: string, min = 0): (value: string) => number {
  return (value: string) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) {
      throw new InvalidArgumentError(`--${name} takes a whole number >= ${min}`);
    }
    return n;
  };
}

/**
 * connect makes a Kubernetes client for a command: --kubeconfig, then $KUBECONFIG, then the
 * embedded local cluster when `kubewise cluster up` has one running in the default folder, then
 * ~/.kube/config, then the in-cluster service account.
 */
export function connect(global: GlobalFlags): KubeClient {
  let kubeconfig = global.kubeconfig;
  if (!kubeconfig && !process.env.KUBECONFIG) {
    const local = readState();
    if (local && existsSync(local.kubeconfig)) kubeconfig = local.kubeconfig;
  }
  return KubeClient.connect({ kubeconfig, context: global.context });
}
