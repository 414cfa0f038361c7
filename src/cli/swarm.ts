/**
 * `kubewise swarm assign`: the work assignment offline, from files, exactly as the controller
 * computes it, so a pool change can be previewed (and its moves counted) before it is made.
 * `kubewise swarm run`: the SwarmPool controller and its HTTP endpoint, until SIGTERM.
 */
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { Command, InvalidArgumentError, Option } from "commander";
import { ConfigError } from "../config/index.js";
import {
  assignWork,
  movedJobs,
  parseAssignmentFile,
  parseJobList,
  parseNameList,
  renderWorkerConfig,
  SwarmError,
  versionWorkloads,
  assignmentOf,
  IntrospectionServer,
  SwarmController,
  SwarmMetrics,
  type Assignment,
  type ListenAddress,
  type WorkerConfig,
} from "../swarm/index.js";
import { action, connect, type CommandContext } from "./common.js";

/** AssignFlags are the flags of `kubewise swarm assign`. */
export interface AssignFlags {
  jobs: string;
  workers: string;
  previous?: string;
  dedicated: string[];
  dedicatedFile?: string;
  output: "json" | "config";
}

/** RunFlags are the flags of `kubewise swarm run`. */
export interface RunFlags {
  namespace?: string;
  allNamespaces?: boolean;
  listen: ListenAddress;
  leaseName: string;
  leaseNamespace?: string;
  identity?: string;
}

/** DEFAULT_LISTEN is where `kubewise swarm run` serves /assignments, /healthz and /metrics. */
export const DEFAULT_LISTEN = "127.0.0.1:8080";

/** swarmCommand builds the `swarm` command group. */
export function swarmCommand(): Command {
  const swarm = new Command("swarm").description(
    "spread a list of jobs over a pool of workers: deterministic, balanced to within one job, and " +
      "moving only the jobs balance requires when workers or jobs change",
  );
  swarm
    .command("assign")
    .description(
      "compute an assignment from files (JSON or YAML lists) and print it as JSON worker -> jobs. " +
        "With --previous, jobs stay where they were unless balance requires a move.",
    )
    .requiredOption("--jobs <file>", "job names: a list, or a document `jobs: [...]`")
    .requiredOption("--workers <file>", "worker (pod) names: a list, or a document `workers: [...]`")
    .option(
      "--previous <file>",
      "the previous assignment: this command's JSON output, the worker ConfigMap's config.yml, or the ConfigMap",
    )
    .option("--dedicated <job>", "a job that gets a worker of its own (repeatable)", collect, [])
    .option("--dedicated-file <file>", "more dedicated jobs, as a list")
    .addOption(
      new Option(
        "-o, --output <format>",
        "json: worker -> jobs; config: the worker ConfigMap file with versions",
      )
        .choices(["json", "config"])
        .default("json"),
    )
    .action(action(runAssign));
  swarm
    .command("run")
    .description(
      "run the SwarmPool controller: keep each pool's worker ConfigMap assigned, restart the " +
        "workers whose jobs changed (refresh strategy restart), report in the pool's status, and " +
        "serve /assignments, /healthz, /readyz and /metrics. Instances elect one leader through a Lease.",
    )
    .option(
      "-n, --namespace <ns>",
      "reconcile the pools of this namespace (default: the context's namespace)",
    )
    .addOption(
      new Option("-A, --all-namespaces", "reconcile the pools of every namespace").conflicts("namespace"),
    )
    .addOption(
      new Option("--listen <host:port>", "where to serve the HTTP endpoint; port 0 picks one")
        .argParser(parseListen)
        .default(parseListen(DEFAULT_LISTEN), DEFAULT_LISTEN),
    )
    .option("--lease-name <name>", "the Lease that elects the leader", "kubewise-swarm")
    .option(
      "--lease-namespace <ns>",
      "namespace of the Lease (default: $POD_NAMESPACE, else the pools' namespace, else the context's)",
    )
    .option("--identity <id>", "this instance's name in the election (default: <hostname>_<random>)")
    .action(action(runController));
  return swarm;
}

