/**
 * Transports carry the servo's events to an optimizer and bring back its replies: over HTTP to a
 * remote optimizer (the Opsani protocol: POST {event, param} with a bearer token), or in-process
 * to the local optimizer, with the same message shapes.
 */
import type { Logger } from "../log.js";
import { silentLogger } from "../log.js";
import { ServoError, eventRequest, type ServoEvent } from "./protocol.js";

/** OptimizerTransport sends one event and returns the optimizer's reply body. */
export interface OptimizerTransport {
  /** target says where events go, for logs (never with the token). */
  readonly target: string;
  /**
   * send posts `{event, param}`. Transient failures (network, 5xx, 404, a body that is not JSON)
   * are retried with backoff up to `attempts` (default: forever for the main loop); a 4xx is
   * fatal. Aborting `signal` stops the retries.
   */
  send(
    event: ServoEvent,
    param: unknown,
    options?: { attempts?: number; signal?: AbortSignal },
  ): Promise<unknown>;
}

/** InProcessTransport talks to an optimizer object in this process (the local optimizer). */
export class InProcessTransport implements OptimizerTransport {
  readonly target = "local optimizer (in-process)";
  constructor(private readonly optimizer: { post(event: ServoEvent, param: unknown): Promise<unknown> }) {}

  send(event: ServoEvent, param: unknown): Promise<unknown> {
    // A JSON round trip keeps the in-process path honest: only what would cross the wire crosses.
    return this.optimizer.post(event, JSON.parse(JSON.stringify(param ?? null)) as unknown);
  }
}

export interface HttpTransportOptions {
  /** url is the servo endpoint, e.g. https://api.opsani.com/accounts/ACCT/applications/APP/servo */
  url: string;
  /** token is sent as `Authorization: Bearer <token>`; never logged. */
  token?: string;
  agent?: string;
  log?: Logger;
  /** backoff from initialMs doubling to maxMs. @default 1 s .. 60 s */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** timeoutMs per request. @default 60 s */
  timeoutMs?: number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** optimizerUrl builds the Opsani servo endpoint from a base URL, account and application. */
export function optimizerUrl(base: string, account: string, app: string): string {
  const root = base.replace(/\/+$/, "");
  return `${root}/accounts/${encodeURIComponent(account)}/applications/${encodeURIComponent(app)}/servo`;
}

/** HttpTransport posts events to a remote optimizer. */
export class HttpTransport implements OptimizerTransport {
  readonly target: string;
  private readonly log: Logger;
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;

  constructor(private readonly options: HttpTransportOptions) {
    let url: URL;
    try {
      url = new URL(options.url);
    } catch {
      throw new ServoError(
        "invalid-config",
        `optimizer URL "${options.url}" is not a URL (expected http(s)://host/.../servo)`,
      );
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new ServoError("invalid-config", `optimizer URL "${options.url}" must be http or https`);
    }
    this.target = `${url.origin}${url.pathname}`;
    this.log = (options.log ?? silentLogger).child({ optimizer: this.target });
    this.sleep =
      options.sleep ??
      ((ms, signal) =>
        new Promise<void>((resolve, reject) => {
          const t = setTimeout(resolve, ms);
          signal?.addEventListener("abort", () => (clearTimeout(t), reject(signal.reason as Error)), {
            once: true,
          });
        }));
  }

  async send(
    event: ServoEvent,
    param: unknown,
    options: { attempts?: number; signal?: AbortSignal } = {},
  ): Promise<unknown> {
    const attempts = options.attempts ?? Number.POSITIVE_INFINITY;
    let delay = this.options.initialBackoffMs ?? 1000;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.once(event, param, options.signal);
      } catch (err) {
        const fatal = err instanceof ServoError && err.reason === "optimizer-rejected";
        if (fatal || attempt >= attempts || options.signal?.aborted) throw err;
        this.log.warn(
          { event, attempt, retryInMs: delay, err: (err as Error).message },
          "optimizer request failed, retrying",
        );
        await this.sleep(delay, options.signal);
        delay = Math.min(delay * 2, this.options.maxBackoffMs ?? 60_000);
      }
    }
  }

  private async once(event: ServoEvent, param: unknown, signal?: AbortSignal): Promise<unknown> {
    const headers: Record<string, string> = {
      "Content-Type": "application/json",
      "User-Agent": this.options.agent ?? "kubewise",
    };
    if (this.options.token) {
      headers.Authorization = this.options.token.startsWith("Bearer ")
        ? this.options.token
        : `Bearer ${this.options.token}`;
    }
    const timeout = AbortSignal.timeout(this.options.timeoutMs ?? 60_000);
    const response = await fetch(this.options.url, {
      method: "POST",
      headers,
      body: JSON.stringify(eventRequest(event, param)),
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
    }).catch((err: Error) => {
      throw new ServoError(
        "optimizer-unreachable",
        `cannot reach the optimizer at ${this.target}: ${err.cause instanceof Error ? err.cause.message : err.message}`,
      );
    });
    const text = await response.text();
    if (
      response.status >= 400 &&
      response.status < 500 &&
      response.status !== 404 &&
      response.status !== 408 &&
      response.status !== 429
    ) {
      throw new ServoError(
        "optimizer-rejected",
        `the optimizer at ${this.target} refused ${event} with HTTP ${response.status}: ${text.slice(0, 300)}`,
      );
    }
    if (!response.ok) {
      throw new ServoError(
        "optimizer-unavailable",
        `the optimizer at ${this.target} answered HTTP ${response.status}`,
      );
    }
    try {
      return text.trim() === "" ? {} : (JSON.parse(text) as unknown);
    } catch {
      throw new ServoError(
        "optimizer-unavailable",
        `the optimizer at ${this.target} answered with a body that is not JSON`,
      );
    }
  }
}
