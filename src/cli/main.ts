#!/usr/bin/env node
/**
 * The kubewise command. The root only assembles the command groups and the global flags; each
 * group lives in its own file with its flags type, its command() and its run function.
 */
import { Command } from "commander";
import { packageVersion } from "./common.js";
import { clusterCommand } from "./cluster.js";
import { servoCommand } from "./servo.js";
import { demoCommand } from "./demo.js";
import { optimizerCommand } from "./optimizer.js";
import { swarmCommand } from "./swarm.js";
import { agentCommand } from "./agent.js";
import { jobsCommand } from "./jobs.js";
import { deployCommand } from "./deploy.js";
// command groups: one import and one addCommand line each, in the order of `kubewise --help`

export function program(): Command {
  const root = new Command("kubewise")
    .description(
      "Run workloads on Kubernetes well: deploy a service from a short spec, measure services and " +
        "batch jobs, tune cpu/memory/env on a tuning pod, monitor and allocate node resources, and " +
        "spread work deterministically over a worker pool.\n\n" +
        "With no --kubeconfig (and no KUBECONFIG), commands use the embedded local cluster that " +
        "`kubewise cluster up` starts, if it is running, else ~/.kube/config or the in-cluster account.",
    )
    .version(packageVersion(), "-V, --version", "print the kubewise version")
    .option("-v, --verbose", "more log output, and the causes of errors", false)
    .option(
      "--kubeconfig <file>",
      "kubeconfig file to use (default: $KUBECONFIG, the local cluster, ~/.kube/config)",
    )
    .option("--context <name>", "kubeconfig context to use (default: the current context)")
    .showHelpAfterError("(run with --help for usage)")
    .configureHelp({ sortSubcommands: false, showGlobalOptions: true });
  root.addCommand(demoCommand());
  root.addCommand(clusterCommand());
  root.addCommand(servoCommand());
  root.addCommand(optimizerCommand());
  root.addCommand(swarmCommand());
  root.addCommand(agentCommand());
  root.addCommand(jobsCommand());
  root.addCommand(deployCommand());
  return root;
}

await program().parseAsync(process.argv);
