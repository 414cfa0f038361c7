import { Command, InvalidArgumentError, Option } from "commander";
import { stringify } from "yaml";
import {
  DeployError,
  LOCAL_REGISTRY,
  applyService,
  deleteService,
  formatApplied,
  formatDeleted,
  formatPlan,
  formatRollout,
  formatStatus,
  loadServiceSpec,
  planService,
  pushImageArchive,
  readPushRecord,
  renderService,
  serviceStatus,
  servoConfig,
  servoConfigNotes,
  toYaml,
  writePushRecord,
  type DeployTarget,
  type ImageOptions,
  type Plan,
  type ServiceSpec,
  type SpecOptions,
} from "../deploy/index.js";
import { createProgress } from "../progress.js";
import { action, connect, type CommandContext } from "./common.js";

/**
 * `kubewise deploy`: a service from a short spec. render and servo-config are pure (no cluster);
 * plan, apply, status and delete talk to a cluster; push talks to a registry. Each verb has its
 * flags type and run function, sharing specOptions and imageOptions.
 */

/** SpecFlags are how every deploy verb finds and fills the spec. */
export interface SpecFlags {
  file: string;
  namespace?: string;
  /** var holds `--var key=value` pairs for Opta placeholders such as {parent.domain}. */
  var: Record<string, string>;
}

/** ImageFlags choose the image at render time; see resolveImageOptions for the push record. */
export interface ImageFlags {
  tag?: string;
  digest?: string;
  registry?: string;
}

/** RenderFlags are `deploy render`'s flags. */
export interface RenderFlags extends SpecFlags, ImageFlags {
  output: "yaml" | "json";
}

/** PlanFlags are `deploy plan`'s flags. */
export interface PlanFlags extends SpecFlags, ImageFlags {
  adopt: boolean;
  output: "text" | "json";
}

/** ApplyFlags are `deploy apply`'s flags. */
export interface ApplyFlags extends SpecFlags, ImageFlags {
  wait: boolean;
  /** timeout for the rollout, in ms (the flag takes 300, 300s, 5m, 1m30s). */
  timeout: number;
  rollbackOnFailure: boolean;
  createNamespace: boolean;
  adopt: boolean;
  prune: boolean;
}

/** ServiceFlags find a deployed service: by its spec, or by --name. */
export interface ServiceFlags {
  file?: string;
  name?: string;
  namespace?: string;
  var: Record<string, string>;
}

/** StatusFlags are `deploy status`'s flags. */
export interface StatusFlags extends ServiceFlags {
  output: "text" | "json";
}

/** DeleteFlags are `deploy delete`'s flags. */
export interface DeleteFlags extends ServiceFlags {
  wait: boolean;
  timeout: number;
}

/** PushFlags are `deploy push`'s flags. */
export interface PushFlags extends SpecFlags {
  imageArchive: string;
  registry?: string;
  tag?: string;
  ref?: string;
  plainHttp?: boolean;
}

