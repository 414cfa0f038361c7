import { ApiException } from "@kubernetes/client-node";
import { KubewiseError } from "../errors.js";
import type { PodProblemReason } from "./pods.js";

/**
 * KubeReason is the small vocabulary every caller branches on instead of HTTP status codes;
 * nothing outside src/kube reads a status code.
 */
export type KubeReason =
  | "NotFound"
  | "AlreadyExists"
  | "Conflict"
  | "Gone"
  | "Forbidden"
  | "Unauthorized"
  | "Invalid"
  | "Timeout"
  | "Unavailable"
  | "Unknown";

/** KubeError is an API-server failure, or a wait that ran out, with a message for humans. */
export class KubeError extends KubewiseError {
  declare readonly reason: KubeReason;
  /** status is the API server's Status object, when it sent one. */
  readonly status: { message?: string; reason?: string; code?: number } | undefined;
  /** podProblem is set when a wait failed because a pod showed a problem (see podProblem). */
  readonly podProblem: PodProblemReason | undefined;

  constructor(
    reason: KubeReason,
    message: string,
    options?: { cause?: unknown; status?: KubeStatus; podProblem?: PodProblemReason },
  ) {
    super(reason, message, options);
    this.status = options?.status;
    this.podProblem = options?.podProblem;
  }
}

interface KubeStatus {
  message?: string;
  reason?: string;
  code?: number;
}

const byCode: Record<number, KubeReason> = {
  401: "Unauthorized",
  403: "Forbidden",
  404: "NotFound",
  410: "Gone",
  422: "Invalid",
  500: "Unknown",
  503: "Unavailable",
  504: "Timeout",
};

/**
 * toKubeError turns whatever the client threw into a KubeError. `doing` says what we were doing,
 * e.g. `get deployment app2/web-main`, and starts the message.
 */
export function toKubeError(err: unknown, doing: string): KubeError {
  if (err instanceof KubeError) return err;
  if (err instanceof ApiException) {
    const status = parseStatus(err.body);
    let reason: KubeReason = byCode[err.code] ?? "Unknown";
    if (err.code === 409) reason = status?.reason === "AlreadyExists" ? "AlreadyExists" : "Conflict";
    const detail = status?.message ?? (typeof err.body === "string" ? err.body : `HTTP ${err.code}`);
    return new KubeError(reason, `${doing}: ${detail}`, { cause: err, status });
  }
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === "ECONNREFUSED" || code === "ECONNRESET" || code === "ENOTFOUND" || code === "EPIPE") {
    return new KubeError("Unavailable", `${doing}: API server unreachable (${code})`, { cause: err });
  }
  const message = err instanceof Error ? err.message : String(err);
  if (/ECONNREFUSED|ECONNRESET|socket hang up|fetch failed/.test(message)) {
    return new KubeError("Unavailable", `${doing}: API server unreachable (${message})`, { cause: err });
  }
  return new KubeError("Unknown", `${doing}: ${message}`, { cause: err });
}

function parseStatus(body: unknown): KubeStatus | undefined {
  let value = body;
  if (typeof value === "string") {
    try {
      value = JSON.parse(value);
    } catch {
      return undefined;
    }
  }
  if (
    value &&
    typeof value === "object" &&
    "kind" in value &&
    (value as { kind: unknown }).kind === "Status"
  ) {
    return value as KubeStatus;
  }
  return undefined;
}

/** isReason tells whether err is a KubeError (or API exception) with the given reason. */
export function isReason(err: unknown, reason: KubeReason): boolean {
  return toKubeError(err, "").reason === reason;
}

export const isNotFound = (err: unknown): boolean => isReason(err, "NotFound");

/** ignoreNotFound resolves to undefined when the call fails with NotFound, rethrows otherwise. */
export async function ignoreNotFound<T>(call: Promise<T>): Promise<T | undefined> {
  try {
    return await call;
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}
