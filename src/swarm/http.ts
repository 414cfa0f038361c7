/**
 * The controller's HTTP introspection endpoint (the original operator's "http interface, useful
 * to introspect doing port-forwarding"): plain HTTP, GET only.
 *
 * - /assignments: JSON, every pool with its workers' entries as the worker ConfigMap holds them,
 *   pending restarts and conditions, plus which instance leads. Served from the watch caches, so a
 *   standby answers too.
 * - /healthz: 200 while the process serves; /readyz: 200 once the caches are synced.
 * - /metrics: Prometheus text (SwarmMetrics).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { closeServer, listen, type ListenAddress } from "../http.js";
import type { PoolAssignment } from "./controller.js";
import type { SwarmMetrics } from "./metrics.js";

/** IntrospectionSource is what the endpoint reads: a SwarmController. */
export interface IntrospectionSource {
  readonly identity: string;
  readonly metrics: SwarmMetrics;
  isLeader(): boolean;
  leader(): string | undefined;
  synced(): boolean;
  assignments(): PoolAssignment[];
}

export type { ListenAddress };

/** AssignmentsResponse is the JSON body of /assignments. */
export interface AssignmentsResponse {
  identity: string;
  leader: boolean;
  /** holder is the identity holding the leader lease, when known. */
  holder?: string;
  /** pools maps "namespace/name" to the pool's assignment. */
  pools: Record<string, PoolAssignment>;
}

/** IntrospectionServer serves /assignments, /healthz, /readyz and /metrics for a controller. */
export class IntrospectionServer {
  private server: Server | undefined;

  constructor(
    private readonly source: IntrospectionSource,
    private readonly listen: ListenAddress,
  ) {}

  /** start listens and resolves with the bound address (port 0 picks a free one). */
  async start(): Promise<ListenAddress> {
    const server = createServer((req, res) => this.handle(req, res));
    this.server = server;
    return listen(server, this.listen);
  }

  /** stop closes the server and its idle connections. */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    await closeServer(server);
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
      return;
    }
    switch (path) {
      case "/assignments":
        return json(res, 200, this.assignments());
      case "/healthz":
        return text(res, 200, "ok\n");
      case "/readyz":
        return this.source.synced() ? text(res, 200, "ok\n") : text(res, 503, "caches not synced yet\n");
      case "/metrics":
        this.source.metrics.exposition().then(
          (body) =>
            res.writeHead(200, { "content-type": this.source.metrics.registry.contentType }).end(body),
          (err: unknown) => text(res, 500, `${String(err)}\n`),
        );
        return;
      default:
        text(res, 404, "not found: try /assignments, /healthz, /readyz or /metrics\n");
    }
  }

  private assignments(): AssignmentsResponse {
    const pools: Record<string, PoolAssignment> = {};
    for (const pool of this.source.assignments()) pools[`${pool.namespace}/${pool.name}`] = pool;
    return {
      identity: this.source.identity,
      leader: this.source.isLeader(),
      ...(this.source.leader() ? { holder: this.source.leader() } : {}),
      pools,
    };
  }
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" }).end(`${JSON.stringify(body, null, 2)}\n`);
}

function text(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { "content-type": "text/plain; charset=utf-8" }).end(body);
}
