import { readFileSync, statSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { request as httpsRequest, type RequestOptions } from "node:https";
import type { V1Pod } from "@kubernetes/client-node";
import { AgentError } from "./errors.js";

/**
 * Pod sources: where the agent learns the pods of its node. The API-server source (field
 * selector spec.nodeName) is built on src/kube and plugged in by the caller; the kubelet source
 * asks the kubelet's own /pods endpoint, which needs no API server at all.
 */

/** PodSource lists the pods of this node. A failure throws AgentError("pod-source"). */
export interface PodSource {
  /** name is for logs and the agent_info metric: "apiserver" or "kubelet". */
  readonly name: string;
  listPods(): Promise<V1Pod[]>;
}

/** KubeletSourceOptions say how to reach the kubelet. */
export interface KubeletSourceOptions {
  /** endpoint is the kubelet's base URL. @default "https://127.0.0.1:10250" */
  endpoint: string;
  /** serverVerify: true verifies against the system CAs, a path against that CA bundle, false not at all. */
  serverVerify: boolean | string;
  clientCertPath?: string;
  clientKeyPath?: string;
  /** serverName is the name to expect in the kubelet's certificate, when not the endpoint's host. */
  serverName?: string;
  /** tokenPath, when set, is read on every request (tokens rotate) and sent as a bearer token. */
  tokenPath?: string;
  timeoutMs: number;
}

/**
 * KubeletPodSource lists pods with GET {endpoint}/pods. The kubelet returns every pod of the
 * node; the runner keeps the monitored namespaces. Files (certificates, key, token) are read on
 * each request, so rotated credentials are picked up without a restart.
 */
export class KubeletPodSource implements PodSource {
  readonly name = "kubelet";
  private readonly options: KubeletSourceOptions;
  private readonly url: URL;

  /**
   * The constructor checks every credential file once, so a wrong path stops the agent at start
   * with the field named, instead of failing every iteration; requests still read them anew.
   * @throws AgentError("config") naming each unreadable file's agent.yaml field, path and problem.
   */
  constructor(options: KubeletSourceOptions) {
    this.options = options;
    this.url = new URL("pods", options.endpoint.endsWith("/") ? options.endpoint : `${options.endpoint}/`);
    const problems = this.credentials().flatMap(({ field, file }) => {
      const problem = credentialProblem(file);
      return problem === undefined ? [] : [`${field} ${JSON.stringify(file)}: ${problem}`];
    });
    if (problems.length > 0) {
      throw new AgentError("config", `cannot use the kubelet credentials: ${problems.join("; ")}`);
    }
  }

  /** credentials are the files this source reads, with the agent.yaml field each comes from. */
  private credentials(): { field: CredentialField; file: string }[] {
    const o = this.options;
    const https = this.url.protocol === "https:";
    const out: { field: CredentialField; file: string }[] = [];
    if (o.tokenPath) out.push({ field: "kubelet_token_path", file: o.tokenPath });
    if (https && typeof o.serverVerify === "string")
      out.push({ field: "ssl.server_verify", file: o.serverVerify });
    if (https && o.clientCertPath) out.push({ field: "ssl.client_cert_path", file: o.clientCertPath });
    if (https && o.clientKeyPath) out.push({ field: "ssl.client_key_path", file: o.clientKeyPath });
    return out;
  }

  async listPods(): Promise<V1Pod[]> {
    const body = await this.get();
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch (err) {
      throw new AgentError(
        "pod-source",
        `kubelet ${this.url.href} answered with something that is not JSON`,
        { cause: err },
      );
    }
    const items = (parsed as { items?: unknown } | null)?.items;
    if (!Array.isArray(items)) {
      throw new AgentError(
        "pod-source",
        `kubelet ${this.url.href} answered JSON without a pod list (no "items")`,
      );
    }
    return items as V1Pod[];
  }

  private requestOptions(): RequestOptions {
    const o = this.options;
    const headers: Record<string, string> = { accept: "application/json" };
    if (o.tokenPath) {
      headers.authorization = `Bearer ${readCredential("kubelet_token_path", o.tokenPath).toString("utf8").trim()}`;
    }
    const options: RequestOptions = { method: "GET", headers, timeout: o.timeoutMs };
    if (this.url.protocol === "https:") {
      options.rejectUnauthorized = o.serverVerify !== false;
      if (typeof o.serverVerify === "string")
        options.ca = readCredential("ssl.server_verify", o.serverVerify);
      if (o.clientCertPath) options.cert = readCredential("ssl.client_cert_path", o.clientCertPath);
      if (o.clientKeyPath) options.key = readCredential("ssl.client_key_path", o.clientKeyPath);
      if (o.serverName) options.servername = o.serverName;
      // The agent polls every few seconds; a fresh TLS session per poll is cheap and keeps
      // rotated client certificates effective at once.
      options.agent = false;
    }
    return options;
  }

  private get(): Promise<string> {
    const where = this.url.href;
    const options = this.requestOptions();
    const send = this.url.protocol === "https:" ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = send(this.url, options, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", (err) =>
          reject(
            new AgentError("pod-source", `reading pods from kubelet ${where}: ${err.message}`, {
              cause: err,
            }),
          ),
        );
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          if (res.statusCode === 200) return resolve(text);
          const hint =
            res.statusCode === 401 || res.statusCode === 403
              ? " (check the client certificate or token and its RBAC for nodes/proxy)"
              : "";
          reject(
            new AgentError(
              "pod-source",
              `kubelet ${where} answered HTTP ${res.statusCode}${hint}: ${text.slice(0, 200)}`,
            ),
          );
        });
      });
      req.on("timeout", () => req.destroy(new Error(`no answer within ${options.timeout} ms`)));
      req.on("error", (err) =>
        reject(
          new AgentError("pod-source", `cannot list pods from kubelet ${where}: ${describeTlsError(err)}`, {
            cause: err,
          }),
        ),
      );
      req.end();
    });
  }
}

