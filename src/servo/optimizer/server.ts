/**
 * The local optimizer over HTTP, as the Opsani backend exposes it: `POST
 * /accounts/{account}/applications/{app}/servo` with a JSON `{event, param}` body and, when a
 * token is configured, `Authorization: Bearer <token>`. Each account/app pair gets its own
 * LocalOptimizer from the factory (in practice: its own study).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { closeServer, listen } from "../../http.js";
import { timingSafeEqual } from "node:crypto";
import type { Logger } from "../../log.js";
import { silentLogger } from "../../log.js";
import { eventRequestSchema, optimizerReply } from "../protocol.js";
import type { LocalOptimizer } from "./optimizer.js";

/** MAX_BODY_BYTES bounds a request body; the old servo capped driver messages at 2 MiB. */
export const MAX_BODY_BYTES = 8 * 1024 * 1024;

/** OptimizerServerOptions configure startOptimizerServer. */
export interface OptimizerServerOptions {
  /** optimizerFor returns the optimizer serving an account/app (called once per pair, then cached). */
  optimizerFor: (account: string, app: string) => LocalOptimizer;
  /** host to listen on. @default "127.0.0.1" */
  host?: string;
  /** port to listen on; 0 picks a free one. @default 0 */
  port?: number;
  /** token, when set, is required as `Authorization: Bearer <token>`. */
  token?: string;
  log?: Logger;
}

/** OptimizerServer is a running server. */
export interface OptimizerServer {
  /** url is the base URL, e.g. http://127.0.0.1:8080 */
  readonly url: string;
  /** servoUrl is the servo endpoint of an account/app on this server. */
  servoUrl(account: string, app: string): string;
  close(): Promise<void>;
}

const PATH = /^\/accounts\/([^/]+)\/applications\/([^/]+)\/servo\/?$/;

/** startOptimizerServer listens and resolves once the port is bound. */
export async function startOptimizerServer(options: OptimizerServerOptions): Promise<OptimizerServer> {
  const log = options.log ?? silentLogger;
  const optimizers = new Map<string, LocalOptimizer>();
  const server: Server = createServer((req, res) => {
    handleRequest(req, res, options, optimizers).catch((err: unknown) => {
      log.error({ err }, "request failed");
      send(res, 500, optimizerReply("invalid", "internal-error", (err as Error).message));
    });
  });
  const address = await listen(server, { host: options.host ?? "127.0.0.1", port: options.port ?? 0 });
  const host = address.host.includes(":") ? `[${address.host}]` : address.host;
  const url = `http://${host}:${address.port}`;
  log.info({ url }, "optimizer listening");
  return {
    url,
    servoUrl: (account, app) =>
      `${url}/accounts/${encodeURIComponent(account)}/applications/${encodeURIComponent(app)}/servo`,
    close: () => closeServer(server),
  };
}

async function handleRequest(
  req: IncomingMessage,
  res: ServerResponse,
  options: OptimizerServerOptions,
  optimizers: Map<string, LocalOptimizer>,
): Promise<void> {
  const match = PATH.exec(new URL(req.url ?? "/", "http://localhost").pathname);
  if (!match)
    return send(res, 404, { detail: "not found: POST /accounts/{account}/applications/{app}/servo" });
  if (req.method !== "POST") return send(res, 405, { detail: "method not allowed: use POST" });
  if (options.token !== undefined && !authorized(req.headers.authorization, options.token)) {
    return send(res, 401, { detail: "missing or wrong bearer token" });
  }
  let body: unknown;
  try {
    body = JSON.parse(await readBody(req));
  } catch (err) {
    return send(
      res,
      400,
      optimizerReply("invalid", "invalid-message", `request body is not JSON: ${(err as Error).message}`),
    );
  }
  if (!eventRequestSchema.safeParse(body).success) {
    return send(
      res,
      400,
      optimizerReply("invalid", "invalid-message", "body must be {event, param} with a servo event"),
    );
  }
  const account = decodeURIComponent(match[1] ?? "");
  const app = decodeURIComponent(match[2] ?? "");
  const key = `${account}/${app}`;
  let optimizer = optimizers.get(key);
  if (!optimizer) {
    optimizer = options.optimizerFor(account, app);
    optimizers.set(key, optimizer);
  }
  send(res, 200, optimizer.handle(body));
}

/** authorized compares the bearer token in constant time; `Bearer` is optional, as servox allows. */
function authorized(header: string | undefined, token: string): boolean {
  if (header === undefined) return false;
  const given = Buffer.from(header.replace(/^Bearer\s+/i, ""));
  const want = Buffer.from(token);
  return given.length === want.length && timingSafeEqual(given, want);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new Error(`body larger than ${MAX_BODY_BYTES} bytes`));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

function send(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}
