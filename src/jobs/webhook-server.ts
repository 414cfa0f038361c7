/**
 * The admission webhook's HTTPS server: `POST /mutate` answers AdmissionReviews with
 * mutation.ts, `GET /healthz` answers probes. A pod gets the settings of its app id in its own
 * namespace, the namespace of the review (see settings.ts). It is built to fail open, like the
 * MutatingWebhookConfiguration's `failurePolicy: Ignore`: if the settings cannot be looked up in
 * time, the pod is allowed unchanged with a warning, never held up or denied.
 */
import { createServer, type Server } from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import { closeServer, listen } from "../http.js";
import type { Logger } from "../log.js";
import { silentLogger } from "../log.js";
import type { AppIdPath } from "./appid.js";
import {
  admissionResponse,
  parseAdmissionReview,
  reviewedJobAppId,
  type AdmissionReview,
} from "./mutation.js";
import type { SettingsSource, TunedSettings } from "./settings.js";

/** MAX_REVIEW_BYTES bounds a request body; a pod's AdmissionReview is far smaller. */
export const MAX_REVIEW_BYTES = 4 * 1024 * 1024;

/** WebhookServerOptions configure a WebhookServer. */
export interface WebhookServerOptions {
  /** host to listen on. @default "127.0.0.1" */
  host?: string;
  /** port to listen on; 0 picks a free one. @default 8443 */
  port?: number;
  /** certPem and keyPem are the serving certificate and its private key. */
  certPem: string;
  keyPem: string;
  appIdPath: AppIdPath;
  settings: SettingsSource;
  /** settingsTimeoutMs bounds the settings lookup, well inside the API server's webhook timeout. @default 2000 */
  settingsTimeoutMs?: number;
  /**
   * reportFinalizer adds REPORT_FINALIZER to every job pod, so that `jobs watch` reports pods
   * deleted while it was down. Only with a watcher running: it is what releases the pods.
   * @default false
   */
  reportFinalizer?: boolean;
  log?: Logger;
}

/** WebhookServer serves the mutating admission webhook; start() and stop() bound its life. */
export class WebhookServer {
  private readonly options: WebhookServerOptions;
  private readonly log: Logger;
  private readonly server: Server;

  constructor(options: WebhookServerOptions) {
    this.options = options;
    this.log = options.log ?? silentLogger;
    this.server = createServer(
      { cert: options.certPem, key: options.keyPem, minVersion: "TLSv1.2" },
      (req, res) => {
        this.handle(req, res).catch((err: unknown) => {
          this.log.error({ err }, "webhook request failed");
          if (!res.headersSent) send(res, 500, { error: "internal error" });
        });
      },
    );
  }

  /** start listens and resolves with the bound port. */
  async start(): Promise<number> {
    const { host = "127.0.0.1", port = 8443 } = this.options;
    const bound = (await listen(this.server, { host, port })).port;
    this.log.info({ host, port: bound }, "admission webhook listening");
    return bound;
  }

  /** stop stops accepting connections and resolves when open ones have closed. */
  async stop(): Promise<void> {
    await closeServer(this.server, { graceful: true });
  }

  /** setCertificate swaps the serving certificate for new connections (rotation without restart). */
  setCertificate(certPem: string, keyPem: string): void {
    this.server.setSecureContext({ cert: certPem, key: keyPem, minVersion: "TLSv1.2" });
    this.log.info("serving certificate reloaded");
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? "/", "https://webhook").pathname;
    if (path === "/healthz" && req.method === "GET") return send(res, 200, { status: "ok" });
    if (path !== "/mutate") return send(res, 404, { error: `no such path ${path}` });
    if (req.method !== "POST") return send(res, 405, { error: "use POST" });
    const body = await readBody(req);
    if (body === undefined) return send(res, 413, { error: `body larger than ${MAX_REVIEW_BYTES} bytes` });
    let json: unknown;
    try {
      json = JSON.parse(body);
    } catch {
      return send(res, 400, { error: "body is not JSON" });
    }
    const parsed = parseAdmissionReview(json);
    if ("problem" in parsed) return send(res, 400, { error: parsed.problem });
    return send(res, 200, await this.review(parsed.review));
  }

  private async review(review: AdmissionReview): Promise<object> {
    const path = this.options.appIdPath;
    const finalizer = { reportFinalizer: this.options.reportFinalizer === true };
    const appId = reviewedJobAppId(review, path);
    if (appId === undefined) return admissionResponse(review, path, undefined);
    const namespace = reviewedNamespace(review);
    if (namespace === undefined) {
      // The API server always names the namespace of a pod CREATE; without one there is no
      // namespace whose settings apply.
      this.log.warn({ app_id: appId }, "review names no namespace; pod admitted without settings");
      return admissionResponse(review, path, undefined, finalizer);
    }
    let settings: TunedSettings | undefined;
    try {
      settings = await withTimeout(
        this.options.settings.settingsFor(namespace, appId),
        this.options.settingsTimeoutMs ?? 2000,
      );
    } catch (err) {
      this.log.warn(
        { app_id: appId, namespace, err },
        "tuned settings unavailable; pod admitted without them",
      );
      const out = admissionResponse(review, path, undefined, finalizer);
      out.response.warnings = ["kubewise: tuned settings unavailable; pod admitted without them"];
      return out;
    }
    const out = admissionResponse(review, path, settings, finalizer);
    const applied = out.response.patch !== undefined;
    this.log.info({ app_id: appId, namespace, applied, version: settings?.version }, "job pod admitted");
    return out;
  }
}

// reviewedNamespace is the namespace the pod is created in: the request's, else the pod's own.
function reviewedNamespace(review: AdmissionReview): string | undefined {
  const { namespace, object } = review.request;
  if (namespace !== undefined && namespace !== "") return namespace;
  const own = (object as { metadata?: { namespace?: unknown } } | undefined)?.metadata?.namespace;
  return typeof own === "string" && own !== "" ? own : undefined;
}

function send(res: ServerResponse, status: number, body: object): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

// readBody returns the body as text, or undefined when it exceeds MAX_REVIEW_BYTES.
async function readBody(req: IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > MAX_REVIEW_BYTES) return undefined;
    chunks.push(buf);
  }
  return Buffer.concat(chunks).toString("utf8");
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