/** CredentialField is the agent.yaml field a credential file comes from, for messages. */
type CredentialField =
  "kubelet_token_path" | "ssl.server_verify" | "ssl.client_cert_path" | "ssl.client_key_path";

/** credentialProblem says what keeps a credential file from being used, or undefined when it can be. */
function credentialProblem(file: string): string | undefined {
  try {
    if (!statSync(file).isFile()) return "not a regular file";
    if (readFileSync(file).length === 0) return "the file is empty";
    return undefined;
  } catch (err) {
    return fileErrorText(err);
  }
}

/**
 * readCredential reads a credential file for one request. A failure here (the file vanished
 * after the start check, mid-rotation say) skips the iteration like any other listing failure.
 */
function readCredential(field: CredentialField, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new AgentError(
      "pod-source",
      `cannot read the kubelet credential ${field} ${JSON.stringify(file)}: ${fileErrorText(err)}`,
      {
        cause: err,
      },
    );
  }
}

function fileErrorText(err: unknown): string {
  switch ((err as NodeJS.ErrnoException).code) {
    case "ENOENT":
      return "no such file";
    case "EACCES":
    case "EPERM":
      return `permission denied (the agent runs as uid ${process.getuid?.() ?? "?"})`;
    case "EISDIR":
      return "not a regular file";
    default:
      return (err as Error).message;
  }
}

function describeTlsError(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code ?? "";
  if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS_CERT_ALTNAME/.test(code)) {
    return `${err.message} (the kubelet's certificate did not verify: set ssl.server_verify to its CA bundle, or ssl.server_name)`;
  }
  return err.message;
}

/** PodFilter keeps the pods the agent monitors. */
export interface PodFilter {
  namespaces: readonly string[];
}

/**
 * monitoredPods keeps pods of the monitored namespaces that may have a cgroup: Running, or
 * Pending with a container already running (init containers). Unlike WCA, a pod whose
 * containers are not all ready is still monitored: it uses the node all the same.
 */
export function monitoredPods(pods: readonly V1Pod[], filter: PodFilter): V1Pod[] {
  const namespaces = new Set(filter.namespaces);
  return pods.filter((p) => {
    if (!namespaces.has(p.metadata?.namespace ?? "") || !p.metadata?.uid) return false;
    const phase = p.status?.phase;
    if (phase === "Running") return true;
    if (phase !== "Pending") return false;
    const statuses = [...(p.status?.initContainerStatuses ?? []), ...(p.status?.containerStatuses ?? [])];
    return statuses.some((s) => s.state?.running !== undefined);
  });
}
