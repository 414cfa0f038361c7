import { readFileSync } from "node:fs";
import { Command, InvalidArgumentError } from "commander";
import { z } from "zod";
import { ConfigError, parseConfig, readYamlFile } from "../config/index.js";
import {
  LocalOptimizer,
  optimizerConfigSchema,
  OptimizerError,
  startOptimizerServer,
  TrialStore,
  writeReport,
  type OptimizerConfig,
} from "../servo/index.js";
import { action, parseIntFlag, type CommandContext } from "./common.js";

/** ServeFlags are the flags of `kubewise optimizer serve`; each overrides the servo.yaml field it names. */
interface ServeFlags {
  config?: string;
  host: string;
  port: number;
  db?: string;
  study?: string;
  objective?: string;
  direction?: "maximize" | "minimize";
  constraint?: string[];
  maxTrials?: number;
  seed?: number;
  tokenFile?: string;
}

interface ReportFlags {
  db: string;
  out: string;
  study?: string;
}

/** optimizerCommand is `kubewise optimizer`: the local optimizer as a server, and its reports. */
export function optimizerCommand(): Command {
  const optimizer = new Command("optimizer").description(
    "the local optimizer: the server side of the servo protocol, with a trial history in SQLite",
  );
  optimizer
    .command("serve")
    .description(
      "serve POST /accounts/{account}/applications/{app}/servo on 127.0.0.1 for servos to tune against; " +
        "each account/app is its own study unless --study (or optimizer.study) names one",
    )
    .option("-c, --config <file>", "servo.yaml whose `optimizer` section configures the study")
    .option("--host <host>", "address to listen on", "127.0.0.1")
    .option("--port <port>", "port to listen on (0 picks a free one)", parseIntFlag("port", 0), 8080)
    .option("--db <file>", "SQLite file of trial histories (optimizer.db)")
    .option("--study <name>", "study name; the same name continues its trials (optimizer.study)")
    .option("--objective <cel>", "CEL expression over metrics and settings (optimizer.objective)")
    .option("--direction <dir>", "maximize or minimize (optimizer.direction)", parseDirection)
    .option("--constraint <cel>", "SLO as a CEL condition; repeat for more (optimizer.constraints)", collect)
    .option(
      "--max-trials <n>",
      "stop after this many trials (optimizer.max_trials)",
      parseIntFlag("max-trials", 1),
    )
    .option("--seed <n>", "seed of the search (optimizer.seed)", parseIntFlag("seed", 0))
    .option("--token-file <file>", "require `Authorization: Bearer <token>` with the token in this file")
    .action(action(runServe));
  optimizer
    .command("report")
    .description("write a study's trials, best settings and plots as <study>.html and <study>.json")
    .requiredOption("--db <file>", "SQLite file of trial histories")
    .requiredOption("--out <dir>", "folder to write the report into")
    .option("--study <name>", "study to report (needed when the database holds several)")
    .action(action(runReport));
  return optimizer;
}

function parseDirection(value: string): "maximize" | "minimize" {
  if (value !== "maximize" && value !== "minimize")
    throw new InvalidArgumentError("use maximize or minimize");
  return value;
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** loadSection merges the servo.yaml `optimizer` section with the flags and validates it. */
function loadSection(flags: ServeFlags): { config: OptimizerConfig; studyFixed: boolean } {
  const doc = flags.config === undefined ? {} : readYamlFile(flags.config);
  const raw =
    doc !== null && typeof doc === "object" ? (doc as Record<string, unknown>).optimizer : undefined;
  const section: Record<string, unknown> = { ...(raw !== null && typeof raw === "object" ? raw : {}) };
  const overrides: [keyof ServeFlags, string][] = [
    ["db", "db"],
    ["study", "study"],
    ["objective", "objective"],
    ["direction", "direction"],
    ["constraint", "constraints"],
    ["maxTrials", "max_trials"],
    ["seed", "seed"],
  ];
  for (const [flag, key] of overrides) if (flags[flag] !== undefined) section[key] = flags[flag];
  if (section.objective === undefined) {
    throw new ConfigError("invalid", flags.config, [
      { path: ["optimizer", "objective"], message: "is required: set it in servo.yaml or pass --objective" },
    ]);
  }
  const parsed = parseConfig(
    z.object({ optimizer: optimizerConfigSchema }),
    { optimizer: section },
    flags.config,
  );
  return { config: parsed.optimizer, studyFixed: section.study !== undefined };
}

function readToken(file: string): string {
  try {
    const token = readFileSync(file, "utf8").trim();
    if (token === "") throw new Error("the file is empty");
    return token;
  } catch (err) {
    throw new OptimizerError(
      "invalid-config",
      `cannot read the token file ${file}: ${(err as Error).message}`,
      { cause: err },
    );
  }
}

async function runServe(ctx: CommandContext, flags: ServeFlags): Promise<void> {
  const { config, studyFixed } = loadSection(flags);
  const token = flags.tokenFile === undefined ? undefined : readToken(flags.tokenFile);
  const store = TrialStore.open(config.db);
  try {
    const fixed = studyFixed ? new LocalOptimizer({ config, store, log: ctx.log }) : undefined;
    const server = await startOptimizerServer({
      host: flags.host,
      port: flags.port,
      token,
      log: ctx.log,
      optimizerFor: (account, app) =>
        fixed ??
        new LocalOptimizer({ config: { ...config, study: `${account}/${app}` }, store, log: ctx.log }),
    });
    process.stdout.write(
      `local optimizer listening: ${server.url}/accounts/{account}/applications/{app}/servo\n`,
    );
    await new Promise<void>((resolve) => {
      if (ctx.signal.aborted) resolve();
      ctx.signal.addEventListener("abort", () => resolve(), { once: true });
    });
    await server.close();
  } finally {
    store.close();
  }
}

async function runReport(_ctx: CommandContext, flags: ReportFlags): Promise<void> {
  const files = writeReport({ db: flags.db, outDir: flags.out, study: flags.study });
  const { report } = files;
  const best = report.best
    ? `best trial ${report.best.number} (objective ${report.best.objective})`
    : "no feasible trial";
  process.stdout.write(
    `${report.study}: ${report.trials.length} trials, ${best}\n${files.html}\n${files.json}\n`,
  );
  return Promise.resolve();
}
