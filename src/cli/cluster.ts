import { Command } from "commander";
import {
  clusterHealth,
  DEFAULT_CLUSTER_DIR,
  down,
  envExports,
  readState,
  resolveDir,
  up,
  ClusterError,
} from "../cluster/index.js";
import { KubeClient } from "../kube/index.js";
import { createProgress } from "../progress.js";
import { action, parseIntFlag, prog, type CommandContext } from "./common.js";

interface UpFlags {
  dir: string;
  nodes: number;
  quiet?: boolean;
}

interface DirFlags {
  dir: string;
}

interface DownFlags extends DirFlags {
  keep: boolean;
}

/** clusterCommand is `kubewise cluster`: the embedded local control plane. */
export function clusterCommand(): Command {
  const cluster = new Command("cluster")
    .summary("run a real local control plane with KWOK nodes")
    .description(
      "run a real local Kubernetes control plane (kube-apiserver, etcd, kube-controller-manager, " +
        "kube-scheduler) with KWOK-simulated nodes, as plain processes on 127.0.0.1",
    );
  const dirOption = (cmd: Command): Command =>
    cmd.option(
      "--dir <dir>",
      "folder holding the cluster's state, certificates and logs",
      DEFAULT_CLUSTER_DIR,
    );

  dirOption(cluster.command("up"))
    .description(
      "start the local cluster (builds the binaries first if they are missing) and wait until it is ready",
    )
    .option("--nodes <n>", "number of fake nodes (8 cpu, 32Gi, 110 pods each)", parseIntFlag("nodes", 1), 3)
    .option("-q, --quiet", "print only the final summary")
    .action(action(runUp));

  dirOption(cluster.command("down"))
    .description("stop the processes `up` started (by recorded pid) and remove the cluster's state")
    .option("--keep", "keep the state folder (logs, certificates, etcd data)", false)
    .action(action(runDown));

  dirOption(cluster.command("status"))
    .description("show each component's pid, port and health, and the nodes")
    .action(action(runStatus));

  dirOption(cluster.command("env"))
    .description('print shell exports for the cluster: eval "$(kubewise cluster env)"')
    .action(action(runEnv));
  return cluster;
}

async function runUp(ctx: CommandContext, flags: UpFlags): Promise<void> {
  const progress = createProgress(process.stderr, flags.quiet);
  const result = await up({
    dir: flags.dir,
    nodes: flags.nodes,
    log: ctx.log,
    onProgress: (m) => progress.update(m),
  });
  const { state } = result;
  if (!result.started) {
    progress.done(`cluster already running in ${state.dir}; nothing changed`);
  } else {
    progress.done(
      `cluster ready in ${(result.elapsedMs / 1000).toFixed(1)} s: ${state.nodes} node(s), API server ${state.server}`,
    );
  }
  process.stdout.write(
    [
      `kubeconfig: ${state.kubeconfig}`,
      "",
      "Use it:",
      `  eval "$(${prog()} cluster env${flags.dir === DEFAULT_CLUSTER_DIR ? "" : ` --dir ${flags.dir}`})"`,
      "  kubectl get nodes",
      "Stop it:",
      `  ${prog()} cluster down${flags.dir === DEFAULT_CLUSTER_DIR ? "" : ` --dir ${flags.dir}`}`,
      "",
    ].join("\n"),
  );
}

async function runDown(_ctx: CommandContext, flags: DownFlags): Promise<void> {
  const result = await down({ dir: flags.dir, keep: flags.keep });
  if (!result.found) {
    process.stdout.write(`no cluster state in ${resolveDir(flags.dir)}; nothing to stop\n`);
    return;
  }
  const what = result.stopped.length > 0 ? `stopped ${result.stopped.join(", ")}` : "no process was running";
  process.stdout.write(`${what}; ${result.removed ? "removed" : "kept"} ${resolveDir(flags.dir)}\n`);
}

async function runStatus(_ctx: CommandContext, flags: DirFlags): Promise<void> {
  const state = readState(flags.dir);
  if (!state)
    throw new ClusterError(
      "missing",
      `no cluster in ${resolveDir(flags.dir)}: start one with \`${prog()} cluster up\``,
    );
  const health = await clusterHealth(state);
  const rows = [["COMPONENT", "PID", "PORT", "HEALTH"]];
  for (const h of health) {
    rows.push([
      h.name,
      String(h.pid),
      String(h.port),
      h.healthy ? "ok" : h.running ? `unhealthy (${h.detail})` : "not running",
    ]);
  }
  process.stdout.write(`${table(rows)}\n`);
  if (health.find((h) => h.name === "kube-apiserver")?.healthy) {
    const client = KubeClient.connect({ kubeconfig: state.kubeconfig });
    const nodes = await client.core.listNode();
    const lines = [["NODE", "READY", "CPU", "MEMORY", "PODS"]];
    for (const n of nodes.items) {
      const ready = n.status?.conditions?.find((c) => c.type === "Ready")?.status ?? "Unknown";
      const cap = n.status?.allocatable ?? {};
      lines.push([n.metadata?.name ?? "?", ready, cap.cpu ?? "", cap.memory ?? "", cap.pods ?? ""]);
    }
    process.stdout.write(`\n${table(lines)}\n`);
  }
  if (!health.every((h) => h.healthy)) process.exitCode = 1;
}

async function runEnv(_ctx: CommandContext, flags: DirFlags): Promise<void> {
  const state = readState(flags.dir);
  if (!state)
    throw new ClusterError(
      "missing",
      `no cluster in ${resolveDir(flags.dir)}: start one with \`${prog()} cluster up\``,
    );
  process.stdout.write(envExports(state));
}

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length))) ?? [];
  return rows
    .map((r) =>
      r
        .map((cell, i) => cell.padEnd(widths[i] ?? 0))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}
