import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Command } from "commander";
import { DEFAULT_CLUSTER_DIR, projectRoot, up } from "../cluster/index.js";
import {
  KubeClient,
  applyObject,
  deleteObject,
  waitForDeleted,
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
  writeReport,
  type OptimizerTransport,
} from "../servo/index.js";
import { createLogger } from "../log.js";
import { action, parseIntFlag, type CommandContext } from "./common.js";

interface DemoFlags {
  trials: number;
  dir: string;
  reportDir: string;
  db?: string;
  resume: boolean;
}

/** demoCommand is `kubewise demo`: the seed's tuning-pod example, end to end on the local cluster. */
export function demoCommand(): Command {
  return new Command("demo")
    .summary("tune the seed's example app on the local cluster, end to end")
    .description(
      "start the local cluster, create the seed's example app (Deployment web-main, container main, env " +
        "COMMIT_DELAY), and tune its tuning pod with the servo (k8s + k8slive connectors) against the local " +
        "optimizer, measuring a SIMULATED workload; prints the best settings and writes an HTML report. " +
        "The configuration it runs is examples/servo/demo.yaml.",
    )
    .option("--trials <n>", "trials to run, the baseline included", parseIntFlag("trials", 2), 16)
    .option("--dir <dir>", "local cluster folder", DEFAULT_CLUSTER_DIR)
    .option("--report-dir <dir>", "where to write the report", ".kubewise/demo/report")
    .option(
      "--db <file>",
      "trial database (default: the optimizer section's db, .kubewise/demo/optimizer.db)",
    )
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
    ...(flags.db === undefined ? {} : { db: flags.db }),
  });
  if (!flags.resume) {
    if (existsSync(optimizerConfig.db)) rmSync(optimizerConfig.db);
    // A tuning pod left by an earlier run would be this run's baseline; start from the main app.
    const leftover = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "opsani-tuning", namespace: NAMESPACE },
    };
    if (await deleteObject(client, leftover, { gracePeriodSeconds: 0 })) {
      await waitForDeleted(
        client,
        { apiVersion: "v1", kind: "Pod", namespace: NAMESPACE, name: "opsani-tuning" },
        { timeoutMs: 60_000 },
      );
    }
  }
  const store = TrialStore.open(optimizerConfig.db);
  let summary;
  try {
    // The demo shows one line per trial; the servo's and optimizer's own logs come with --verbose.
    const log = ctx.global.verbose ? ctx.log : createLogger({ level: "warn" });
    const optimizer = new LocalOptimizer({ config: optimizerConfig, store, log });
    const parts = assembleServo(config, { client, log });
    const transport = narrated(new InProcessTransport(optimizer), "opsani-tuning");
    const servo = new Servo({ ...parts, transport, log, maxSleepSeconds: 0 });
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
    `study "${summary.study}": ${summary.trials} trials, ${summary.done ?? "stopped"}; the demo took ${((Date.now() - started) / 1000).toFixed(0)} s`,
    best
      ? `best: trial ${best.number}, objective ${best.objective.toFixed(4)}: ${Object.entries(
          best.values["opsani-tuning"] ?? {},
        )
          .filter(([k]) => k !== "replicas")
          .map(([k, v]) => `${k}=${String(v)}`)
          .join(" ")}`
      : "best: no feasible trial",
    `report: ${report.html}`,
    `        ${report.json}`,
    `the tuning pod keeps running with the best settings: kubectl -n ${NAMESPACE} get pod opsani-tuning`,
    "",
  ];
  process.stdout.write(lines.join("\n"));
}

/**
 * narrated wraps a transport to print one line per measured trial: the tuning component's
 * settings (from the last ADJUST, or the DESCRIPTION for the baseline) and the metrics measured.
 */
function narrated(inner: OptimizerTransport, component: string): OptimizerTransport {
  let settings: Record<string, unknown> = {};
  let trial = 0;
  const settingsOf = (components: unknown): Record<string, unknown> => {
    const c = (
      components as Record<string, { settings?: Record<string, { value?: unknown; pinned?: boolean }> }>
    )[component];
    return Object.fromEntries(
      Object.entries(c?.settings ?? {})
        .filter(([, v]) => v.pinned !== true)
        .map(([k, v]) => [k, v.value]),
    );
  };
  return {
    target: inner.target,
    async send(event, param, options) {
      const reply = await inner.send(event, param, options);
      const p = (param ?? {}) as Record<string, unknown>;
      if ("progress" in p) return reply;
      if (event === "DESCRIPTION" && trial === 0) {
        settings = settingsOf(
          (p.descriptor as { application?: { components?: unknown } })?.application?.components,
        );
      } else if (event === "ADJUSTMENT" && p.status === "ok") {
        settings = settingsOf(
          (p.state as { application?: { components?: unknown } })?.application?.components,
        );
      } else if (event === "MEASUREMENT" && p.status === "ok") {
        const metrics = p.metrics as Record<string, { value?: number; unit?: string }>;
        const shown = Object.entries(metrics)
          .map(([k, m]) => `${k} ${m.value?.toFixed(1)}${m.unit ?? ""}`)
          .join(", ");
        const what = Object.entries(settings)
          .map(([k, v]) => `${k}=${String(v)}`)
          .join(" ");
        process.stderr.write(
          `trial ${String(trial).padStart(2)}${trial === 0 ? " (baseline)" : ""}: ${what} -> ${shown}\n`,
        );
        trial++;
      }
      return reply;
    },
  };
}