/** deployCommand is `kubewise deploy`. */
export function deployCommand(): Command {
  const deploy = new Command("deploy").description(
    "deploy a service from a short spec: service.yaml with Opta's k8s-service fields",
  );

  imageOptions(specOptions(deploy.command("render")))
    .description("print the Kubernetes objects for a service spec as multi-document YAML (no cluster needed)")
    .option("-o, --output <format>", "yaml or json", parseOutput, "yaml")
    .action(action(runRender));

  imageOptions(specOptions(deploy.command("plan")))
    .description(
      "show what apply would change: a server-side dry run of every object, diffed with the live one, " +
        "and the objects apply would prune. Exit code 0: no changes; 2: changes; 1: error",
    )
    .option("--adopt", "take over existing objects of the service's names that lack its labels", false)
    .option("-o, --output <format>", "text or json", parseTextOrJson, "text")
    .action(action(runPlan));

  imageOptions(specOptions(deploy.command("apply")))
    .description(
      "server-side apply the service's objects, prune the ones the spec dropped, and wait for the rollout",
    )
    .option("--no-wait", "return once the objects are applied, without waiting for the rollout")
    .option(
      "--timeout <duration>",
      "how long to wait for the rollout: 300, 90s, 5m, 1m30s",
      parseDuration,
      300_000,
    )
    .option(
      "--rollback-on-failure",
      "roll the Deployment back to its previous revision if the rollout fails",
      false,
    )
    .option("--create-namespace", "create the namespace if it does not exist", false)
    .option("--adopt", "take over existing objects of the service's names that lack its labels", false)
    .option("--no-prune", "keep the service's objects that the spec no longer asks for")
    .action(action(runApply));

  serviceOptions(deploy.command("status"))
    .description("show the service's objects, rollout, autoscaler and pods with their problems")
    .option("-o, --output <format>", "text or json", parseTextOrJson, "text")
    .action(action(runStatus));

  serviceOptions(deploy.command("delete"))
    .description("delete every object of the service that kubewise applied, and wait until they are gone")
    .option("--no-wait", "return once the deletes are sent")
    .option("--timeout <duration>", "how long to wait: 300, 90s, 5m", parseDuration, 300_000)
    .action(action(runDelete));

  specOptions(deploy.command("push"))
    .description(
      "push an image archive (OCI layout tar or `docker save` output) to a registry for an `image: AUTO` " +
        "service, and record its digest in .kubewise/deploy/<name>.json beside the spec for render/plan/apply",
    )
    .requiredOption("--image-archive <file>", "image archive: .tar (or .tar.gz)")
    .option("--registry <host>", `registry to push to (default: ${LOCAL_REGISTRY})`)
    .option("--tag <tag>", "tag to push under (default: the archive's own tag, else latest)")
    .option("--ref <name>", "which image of an archive holding several (a tag or name:tag)")
    .option("--plain-http", "talk HTTP to the registry (default only for localhost and 127.0.0.1)")
    .action(action(runPush));

  specOptions(deploy.command("servo-config"))
    .description(
      "print the servo configuration made from the spec's tuning: block (k8s, k8slive, measure and optimizer " +
        "sections) for `kubewise servo run -c FILE`; stderr names any section still to add",
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

/** imageOptions adds the flags that choose the image. */
export function imageOptions(cmd: Command): Command {
  return cmd
    .option(
      "--tag <tag>",
      "image tag: for `image: AUTO`, the tag in the local registry (default: the pushed digest, else latest)",
    )
    .option("--digest <digest>", "pin the image to this digest (sha256:...); wins over --tag")
    .option("--registry <host>", `registry that hosts \`image: AUTO\` images (default: ${LOCAL_REGISTRY})`);
}

/** serviceOptions adds the flags that find a deployed service: a spec file or a name. */
export function serviceOptions(cmd: Command): Command {
  return cmd
    .option("-f, --file <service.yaml>", "service spec file")
    .option("--name <name>", "service name, instead of a spec file")
    .option("-n, --namespace <ns>", "namespace (default: the spec's namespace, else default)")
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

/**
 * resolveImageOptions decides the image of an `image: AUTO` service: --digest, then --tag, then
 * the digest `deploy push` recorded beside the spec (when it was pushed to the same registry),
 * else nothing (the renderer falls back to the tag latest and warns).
 */
export function resolveImageOptions(flags: SpecFlags & ImageFlags, spec: ServiceSpec): ImageOptions {
  const given: ImageOptions = {
    ...(flags.tag === undefined ? {} : { tag: flags.tag }),
    ...(flags.digest === undefined ? {} : { digest: flags.digest }),
    ...(flags.registry === undefined ? {} : { registry: flags.registry }),
  };
  if (spec.image !== "AUTO" || given.tag !== undefined || given.digest !== undefined) return given;
  const record = readPushRecord(flags.file, spec.name);
  if (!record || (given.registry !== undefined && given.registry !== record.registry)) return given;
  return { registry: record.registry, digest: record.digest };
}

/**
 * loadTarget loads, validates and renders the spec for a cluster verb. An `image: AUTO` service
 * with nothing pushed is an error here, since its pods could never pull `latest`.
 */
export function loadTarget(flags: SpecFlags & ImageFlags): { target: DeployTarget; warnings: string[] } {
  const spec = loadSpec(flags);
  const image = resolveImageOptions(flags, spec);
  if (spec.image === "AUTO" && image.tag === undefined && image.digest === undefined) {
    throw new DeployError(
      "invalid",
      `image: AUTO, and nothing is pushed for ${spec.name}: run \`kubewise deploy push -f ${flags.file} --image-archive FILE\` first, or pass --tag or --digest`,
    );
  }
  const result = renderService(spec, {
    ...(flags.namespace === undefined ? {} : { namespace: flags.namespace }),
    ...image,
  });
  const namespace = result.manifests[0]?.metadata.namespace ?? flags.namespace ?? spec.namespace ?? "default";
  return {
    target: { service: spec.name, namespace, manifests: result.manifests },
    warnings: result.warnings,
  };
}

/** renderOutput is `deploy render` without the printing, for tests and callers. */
export function renderOutput(flags: RenderFlags): CommandOutput {
  const spec = loadSpec(flags);
  const result = renderService(spec, {
    ...(flags.namespace === undefined ? {} : { namespace: flags.namespace }),
    ...resolveImageOptions(flags, spec),
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
  return { text: stringify(config, { lineWidth: 0 }), warnings: [...spec.notes, ...servoConfigNotes(spec)] };
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

function warn(warnings: readonly string[]): void {
  for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
}

/** planJson is a plan without the live objects, for -o json. */
export function planJson(plan: Plan): object {
  return {
    service: plan.service,
    namespace: plan.namespace,
    namespaceExists: plan.namespaceExists,
    changed: plan.changed,
    objects: plan.objects.map((o) => ({ ...o.ref, action: o.action, changes: o.changes })),
    prune: plan.prune.map((p) => p.ref),
    kept: plan.kept.map((k) => ({ ...k.ref, why: k.why })),
  };
}

async function runPlan(ctx: CommandContext, flags: PlanFlags): Promise<void> {
  const { target, warnings } = loadTarget(flags);
  warn(warnings);
  const plan = await planService(connect(ctx.global), target, { adopt: flags.adopt });
  process.stdout.write(
    flags.output === "json" ? `${JSON.stringify(planJson(plan), null, 2)}\n` : formatPlan(plan),
  );
  // Like `terraform plan -detailed-exitcode` and `kubectl diff`: scripts can tell "changes" from "error".
  if (plan.changed) process.exitCode = 2;
}

async function runApply(ctx: CommandContext, flags: ApplyFlags): Promise<void> {
  const { target, warnings } = loadTarget(flags);
  warn(warnings);
  const progress = createProgress();
  const report = await applyService(connect(ctx.global), target, {
    adopt: flags.adopt,
    createNamespace: flags.createNamespace,
    prune: flags.prune,
    wait: flags.wait,
    timeoutMs: flags.timeout,
    rollbackOnFailure: flags.rollbackOnFailure,
    signal: ctx.signal,
    onApplied: (r) => process.stdout.write(formatApplied(r)),
    onProgress: (m) => progress.update(m),
  });
  const rollout = report.rollout;
  if (!rollout) return;
  if (rollout.state === "ready") {
    progress.done(rollout.message);
    return;
  }
  progress.fail(`rollout of ${rollout.workload.kind}/${rollout.workload.name} failed`);
  process.stdout.write(formatRollout(rollout));
  process.exitCode = 1;
}

/** serviceOf finds the namespace and name a status or delete is about, and the spec's manifests. */
function serviceOf(flags: ServiceFlags): { namespace: string; service: string; target?: DeployTarget } {
  if (flags.file !== undefined && flags.name !== undefined) {
    throw new DeployError("invalid", "give either -f/--file or --name, not both");
  }
  if (flags.file !== undefined) {
    const spec = loadSpec({
      file: flags.file,
      var: flags.var,
      ...(flags.namespace ? { namespace: flags.namespace } : {}),
    });
    const result = renderService(spec, {
      ...(flags.namespace === undefined ? {} : { namespace: flags.namespace }),
      ...resolveImageOptions({ file: flags.file, var: flags.var }, spec),
    });
    const namespace = result.manifests[0]?.metadata.namespace ?? "default";
    return {
      namespace,
      service: spec.name,
      target: { service: spec.name, namespace, manifests: result.manifests },
    };
  }
  if (flags.name === undefined) throw new DeployError("invalid", "give -f/--file or --name");
  return { namespace: flags.namespace ?? "default", service: flags.name };
}

async function runStatus(ctx: CommandContext, flags: StatusFlags): Promise<void> {
  const { namespace, service, target } = serviceOf(flags);
  const status = await serviceStatus(connect(ctx.global), namespace, service, target?.manifests ?? []);
  process.stdout.write(
    flags.output === "json" ? `${JSON.stringify(status, null, 2)}\n` : formatStatus(status),
  );
}

async function runDelete(ctx: CommandContext, flags: DeleteFlags): Promise<void> {
  const { namespace, service } = serviceOf(flags);
  const progress = createProgress();
  const report = await deleteService(connect(ctx.global), namespace, service, {
    wait: flags.wait,
    timeoutMs: flags.timeout,
    signal: ctx.signal,
    onProgress: (m) => progress.update(m),
  });
  if (flags.wait && report.deleted.length > 0) progress.done(`${report.deleted.length} object(s) gone`);
  process.stdout.write(formatDeleted(namespace, service, report));
}

async function runPush(_ctx: CommandContext, flags: PushFlags): Promise<void> {
  const spec = loadSpec(flags);
  if (spec.image !== "AUTO") {
    throw new DeployError(
      "invalid",
      `image: ${spec.image} is an external image; push serves \`image: AUTO\` services, whose image lives in the local registry`,
    );
  }
  const progress = createProgress();
  const result = await pushImageArchive(flags.imageArchive, {
    repository: spec.name,
    ...(flags.registry === undefined ? {} : { registry: flags.registry }),
    ...(flags.tag === undefined ? {} : { tag: flags.tag }),
    ...(flags.ref === undefined ? {} : { ref: flags.ref }),
    ...(flags.plainHttp ? { plainHttp: true } : {}),
    onProgress: (m) => progress.update(m),
  });
  const file = writePushRecord(flags.file, result, spec.name, new Date());
  progress.done(
    `pushed ${result.registry}/${result.repository}:${result.tag}: ${result.blobsUploaded} blob(s) uploaded (${result.bytesUploaded} bytes), ${result.blobsSkipped} already there`,
  );
  process.stdout.write(`${result.image}\nrecorded in ${file}; render, plan and apply now use this digest\n`);
}

/** parseDuration reads 300 (seconds), 90s, 5m, 1h or 1m30s into milliseconds. */
export function parseDuration(value: string): number {
  const plain = Number(value);
  if (value.trim() !== "" && Number.isFinite(plain) && plain > 0) return plain * 1000;
  const match = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?$/.exec(value.trim());
  const ms = match
    ? (Number(match[1] ?? 0) * 3600 + Number(match[2] ?? 0) * 60 + Number(match[3] ?? 0)) * 1000
    : 0;
  if (!match || ms <= 0) throw new InvalidArgumentError("takes a duration such as 300, 90s, 5m or 1m30s");
  return ms;
}

function parseTextOrJson(value: string): "text" | "json" {
  if (value !== "text" && value !== "json") throw new InvalidArgumentError("--output takes text or json");
  return value;
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
