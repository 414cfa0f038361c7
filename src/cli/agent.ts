/**
 * `kubewise agent run`: the node agent, one per node (the DaemonSet in manifests/agent runs it).
 */
import { Command, InvalidArgumentError, Option } from "commander";
import {
  apiServerPodSources,
  loadAgentConfig,
  NodeAgent,
  parseAgentConfig,
  parseListen,
  UNHEALTHY_AFTER,
} from "../agent/index.js";
import { action, connect, type CommandContext } from "./common.js";

/** AgentRunFlags are the flags of `kubewise agent run`; each overrides its agent.yaml field. */
interface AgentRunFlags {
  config?: string;
  nodeName?: string;
  cgroupRoot?: string;
  listen?: string;
  podSource?: "apiserver" | "kubelet";
  once: boolean;
}

/** agentCommand builds the `agent` command group. */
export function agentCommand(): Command {
  const agent = new Command("agent").description(
    "node agent: per-pod cgroup metrics (task_*) and cpu quota/shares/cpuset allocation on this node",
  );
  agent
    .command("run")
    .description(
      "watch this node's pods, serve their cgroup metrics at /metrics and apply allocations (if enabled) " +
        "until SIGTERM",
    )
    .option("-c, --config <file>", "agent.yaml (default: every setting at its default)")
    .option("--node-name <name>", "this node's name (default: $NODE_NAME, then node_name in agent.yaml)")
    .option(
      "--cgroup-root <dir>",
      "where the cgroup hierarchy is mounted (default: cgroup_root, /sys/fs/cgroup)",
    )
    .option(
      "--listen <host:port>",
      "serve /metrics, /healthz (503 once " +
        `${UNHEALTHY_AFTER} iterations in a row failed) and /livez here; "" for no server ` +
        "(default: listen, 127.0.0.1:9477)",
      checkListen,
    )
    .addOption(
      new Option(
        "--pod-source <source>",
        "where the node's pods come from (default: pod_source, apiserver)",
      ).choices(["apiserver", "kubelet"]),
    )
    .option("--once", "run one iteration, print the metrics and exit (non-zero if it failed)", false)
    .action(action(runAgent));
  return agent;
}

function checkListen(value: string): string {
  if (value === "") return value;
  try {
    parseListen(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
  return value;
}

async function runAgent(ctx: CommandContext, flags: AgentRunFlags): Promise<void> {
  const config = flags.config ? loadAgentConfig(flags.config) : parseAgentConfig({});
  const node = new NodeAgent({
    config,
    log: ctx.log,
    nodeName: flags.nodeName ?? process.env.NODE_NAME ?? config.node_name,
    cgroupRoot: flags.cgroupRoot,
    listen: flags.once ? "" : flags.listen,
    podSource: flags.podSource,
    apiServerSource: apiServerPodSources(() => connect(ctx.global), ctx.log),
  });
  if (flags.once) {
    try {
      const report = await node.runner.runOnce();
      process.stdout.write(await node.metrics.exposition());
      if (report.error) throw report.error;
    } finally {
      // The API-server source holds watches that would keep the process alive.
      await node.source.stop?.();
    }
    return;
  }
  await node.start();
  await new Promise<void>((resolve) => {
    if (ctx.signal.aborted) resolve();
    ctx.signal.addEventListener("abort", () => resolve(), { once: true });
  });
  await node.stop();
}
