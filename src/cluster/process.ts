import { spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { request as httpsRequest, type RequestOptions } from "node:https";
import { createServer } from "node:net";
import { ClusterError } from "./errors.js";

/** ComponentName is one process of the local control plane. */
export type ComponentName = "etcd" | "kube-apiserver" | "kube-controller-manager" | "kube-scheduler" | "kwok";

/** ComponentRecord is what state.json keeps of a started process, enough to stop or restart it. */
export interface ComponentRecord {
  name: ComponentName;
  pid: number;
  port: number;
  binary: string;
  args: string[];
  log: string;
  /** health is the URL that answers 200 when the component is healthy. */
  health: string;
}

/** freePort asks the kernel for an unused TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port")),
      );
    });
  });
}

/**
 * startProcess starts a component detached from this process (it outlives `kubewise cluster up`),
 * its output appended to its log file.
 */
export function startProcess(record: Omit<ComponentRecord, "pid">, cwd: string): ComponentRecord {
  const fd = openSync(record.log, "a");
  try {
    const child = spawn(record.binary, record.args, { cwd, detached: true, stdio: ["ignore", fd, fd] });
    child.unref();
    if (!child.pid) throw new ClusterError("start-failed", `cannot start ${record.name} (${record.binary})`);
    return { ...record, pid: child.pid };
  } finally {
    closeSync(fd);
  }
}

/**
 * isOurProcess tells whether pid is alive and still runs the recorded binary, so a pid reused by
 * an unrelated process after a crash or reboot is never signalled.
 */
export function isOurProcess(record: Pick<ComponentRecord, "pid" | "binary">): boolean {
  try {
    process.kill(record.pid, 0);
  } catch {
    return false;
  }
  const cmdline = `/proc/${record.pid}/cmdline`;
  if (!existsSync(cmdline)) return true;
  try {
    const argv0 = readFileSync(cmdline, "utf8").split("\0")[0] ?? "";
    return argv0 === record.binary;
  } catch {
    return false;
  }
}

/** stopProcess sends SIGTERM, waits up to graceMs, then SIGKILL. It resolves once the process is gone. */
export async function stopProcess(record: ComponentRecord, graceMs = 10_000): Promise<boolean> {
  if (!isOurProcess(record)) return false;
  process.kill(record.pid, "SIGTERM");
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!isOurProcess(record)) return true;
    await sleep(100);
  }
  try {
    process.kill(record.pid, "SIGKILL");
  } catch {
    // already gone
  }
  while (isOurProcess(record)) await sleep(50);
  return true;
}

/** TlsClient is the client certificate and CA used to reach the secure endpoints. */
export interface TlsClient {
  ca?: string;
  cert?: string;
  key?: string;
}

/** probe GETs a health URL once and tells whether it answered 200 (with its body for messages). */
export function probe(
  url: string,
  tls: TlsClient = {},
  timeoutMs = 2000,
): Promise<{ ok: boolean; detail: string }> {
  return new Promise((resolve) => {
    const u = new URL(url);
    const options: RequestOptions = { method: "GET", timeout: timeoutMs };
    const done = (ok: boolean, detail: string): void => resolve({ ok, detail });
    const onResponse = (res: import("node:http").IncomingMessage): void => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString()));
      res.on("end", () => done(res.statusCode === 200, `${res.statusCode}: ${body.trim().slice(0, 200)}`));
    };
    const req =
      u.protocol === "https:"
        ? httpsRequest(
            u,
            {
              ...options,
              ca: tls.ca,
              cert: tls.cert,
              key: tls.key,
              rejectUnauthorized: tls.ca !== undefined,
            },
            onResponse,
          )
        : httpRequest(u, options, onResponse);
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", (err) => done(false, err.message));
    req.end();
  });
}

/**
 * waitHealthy polls a component's health URL until it answers 200, failing early — with the end
 * of its log — if the process exits. Polling is the only way to know a process is serving.
 */
export async function waitHealthy(
  record: ComponentRecord,
  tls: TlsClient,
  timeoutMs: number,
  onWait?: (detail: string) => void,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    const result = await probe(record.health, tls);
    if (result.ok) return;
    last = result.detail;
    onWait?.(last);
    if (!isOurProcess(record)) {
      throw new ClusterError(
        "start-failed",
        `${record.name} exited while starting; end of ${record.log}:\n${tail(record.log)}`,
      );
    }
    await sleep(200);
  }
  throw new ClusterError(
    "start-failed",
    `${record.name} not healthy after ${timeoutMs / 1000} s (${last}); end of ${record.log}:\n${tail(record.log)}`,
  );
}

/** tail returns the last lines of a log file. */
export function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
