/**
 * What every kubewise HTTP(S) server does alike (the optimizer, the agent's metrics, the swarm
 * operator's introspection, the jobs admission webhook): listen with an error that says where,
 * and close with the connections it still holds.
 */
import type { AddressInfo, Server } from "node:net";
import { KubewiseError } from "./errors.js";

/** ListenAddress is where a server listens. */
export interface ListenAddress {
  host: string;
  port: number;
}

/** ClosableServer is an http or https server (both can drop their connections). */
export type ClosableServer = Server & { closeAllConnections(): void; closeIdleConnections(): void };

/**
 * listen binds server to host:port (port 0 picks a free one) and resolves with the bound address;
 * it rejects with a KubewiseError (reason `listen`) naming the address when the port is taken or
 * the host is not this machine's.
 */
export async function listen(server: Server, address: ListenAddress): Promise<ListenAddress> {
  await new Promise<void>((resolve, reject) => {
    const failed = (err: Error): void =>
      reject(
        new KubewiseError("listen", `cannot listen on ${address.host}:${address.port}: ${err.message}`, {
          cause: err,
        }),
      );
    server.once("error", failed);
    server.listen(address.port, address.host, () => {
      server.off("error", failed);
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;
  return { host: bound.address, port: bound.port };
}

/**
 * closeServer stops accepting connections and resolves once the server is closed. By default it
 * drops every open connection at once; `graceful` drops only the idle ones and waits for the
 * requests in flight to be answered.
 */
export async function closeServer(
  server: ClosableServer,
  options: { graceful?: boolean } = {},
): Promise<void> {
  if (!server.listening) return;
  await new Promise<void>((resolve, reject) => {
    server.close((err) => (err ? reject(err) : resolve()));
    if (options.graceful === true) server.closeIdleConnections();
    else server.closeAllConnections();
  });
}
