/**
 * Logging: pino, JSON lines by default, human-readable when stderr is a terminal. Messages are
 * constant sentences; variable data goes in lower-case fields (`log.info({ pod }, "pod is ready")`).
 * Tokens and Secret data are never logged: the `redact` list below is a safety net, not a licence.
 */
import { pino, type Logger, type LevelWithSilent } from "pino";

export type { Logger };

export interface LogOptions {
  /** level: "info" by default; "debug" with --verbose; "silent" in unit tests. */
  level?: LevelWithSilent;
  /** pretty forces the human format on or off; by default it follows whether stderr is a TTY. */
  pretty?: boolean;
}

const redact = ["token", "authToken", "auth_token", "authorization", "headers.authorization", "*.token"];

export function createLogger(options: LogOptions = {}): Logger {
  const level = options.level ?? (process.env.KUBEWISE_LOG_LEVEL as LevelWithSilent | undefined) ?? "info";
  const pretty = options.pretty ?? process.stderr.isTTY === true;
  if (pretty) {
    return pino({
      level,
      redact,
      transport: {
        target: "pino-pretty",
        options: { destination: 2, colorize: true, ignore: "pid,hostname" },
      },
    });
  }
  return pino({ level, redact, base: undefined }, pino.destination(2));
}

/** silentLogger is for tests and library callers that do not want output. */
export const silentLogger: Logger = pino({ level: "silent" });
