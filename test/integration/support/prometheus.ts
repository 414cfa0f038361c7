/**
 * Test harness for suites that need a real Prometheus: it starts the `prometheus` binary (Debian's
 * package, 2.42 on our machines) on a free 127.0.0.1 port with its own configuration and storage
 * in a temporary directory, scraping the targets a test names, and stops it afterwards.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

/** prometheusBinary is the path of the `prometheus` binary on PATH, or undefined when it is absent. */
export function prometheusBinary(): string | undefined {
  const found = spawnSync("sh", ["-c", "command -v prometheus"], { encoding: "utf8" });
  const path = found.stdout.trim();
  return found.status === 0 && path !== "" ? path : undefined;
}

/** SKIP_NO_PROMETHEUS is the skip message of a suite run where Prometheus is not installed. */
export const SKIP_NO_PROMETHEUS =
  "the prometheus binary is not on PATH; install it with `apt-get install -y --no-install-recommends prometheus`";

/** PrometheusOptions says what the test Prometheus scrapes. */
export interface PrometheusOptions {
  /** targets are host:port addresses serving /metrics, scraped as job "test". */
  targets: string[];
  /** scrapeIntervalSeconds, @default 1 */
  scrapeIntervalSeconds?: number;
  /** readyTimeoutMs to wait for /-/ready. @default 30000 */
  readyTimeoutMs?: number;
}

/** TestPrometheus is a running Prometheus. */
export interface TestPrometheus {
  /** url is the base URL of its HTTP API, e.g. http://127.0.0.1:41234. */
  url: string;
  /** query runs an instant query and returns its vector result. */
  query(promql: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]>;
  /** stop ends the process and removes its directory. */
  stop(): Promise<void>;
  /** log is what the process wrote, for failure messages. */
  log(): string;
}

/** freePort asks the kernel for a port that is free on 127.0.0.1 now. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** startPrometheus starts Prometheus and waits until it is ready; it throws with its log if it is not. */
export async function startPrometheus(options: PrometheusOptions): Promise<TestPrometheus> {
  const binary = prometheusBinary();
  if (!binary) throw new Error(SKIP_NO_PROMETHEUS);
  const dir = mkdtempSync(join(tmpdir(), "kubewise-prometheus-"));
  const interval = `${options.scrapeIntervalSeconds ?? 1}s`;
  const config = [
    "global:",
    `  scrape_interval: ${interval}`,
    `  evaluation_interval: ${interval}`,
    "scrape_configs:",
    "  - job_name: test",
    `    scrape_interval: ${interval}`,
    "    static_configs:",
    `      - targets: [${options.targets.map((t) => JSON.stringify(t)).join(", ")}]`,
    "",
  ].join("\n");
  writeFileSync(join(dir, "prometheus.yml"), config);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let output = "";
  const child: ChildProcess = spawn(
    binary,
    [
      `--config.file=${join(dir, "prometheus.yml")}`,
      `--storage.tsdb.path=${join(dir, "data")}`,
      `--web.listen-address=127.0.0.1:${port}`,
      "--log.level=warn",
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  child.stdout?.on("data", (b: Buffer) => (output += b.toString()));
  child.stderr?.on("data", (b: Buffer) => (output += b.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const killer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(killer);
    }
    rmSync(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + (options.readyTimeoutMs ?? 30_000);
  for (;;) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`prometheus exited with code ${child.exitCode}:\n${output}`);
    }
    const ready = await fetch(`${url}/-/ready`).then(
      (r) => r.ok,
      () => false,
    );
    if (ready) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`prometheus was not ready at ${url} in time:\n${output}`);
    }
    await sleep(100);
  }

  const query = async (promql: string) => {
    const response = await fetch(`${url}/api/v1/query?${new URLSearchParams({ query: promql })}`);
    const body = (await response.json()) as { status: string; error?: string; data?: { result: unknown } };
    if (body.status !== "success")
      throw new Error(`query ${promql} failed: ${body.error ?? response.status}`);
    return body.data?.result as { metric: Record<string, string>; value: [number, string] }[];
  };
  return { url, query, stop, log: () => output };
}

/**
 * waitForSamples polls until `promql` (an instant query) yields a value of at least `atLeast`,
 * e.g. `count_over_time(up[1m])` to wait for a number of scrapes.
 */
export async function waitForSamples(
  prometheus: TestPrometheus,
  promql: string,
  atLeast: number,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const result = await prometheus.query(promql);
    const value = Number(result[0]?.value[1] ?? 0);
    if (value >= atLeast) return;
    if (Date.now() > deadline) {
      throw new Error(
        `${promql} was ${value} after ${timeoutMs} ms, wanted ${atLeast}:\n${prometheus.log()}`,
      );
    }
    await sleep(250);
  }
}

/** MetricsEndpoint is an HTTP server on 127.0.0.1 serving /metrics in the Prometheus text format. */
export interface MetricsEndpoint {
  /** target is host:port, as a scrape config names it. */
  target: string;
  /** scrapes counts the requests to /metrics so far. */
  scrapes(): number;
  close(): Promise<void>;
}

/** serveMetrics serves `render()` at /metrics on a free port. */
export async function serveMetrics(render: () => string): Promise<MetricsEndpoint> {
  let scrapes = 0;
  const server: Server = createServer((req, res) => {
    if (req.url?.startsWith("/metrics")) {
      scrapes++;
      res.writeHead(200, { "content-type": "text/plain; version=0.0.4" });
      res.end(render());
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    target: `127.0.0.1:${port}`,
    scrapes: () => scrapes,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
