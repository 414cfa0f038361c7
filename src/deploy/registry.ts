import { request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { request as httpsRequest } from "node:https";
import type { Readable } from "node:stream";
import { KubewiseError } from "../errors.js";

/**
 * A client for the Registry HTTP API v2 (the OCI distribution spec), just what pushing an image
 * needs: check a blob, upload a blob (POST to start an upload, then one PUT with the data and
 * its digest), put a manifest, get a manifest. No Docker daemon is involved. Authentication is
 * not supported: this is for the local registry an `image: AUTO` service uses.
 */

/**
 * RegistryReason: `unreachable` (no answer), `rejected` (the registry answered with an error),
 * `archive` (the image archive cannot be read as an image).
 */
export type RegistryReason = "unreachable" | "rejected" | "archive";

/** RegistryError is a failed push or registry call, with a message for humans. */
export class RegistryError extends KubewiseError {
  declare readonly reason: RegistryReason;

  constructor(reason: RegistryReason, message: string, options?: { cause?: unknown }) {
    super(reason, message, options);
  }
}

/** RegistryOptions say how to reach a registry. */
export interface RegistryOptions {
  /**
   * plainHttp talks HTTP instead of HTTPS. @default true for localhost, 127.0.0.0/8 and ::1
   * (how local registries run), false otherwise
   */
  plainHttp?: boolean;
  /** timeoutMs for each request to start answering. @default 30000 */
  timeoutMs?: number;
}

interface Response {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

const localHost = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\]|[^:]+\.localhost)(:\d+)?$/;

/** RegistryClient talks to one registry, e.g. "localhost:5000". */
export class RegistryClient {
  readonly host: string;
  private readonly base: URL;
  private readonly timeoutMs: number;

  constructor(host: string, options: RegistryOptions = {}) {
    this.host = host;
    const plain = options.plainHttp ?? localHost.test(host);
    this.base = new URL(`${plain ? "http" : "https"}://${host}/`);
    this.timeoutMs = options.timeoutMs ?? 30_000;
  }

  /** blobExists asks whether the repository already has a blob, so it need not be uploaded again. */
  async blobExists(repository: string, digest: string): Promise<boolean> {
    const res = await this.call("HEAD", `/v2/${repository}/blobs/${digest}`);
    if (res.status === 200) return true;
    if (res.status === 404) return false;
    throw this.rejected(`check blob ${digest} in ${repository}`, res);
  }

  /** uploadBlob uploads a blob in one PUT; the registry checks the data against the digest. */
  async uploadBlob(repository: string, digest: string, size: number, open: () => Readable): Promise<void> {
    const start = await this.call("POST", `/v2/${repository}/blobs/uploads/`);
    if (start.status !== 202) throw this.rejected(`start an upload to ${repository}`, start);
    const location = start.headers.location;
    if (!location) throw new RegistryError("rejected", `${this.host}: upload started without a Location`);
    const url = new URL(location, this.base);
    url.searchParams.set("digest", digest);
    const done = await this.call("PUT", url, {
      headers: { "content-type": "application/octet-stream", "content-length": String(size) },
      body: open(),
    });
    if (done.status !== 201) throw this.rejected(`upload blob ${digest} to ${repository}`, done);
  }

  /** putManifest stores a manifest under a tag or digest and returns the digest the registry computed. */
  async putManifest(repository: string, reference: string, mediaType: string, body: Buffer): Promise<string> {
    const res = await this.call("PUT", `/v2/${repository}/manifests/${reference}`, {
      headers: { "content-type": mediaType, "content-length": String(body.length) },
      body,
    });
    if (res.status !== 201) throw this.rejected(`put manifest ${reference} in ${repository}`, res);
    return String(res.headers["docker-content-digest"] ?? "");
  }

  /** getManifest fetches a manifest by tag or digest, accepting the given media types. */
  async getManifest(
    repository: string,
    reference: string,
    accept: readonly string[],
  ): Promise<{ mediaType: string; digest: string; body: Buffer }> {
    const res = await this.call("GET", `/v2/${repository}/manifests/${reference}`, {
      headers: { accept: accept.join(", ") },
    });
    if (res.status !== 200) throw this.rejected(`get manifest ${reference} from ${repository}`, res);
    return {
      mediaType: String(res.headers["content-type"] ?? ""),
      digest: String(res.headers["docker-content-digest"] ?? ""),
      body: res.body,
    };
  }

  private rejected(doing: string, res: Response): RegistryError {
    let detail = res.body.toString("utf8").trim();
    try {
      const parsed = JSON.parse(detail) as { errors?: { code?: string; message?: string }[] };
      if (parsed.errors?.length) detail = parsed.errors.map((e) => `${e.code}: ${e.message}`).join("; ");
    } catch {
      // not JSON: keep the text as it is
    }
    return new RegistryError(
      "rejected",
      `${this.host}: ${doing}: HTTP ${res.status}${detail ? ` (${detail.slice(0, 300)})` : ""}`,
    );
  }

  private call(
    method: string,
    target: string | URL,
    options: { headers?: Record<string, string>; body?: Buffer | Readable } = {},
  ): Promise<Response> {
    const url = typeof target === "string" ? new URL(target, this.base) : target;
    const request = url.protocol === "https:" ? httpsRequest : httpRequest;
    return new Promise<Response>((resolve, reject) => {
      const fail = (err: Error): void =>
        reject(
          new RegistryError("unreachable", `registry ${this.host} did not answer (${err.message})`, {
            cause: err,
          }),
        );
      const req = request(url, { method, headers: options.headers, timeout: this.timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
        res.on("error", fail);
      });
      req.on("timeout", () => req.destroy(new Error(`no answer in ${this.timeoutMs} ms`)));
      req.on("error", fail);
      const body = options.body;
      if (body === undefined) req.end();
      else if (Buffer.isBuffer(body)) req.end(body);
      else {
        body.on("error", (err) => req.destroy(err));
        body.pipe(req);
      }
    });
  }
}
