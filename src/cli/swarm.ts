/**
 * `kubewise swarm assign`: the work assignment offline, from files, exactly as the controller
 * computes it, so a pool change can be previewed (and its moves counted) before it is made.
 */
import { readFileSync } from "node:fs";
import { Command, Option } from "commander";
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
  type Assignment,
  type WorkerConfig,
} from "../swarm/index.js";
import { action, type CommandContext } from "./common.js";

/** AssignFlags are the flags of `kubewise swarm assign`. */
export interface AssignFlags {
  jobs: string;
  workers: string;
  previous?: string;
  dedicated: string[];
  dedicatedFile?: string;
  output: "json" | "config";
}

/** swarmCommand builds the `swarm` command group. */
export function swarmCommand(): Command {
  const swarm = new Command("swarm").description(
    "spread a list of jobs over a pool of workers: deterministic, balanced to within one job, and\n" +
      "moving only the jobs balance requires when workers or jobs change",
  );
  swarm
    .command("assign")
    .description(
      "compute an assignment from files (JSON or YAML lists) and print it as JSON worker -> jobs.\n" +
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
  return swarm;
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
