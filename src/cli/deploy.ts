import { Command, InvalidArgumentError, Option } from "commander";
import { stringify } from "yaml";
import {
  loadServiceSpec,
  renderService,
  servoConfig,
  toYaml,
  type ServiceSpec,
  type SpecOptions,
} from "../deploy/index.js";
import { action, type CommandContext } from "./common.js";

/**
 * `kubewise deploy`: a service from a short spec. render and servo-config are pure (no cluster);
 * the verbs that talk to a cluster (plan, apply, status, delete, push) are added here as they
 * land, each with its flags type and run function, sharing specOptions.
 */

/** SpecFlags are how every deploy verb finds and fills the spec. */
export interface SpecFlags {
  file: string;
  namespace?: string;
  /** var holds `--var key=value` pairs for Opta placeholders such as {parent.domain}. */
  var: Record<string, string>;
}

/** RenderFlags are `deploy render`'s flags. */
export interface RenderFlags extends SpecFlags {
  tag?: string;
  digest?: string;
  registry?: string;
  output: "yaml" | "json";
}

/** deployCommand is `kubewise deploy`. */
export function deployCommand(): Command {
  const deploy = new Command("deploy").description(
    "deploy a service from a short spec: service.yaml with Opta's k8s-service fields",
  );

  specOptions(deploy.command("render"))
    .description("print the Kubernetes objects for a service spec as multi-document YAML (no cluster needed)")
    .option(
      "--tag <tag>",
      "image tag: for `image: AUTO`, the tag pushed to the local registry (default: latest)",
    )
    .option("--digest <digest>", "pin the image to this digest (sha256:...); wins over --tag")
    .option("--registry <host>", "registry that hosts `image: AUTO` images (default: localhost:5000)")
    .option("-o, --output <format>", "yaml or json", parseOutput, "yaml")
    .action(action(runRender));

  specOptions(deploy.command("servo-config"))
    .description(
      "print the servo configuration (k8s and k8slive sections) made from the spec's tuning: block",
    )
    .action(action(runServoConfig));
  return deploy;
}

/** specOptions adds the flags that locate and fill a spec. */
export function specOptions(cmd: Command): Command {
  return cmd
    .requiredOption("-f, --file <service.yaml>", "service spec file")
    .option(
      "-n, --namespace <ns>",
      "namespace for every object (default: the spec's namespace, else default)",
    )
    .addOption(
      new Option("--var <key=value>", "value for an Opta placeholder such as {parent.domain}; repeatable")
        .argParser(collectVar)
        .default({}, "none"),
    );
}

/** loadSpec loads the spec named by the flags, filling placeholders. */
export function loadSpec(flags: SpecFlags): ServiceSpec {
  const options: SpecOptions = { variables: flags.var };
  if (flags.namespace !== undefined) options.namespace = flags.namespace;
  return loadServiceSpec(flags.file, options);
}

/** CommandOutput is what a deploy verb prints: the document on stdout, warnings on stderr. */
export interface CommandOutput {
  text: string;
  warnings: string[];
}

/** renderOutput is `deploy render` without the printing, for tests and callers. */
export function renderOutput(flags: RenderFlags): CommandOutput {
  const spec = loadSpec(flags);
  const result = renderService(spec, {
    ...(flags.namespace === undefined ? {} : { namespace: flags.namespace }),
    ...(flags.tag === undefined ? {} : { tag: flags.tag }),
    ...(flags.digest === undefined ? {} : { digest: flags.digest }),
    ...(flags.registry === undefined ? {} : { registry: flags.registry }),
  });
  const text =
    flags.output === "json"
      ? `${JSON.stringify({ apiVersion: "v1", kind: "List", items: result.manifests }, null, 2)}\n`
      : toYaml(result.manifests);
  return { text, warnings: result.warnings };
}

/** servoConfigOutput is `deploy servo-config` without the printing. */
export function servoConfigOutput(flags: SpecFlags): CommandOutput {
  const spec = loadSpec(flags);
  const config = servoConfig(spec, flags.namespace === undefined ? {} : { namespace: flags.namespace });
  return { text: stringify(config, { lineWidth: 0 }), warnings: spec.notes };
}

function print(output: CommandOutput): void {
  for (const w of output.warnings) process.stderr.write(`warning: ${w}\n`);
  process.stdout.write(output.text);
}

async function runRender(_ctx: CommandContext, flags: RenderFlags): Promise<void> {
  print(renderOutput(flags));
}

async function runServoConfig(_ctx: CommandContext, flags: SpecFlags): Promise<void> {
  print(servoConfigOutput(flags));
}

function collectVar(value: string, previous: Record<string, string>): Record<string, string> {
  const eq = value.indexOf("=");
  if (eq <= 0) throw new InvalidArgumentError("--var takes key=value, e.g. --var parent.domain=example.com");
  return { ...previous, [value.slice(0, eq)]: value.slice(eq + 1) };
}

function parseOutput(value: string): "yaml" | "json" {
  if (value !== "yaml" && value !== "json") throw new InvalidArgumentError("--output takes yaml or json");
  return value;
}