async function runController(ctx: CommandContext, flags: RunFlags): Promise<void> {
  const client = connect(ctx.global);
  const namespace = flags.allNamespaces ? undefined : (flags.namespace ?? client.defaultNamespace);
  const leaseNamespace =
    flags.leaseNamespace || process.env.POD_NAMESPACE || namespace || client.defaultNamespace;
  const identity = flags.identity ?? `${hostname()}_${randomUUID().slice(0, 8)}`;
  const controller = new SwarmController(client, {
    namespace,
    lease: { namespace: leaseNamespace, name: flags.leaseName, identity },
    log: ctx.log,
    metrics: new SwarmMetrics({ processMetrics: true }),
  });
  const server = new IntrospectionServer(controller, flags.listen);
  const bound = await server.start();
  ctx.log.info({ host: bound.host, port: bound.port }, "introspection listening");
  controller.start();
  ctx.log.info(
    {
      namespace: namespace ?? "(all)",
      lease: `${leaseNamespace}/${flags.leaseName}`,
      identity,
      server: client.server,
    },
    "swarm controller started",
  );
  await new Promise<void>((resolve) => {
    if (ctx.signal.aborted) resolve();
    ctx.signal.addEventListener("abort", () => resolve(), { once: true });
  });
  const started = Date.now();
  await controller.stop();
  await server.stop();
  ctx.log.info({ elapsedMs: Date.now() - started }, "swarm controller stopped");
}

/** parseListen reads HOST:PORT (IPv6 as [::1]:PORT) for --listen. */
export function parseListen(value: string): ListenAddress {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(value.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    throw new InvalidArgumentError(
      `--listen takes HOST:PORT (e.g. 127.0.0.1:8080, 0.0.0.0:8080, [::]:8080), got "${value}"`,
    );
  }
  return { host: m[1] ?? (m[2] || "0.0.0.0"), port };
}

async function runAssign(ctx: CommandContext, flags: AssignFlags): Promise<void> {
  const { previous, next } = assignFromFiles(flags);
  if (previous !== undefined) {
    ctx.log.debug({ moved: movedJobs(assignmentOf(previous), next).length }, "jobs moved");
  }
  process.stdout.write(formatAssignment(flags.output, previous, next));
}

/**
 * assignFromFiles reads the files named by the flags and computes the assignment. Errors name the
 * file (or flag) to fix.
 */
export function assignFromFiles(flags: AssignFlags): { previous?: WorkerConfig; next: Assignment } {
  const jobs = parseJobList(readText(flags.jobs), flags.jobs);
  const workers = parseNameList(readText(flags.workers), "workers", flags.workers);
  if (workers.length === 0) {
    throw new SwarmError("no-workers", `${flags.workers}: lists no workers; a pool needs at least one`);
  }
  const dedicated = [...flags.dedicated];
  if (flags.dedicatedFile !== undefined) {
    dedicated.push(...parseJobList(readText(flags.dedicatedFile), flags.dedicatedFile));
  }
  const previous =
    flags.previous === undefined ? undefined : parseAssignmentFile(readText(flags.previous), flags.previous);
  try {
    const next = assignWork(jobs, workers, previous && assignmentOf(previous), { dedicated });
    return previous === undefined ? { next } : { previous, next };
  } catch (err) {
    if (err instanceof SwarmError) throw inFile(err, flags);
    throw err;
  }
}

/** formatAssignment renders the result: JSON worker -> jobs, or the worker ConfigMap file. */
export function formatAssignment(
  format: AssignFlags["output"],
  previous: WorkerConfig | undefined,
  next: Assignment,
): string {
  if (format === "config") return renderWorkerConfig(versionWorkloads(previous, next));
  // Object.fromEntries defines own properties, so a worker named __proto__ is just a key.
  return `${JSON.stringify(Object.fromEntries(next), null, 2)}\n`;
}

/** inFile says which input an assignment error came from. */
function inFile(err: SwarmError, flags: AssignFlags): SwarmError {
  const where: Partial<Record<SwarmError["reason"], string>> = {
    "duplicate-job": `--jobs ${flags.jobs}`,
    "duplicate-worker": `--workers ${flags.workers}`,
    "unknown-dedicated-job":
      flags.dedicatedFile === undefined
        ? "--dedicated"
        : `--dedicated/--dedicated-file ${flags.dedicatedFile}`,
  };
  const prefix = where[err.reason];
  return prefix === undefined ? err : new SwarmError(err.reason, `${prefix}: ${err.message}`, { cause: err });
}

function readText(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const message = code === "ENOENT" ? "file not found" : `cannot read: ${String(err)}`;
    throw new ConfigError("unreadable", file, [{ path: [], message }]);
  }
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
