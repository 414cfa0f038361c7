import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Command } from "commander";
import { DEFAULT_CLUSTER_DIR, projectRoot, up } from "../cluster/index.js";
import {
  KubeClient,
  applyObject,
  waitForRollout,
  type V1Deployment,
  type V1Namespace,
} from "../kube/index.js";
import { createProgress } from "../progress.js";
import {
  InProcessTransport,
  LocalOptimizer,
  Servo,
  TrialStore,
  assembleServo,
  loadServoConfig,
  optimizerConfigSchema,
} from "../servo/index.js";
import { writeReport } from "../servo/optimizer/index.js";
import { action, parseIntFlag, type CommandContext } from "./common.js";

interface DemoFlags {
  trials: number;
  dir: string;
  reportDir: string;
  resume: boolean;
}

/** demoCommand is `kubewise demo`: the seed's tuning-pod example, end to end on the local cluster. */
export function demoCommand(): Command {
  return new Command("demo")
    .description(
      "start the local cluster, create the seed's example app (Deployment web-main, container main, env\n" +
        "COMMIT_DELAY), and tune its tuning pod with the servo (k8s + k8slive connectors) against the local\n" +
        "optimizer, measuring a SIMULATED workload; prints the best settings and writes an HTML report.\n" +
        "The configuration it runs is examples/servo/demo.yaml.",
    )
    .option("--trials <n>", "trials to run, the baseline included", parseIntFlag("trials", 2), 12)
    .option("--dir <dir>", "local cluster folder", DEFAULT_CLUSTER_DIR)
    .option("--report-dir <dir>", "where to write the report", ".kubewise/demo/report")
    .option("--resume", "continue the previous demo study instead of starting a new one", false)
    .action(action(runDemo));
}

const NAMESPACE = "kubewise-demo";

function demoApp(): V1Deployment {
  const labels = { app: "web-main" };
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "web-main", namespace: NAMESPACE },
    spec: {
      replicas: 2,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          containers: [
            {
              name: "main",
              image: "example/web:1.0",
              env: [{ name: "COMMIT_DELAY", value: "20" }],
              resources: { requests: { cpu: "1", memory: "1Gi" }, limits: { cpu: "1", memory: "1Gi" } },
            },
          ],
        },
      },
    },
  };
}

async function runDemo(ctx: CommandContext, flags: DemoFlags): Promise<void> {
  const started = Date.now();
  const progress = createProgress();
  const cluster = await up({ dir: flags.dir, log: ctx.log, onProgress: (m) => progress.update(m) });
  progress.done(
    cluster.started ? `local cluster ready (${cluster.state.nodes} nodes)` : "local cluster already running",
  );
  const client = KubeClient.connect({ kubeconfig: cluster.state.kubeconfig });

  const ns: V1Namespace = { apiVersion: "v1", kind: "Namespace", metadata: { name: NAMESPACE } };
  await applyObject(client, ns);
  const app = await applyObject(client, demoApp());
  await waitForRollout(client, NAMESPACE, "web-main", { timeoutMs: 120_000 });
  process.stderr.write(`app: deployment ${NAMESPACE}/web-main ${app.result}, 2 replicas ready\n`);

  const file = join(projectRoot(), "examples", "servo", "demo.yaml");
  const config = loadServoConfig(file);
  const optimizerConfig = optimizerConfigSchema.parse({
    ...(config.optimizer as object),
    max_trials: flags.trials,
  });
  if (!flags.resume && existsSync(optimizerConfig.db)) rmSync(optimizerConfig.db);
  const store = TrialStore.open(optimizerConfig.db);
  let summary;
  try {
    const optimizer = new LocalOptimizer({ config: optimizerConfig, store, log: ctx.log });
    const parts = assembleServo(config, { client, log: ctx.log });
    const servo = new Servo({
      ...parts,
      transport: new InProcessTransport(optimizer),
      log: ctx.log,
      maxSleepSeconds: 0,
    });
    process.stderr.write(`tuning the tuning pod for ${flags.trials} trials (config: ${file})\n`);
    await servo.run(ctx.signal, (last) => last.cmd === "SLEEP" && optimizer.summary().done !== undefined);
    summary = optimizer.summary();
  } finally {
    store.close();
  }
  const report = writeReport({
    db: optimizerConfig.db,
    outDir: flags.reportDir,
    study: optimizerConfig.study,
  });
  const best = summary.best;
  const lines = [
    "",
    `study "${summary.study}": ${summary.trials} trials, ${summary.done ?? "stopped"} (${((Date.now() - started) / 1000).toFixed(0)} s)`,
    best
      ? `best: trial ${best.number}, objective ${best.objective.toFixed(4)} — ${JSON.stringify(best.values["opsani-tuning"] ?? best.values)}`
      : "best: no feasible trial",
    `report: ${report.html}`,
    `        ${report.json}`,
    `the tuning pod keeps running with the best settings: kubectl -n ${NAMESPACE} get pod opsani-tuning`,
    "",
  ];
  process.stdout.write(lines.join("\n"));
}
