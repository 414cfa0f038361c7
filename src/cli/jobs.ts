/**
 * `kubewise jobs`: the batch-job watcher and reporter (seed 001), the admission webhook that
 * applies tuned settings to new job pods, the webhook's certificate and its registration, and
 * `jobs tune`, the servo that tunes an app id's jobs through the settings ConfigMap of their
 * namespace, which the webhook applies to that namespace's new job pods.
 */
import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Command, InvalidArgumentError, Option } from "commander";
import {
  ConfigMapSettings,
  checkServingPair,
  dnsLabelProblem,
  ipAddressProblem,
  webhookTimeoutProblem,
  webhookUrlProblem,
  JobPodWatcher,
  JobsError,
  JobsWatch,
  SettingsFile,
  WEBHOOK_CONFIGURATION,
  WebhookServer,
  createServingCertificate,
  jobsTuneConnectors,
  loadJobsTuneConfig,
  registerWebhook,
  resolveWatchConfig,
  resolveWebhookConfig,
  webhookDnsNames,
  type JobsWatchFlags,
  type JobsWebhookFlags,
  type SettingsSource,
  namespaceListProblem,
  parseNamespaces,
  releaseAllReportFinalizers,
  type WebhookEndpoint,
} from "../jobs/index.js";
import {
  HttpTransport,
  InProcessTransport,
  LocalOptimizer,
  Servo,
  ServoError,
  TrialStore,
} from "../servo/index.js";
import {
  action,
  connect,
  packageVersion,
  parseIntFlag,
  readToken,
  withOptimizerFlags,
  type CommandContext,
  type OptimizerFlags,
} from "./common.js";

/** CertFlags are the flags of `kubewise jobs cert`. */
export interface CertFlags {
  service: string;
  namespace: string;
  outDir: string;
  ip: string[];
  days: number;
}

/** WebhookFlags are the flags of `kubewise jobs webhook`: the shared ones and where settings come from. */
export interface WebhookFlags extends JobsWebhookFlags {
  /** onlyNamespace follows the settings ConfigMap of this namespace alone, not every namespace's. */
  onlyNamespace?: string;
  /** settingsNamespace is the removed flag, refused with what to use instead. */
  settingsNamespace?: string;
  /** reportFinalizer adds the report finalizer to job pods (for a `jobs watch` running beside it). */
  reportFinalizer?: boolean;
}

/** InstallWebhookFlags are the flags of `kubewise jobs install-webhook`. */
export interface InstallWebhookFlags {
  caFile: string;
  url?: string;
  service: string;
  serviceNamespace: string;
  name: string;
  onlyNamespace: string[];
  timeout: number;
}

/** TuneFlags are the flags of `kubewise jobs tune`. */
export interface TuneFlags extends OptimizerFlags {
  config: string;
}

/** jobsCommand builds the `jobs` command group. */
export function jobsCommand(): Command {
  const jobs = new Command("jobs").description(
    "measure batch jobs: report the run time and resources of every finished job pod to the " +
      "optimizer exactly once, and apply the tuned settings to new job pods",
  );
  jobs
    .command("watch")
    .description(
      "watch pods in the namespaces and report each job pod that finishes (Succeeded or Failed) as a " +
        "servo MEASUREMENT. Configured by the environment (OPTUNE_URL, OPTUNE_ACCOUNT, OPTUNE_AUTH_TOKEN, " +
        "POD_NAMESPACES, OPTUNE_APP_ID); each flag overrides its variable.",
    )
    .option("--url <template>", "where to POST, with {acct} and {app_id} (env OPTUNE_URL)")
    .option("--account <name>", "the {acct} in the URL (env OPTUNE_ACCOUNT)")
    .option(
      "--token-file <file>",
      "file holding the bearer token (env OPTUNE_AUTH_TOKEN holds the token itself)",
    )
    .option(
      "--namespaces <list>",
      'comma-separated namespaces to watch (env POD_NAMESPACES, default "default")',
    )
    .option(
      "--app-id-path <path>",
      "where a pod's app id is (env OPTUNE_APP_ID, default spec/containers/0/env/[JOBID])",
    )
    .option(
      "--outbox <file>",
      "the outbox of undelivered reports; keep it on a volume (default .kubewise/jobs/outbox.sqlite)",
    )
    .action(action(runWatch));
  jobs
    .command("webhook")
    .description(
      "serve the mutating admission webhook (HTTPS, POST /mutate, GET /healthz) that applies to each new " +
        "job pod the latest tuned cpu, mem and env for its app id from the kubewise-jobs-settings ConfigMap " +
        "of the pod's own namespace (the one `jobs tune` writes). By default it watches those ConfigMaps in " +
        "every namespace, which needs list and watch on them cluster-wide; a change applies at once.",
    )
    .option("--listen <host:port>", "address to listen on", "127.0.0.1:8443")
    .option("--cert-file <file>", "PEM serving certificate; re-read when it changes (e.g. a Secret volume)")
    .option("--key-file <file>", "PEM private key of the certificate")
    .option(
      "--only-namespace <namespace>",
      "watch only this namespace's kubewise-jobs-settings ConfigMap (for an account that may read it there " +
        "only); job pods of every other namespace are admitted unchanged",
    )
    .option(
      "--settings-file <file>",
      "apply this one JobSettings document (a settings.yaml) to job pods of every namespace instead of " +
        "each namespace's ConfigMap; re-read on change",
    )
    .addOption(new Option("--settings-namespace <namespace>").hideHelp())
    .option("--app-id-path <path>", "where a pod's app id is (env OPTUNE_APP_ID)")
    .option(
      "--report-finalizer",
      "also add the finalizer jobs.kubewise.io/report to every job pod, so that a pod deleted while " +
        "`jobs watch` is down stays until the watcher has queued its report (only with a watcher running: " +
        "it releases the pods; `jobs release-finalizers` frees them if it is gone for good)",
    )
    .action(action(runWebhook));
  jobs
    .command("cert")
    .description(
      "make a CA and a serving certificate for the webhook's Service; writes ca.crt (for the " +
        "MutatingWebhookConfiguration's caBundle), tls.crt and tls.key (for the webhook's Secret), " +
        "and prints the CA base64-encoded, as caBundle takes it",
    )
    .option(
      "--service <name>",
      "the webhook's Service name",
      checked(dnsLabelProblem, "--service"),
      "kubewise-jobs-webhook",
    )
    .option(
      "--namespace <name>",
      "the webhook's namespace",
      checked(dnsLabelProblem, "--namespace"),
      "kubewise-system",
    )
    .option(
      "--ip <address>",
      "an IP address to add to the certificate (repeatable)",
      (value: string, previous: string[]) => collect(checked(ipAddressProblem, "--ip")(value), previous),
      [],
    )
    .option("--days <n>", "validity in days", parseIntFlag("days", 1), 365)
    .requiredOption("--out-dir <dir>", "folder to write ca.crt, tls.crt and tls.key to")
    .action(action(runCert));
  jobs
    .command("install-webhook")
    .description(
      "create or update the MutatingWebhookConfiguration that sends new job pods (label " +
        'jobs.kubewise.io/job: "true") to the webhook, with the CA of its certificate as caBundle; ' +
        "failurePolicy Ignore, so pods are never held up when the webhook is down",
    )
    .requiredOption(
      "--ca-file <file>",
      "the CA that signed the webhook's certificate (ca.crt of `jobs cert`)",
    )
    .option(
      "--url <url>",
      "call the webhook at this https URL (e.g. https://127.0.0.1:8443/mutate) instead of a Service",
      checked(webhookUrlProblem, "--url"),
    )
    .option(
      "--service <name>",
      "the webhook's Service",
      checked(dnsLabelProblem, "--service"),
      "kubewise-jobs-webhook",
    )
    .option(
      "--service-namespace <name>",
      "the webhook Service's namespace",
      checked(dnsLabelProblem, "--service-namespace"),
      "kubewise-system",
    )
    .option("--name <name>", "the MutatingWebhookConfiguration's name", WEBHOOK_CONFIGURATION)
    .option(
      "--only-namespace <name>",
      "send only pods of this namespace (repeatable; default: every namespace but the system ones)",
      collect,
      [],
    )
    .option(
      "--timeout <seconds>",
      "how long the API server waits for the webhook (1-30)",
      (value: string) => Number(checked(webhookTimeoutProblem, "--timeout")(value)),
      5,
    )
    .action(action(runInstallWebhook));
  jobs
    .command("release-finalizers")
    .description(
      "remove the finalizer jobs.kubewise.io/report (added by `jobs webhook --report-finalizer`) from every " +
        "pod holding it: for when the watcher is gone for good and deleted job pods would stay Terminating. " +
        "Their reports are not sent.",
    )
    .option(
      "--namespaces <list>",
      "comma-separated namespaces (default: every namespace)",
      (text: string) => {
        const problem = namespaceListProblem(text);
        if (problem !== "") throw new InvalidArgumentError(problem);
        return parseNamespaces(text);
      },
    )
    .action(action(runReleaseFinalizers));
  const tune = jobs
    .command("tune")
    .description(
      "tune the cpu, mem and env of one app id's job pods: a servo whose ADJUST writes the settings to the " +
        "kubewise-jobs-settings ConfigMap (applied to new job pods by `jobs webhook`) and whose MEASURE " +
        "measures the app id's job runs. With no --optimizer it runs the local optimizer of the file's " +
        "optimizer section in-process and prints the study summary when the study ends.",
    )
    .requiredOption(
      "-c, --config <file>",
      "tune configuration (namespace, app_id, settings, env, resources, measure, optimizer)",
    );
  withOptimizerFlags(tune).action(action(runTune));
  return jobs;
}

async function runWatch(ctx: CommandContext, flags: JobsWatchFlags): Promise<void> {
  const config = resolveWatchConfig(flags);
  const source = new JobPodWatcher({
    client: connect(ctx.global),
    namespaces: config.namespaces,
    namespacesFrom: config.namespacesFrom,
    log: ctx.log,
  });
  const reporter = { userAgent: `kubewise/${packageVersion()}` };
  const watch = new JobsWatch({ config, source, log: ctx.log, reporter });
  await watch.start();
  try {
    await aborted(ctx.signal);
  } finally {
    await watch.stop();
  }
}

async function runWebhook(ctx: CommandContext, flags: WebhookFlags): Promise<void> {
  const config = resolveWebhookConfig(flags);
  const onlyNamespace = checkSettingsFlags(flags, config.settingsFile);
  const pair = readCertificate(config.certFile, config.keyFile);
  const { settings, stop: stopSettings } = await settingsSource(ctx, config.settingsFile, onlyNamespace);
  const server = new WebhookServer({
    host: config.host,
    port: config.port,
    certPem: pair.cert,
    keyPem: pair.key,
    appIdPath: config.appIdPath,
    settings,
    reportFinalizer: flags.reportFinalizer === true,
    log: ctx.log,
  });
  await server.start();
  // A Secret volume is updated in place when the certificate is rotated; pick it up.
  let stamp = pair.stamp;
  const timer = setInterval(() => {
    try {
      const next = readCertificate(config.certFile, config.keyFile);
      if (next.stamp === stamp) return;
      server.setCertificate(next.cert, next.key);
      stamp = next.stamp;
    } catch (err) {
      ctx.log.warn({ err }, "cannot reload the serving certificate; keeping the current one");
    }
  }, 30_000);
  try {
    await aborted(ctx.signal);
  } finally {
    clearInterval(timer);
    await server.stop();
    await stopSettings();
  }
}

// checkSettingsFlags refuses the removed --settings-namespace and a settings file combined with
// --only-namespace, and returns the checked --only-namespace.
function checkSettingsFlags(flags: WebhookFlags, file: string | undefined): string | undefined {
  if (flags.settingsNamespace !== undefined) {
    throw new JobsError(
      "settings",
      "--settings-namespace was removed: the webhook now applies to each pod the kubewise-jobs-settings " +
        "ConfigMap of the pod's own namespace, watching every namespace by default; drop the flag, or " +
        `use --only-namespace ${flags.settingsNamespace} to watch that namespace's ConfigMap alone`,
    );
  }
  const only = flags.onlyNamespace;
  if (only === undefined) return undefined;
  if (file !== undefined) {
    throw new JobsError(
      "settings",
      "use --settings-file or --only-namespace, not both: a settings file applies to every namespace",
    );
  }
  if (only.length > 63 || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(only)) {
    throw new JobsError(
      "settings",
      `--only-namespace ${JSON.stringify(only)} is not a namespace name (lower-case letters, digits and '-', at most 63)`,
    );
  }
  return only;
}

// settingsSource picks where the webhook reads tuned settings: one file for every namespace, or
// the settings ConfigMap of each pod's namespace through the API (of one namespace only, with
// --only-namespace).
async function settingsSource(
  ctx: CommandContext,
  file: string | undefined,
  onlyNamespace: string | undefined,
): Promise<{ settings: SettingsSource; stop: () => Promise<void> }> {
  if (file !== undefined) {
    ctx.log.info({ file }, "applying the settings file to job pods of every namespace");
    return { settings: await SettingsFile.open(file, ctx.log), stop: async () => {} };
  }
  const client = connect(ctx.global);
  const settings = new ConfigMapSettings({ client, namespace: onlyNamespace, log: ctx.log });
  await settings.start();
  const found = settings.namespaces();
  if (onlyNamespace === undefined) {
    ctx.log.info({ namespaces: found }, "following the settings ConfigMap of every namespace");
  } else {
    ctx.log.info(
      { namespace: onlyNamespace, found: found.length > 0 },
      "following the settings ConfigMap of one namespace; job pods of other namespaces are admitted unchanged",
    );
  }
  return { settings, stop: () => settings.stop() };
}

async function runReleaseFinalizers(ctx: CommandContext, flags: { namespaces?: string[] }): Promise<void> {
  const released = await releaseAllReportFinalizers(connect(ctx.global), flags.namespaces ?? []);
  ctx.log.info(
    { released: released.length, pods: released },
    released.length === 0 ? "no pod holds the report finalizer" : "report finalizers released",
  );
}

async function runInstallWebhook(ctx: CommandContext, flags: InstallWebhookFlags): Promise<void> {
  let caPem: string;
  try {
    caPem = readFileSync(flags.caFile, "utf8");
  } catch (err) {
    throw new JobsError("certificate", `cannot read --ca-file ${flags.caFile}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const endpoint: WebhookEndpoint =
    flags.url !== undefined
      ? { url: flags.url }
      : { service: { name: flags.service, namespace: flags.serviceNamespace } };
  const result = await registerWebhook(connect(ctx.global), {
    name: flags.name,
    endpoint,
    caPem,
    namespaces: flags.onlyNamespace,
    timeoutSeconds: flags.timeout,
  });
  const calls = "url" in endpoint ? endpoint.url : `service ${flags.serviceNamespace}/${flags.service}`;
  ctx.log.info({ name: flags.name, result, calls }, "webhook registered");
}

async function runTune(ctx: CommandContext, flags: TuneFlags): Promise<void> {
  const config = loadJobsTuneConfig(flags.config);
  const client = connect(ctx.global);
  const { adjuster, measurer } = jobsTuneConnectors(client, config, { log: ctx.log });
  const agent = `kubewise/${packageVersion()}`;
  const maxSleepSeconds = flags.maxSleep;
  const parts = { adjusters: [adjuster], measurer, log: ctx.log, agent, maxSleepSeconds };
  if (flags.optimizer !== undefined) {
    const token = readToken(flags.tokenFile);
    const transport = new HttpTransport({ url: flags.optimizer, token, agent, log: ctx.log });
    await new Servo({ ...parts, transport }).run(ctx.signal);
    return;
  }
  if (config.optimizer === undefined) {
    throw new ServoError(
      "invalid-config",
      `${flags.config}: no --optimizer URL and no optimizer section: add an optimizer section (objective, max_trials, ...) to run the local optimizer`,
    );
  }
  const store = TrialStore.open(config.optimizer.db);
  try {
    const optimizer = new LocalOptimizer({ config: config.optimizer, store, log: ctx.log });
    const servo = new Servo({ ...parts, transport: new InProcessTransport(optimizer) });
    await servo.run(ctx.signal, (last) => last.cmd === "SLEEP" && optimizer.summary().done !== undefined);
    process.stdout.write(`${JSON.stringify(optimizer.summary(), null, 2)}\n`);
  } finally {
    store.close();
  }
}

async function runCert(ctx: CommandContext, flags: CertFlags): Promise<void> {
  const cert = await createServingCertificate({
    dnsNames: webhookDnsNames(flags.service, flags.namespace),
    ipAddresses: flags.ip,
    validDays: flags.days,
  });
  mkdirSync(flags.outDir, { recursive: true });
  writeFileSync(join(flags.outDir, "ca.crt"), cert.caPem);
  writeFileSync(join(flags.outDir, "tls.crt"), cert.certPem);
  writeFileSync(join(flags.outDir, "tls.key"), cert.keyPem, { mode: 0o600 });
  ctx.log.info(
    { out_dir: flags.outDir, not_after: cert.notAfter.toISOString() },
    "webhook certificate written",
  );
  process.stdout.write(`${Buffer.from(cert.caPem).toString("base64")}\n`);
}

// readCertificate reads the serving pair and checks it (checkServingPair), so that a wrong file
// is named at start, and a half-written rotation is not taken up.
function readCertificate(certFile: string, keyFile: string): { cert: string; key: string; stamp: string } {
  let pair: { cert: string; key: string; stamp: string };
  try {
    const cert = readFileSync(certFile, "utf8");
    const key = readFileSync(keyFile, "utf8");
    const stamp = [certFile, keyFile].map((f) => `${statSync(f).mtimeMs}:${statSync(f).ino}`).join("|");
    pair = { cert, key, stamp };
  } catch (err) {
    throw new JobsError("certificate", `cannot read the serving certificate: ${(err as Error).message}`, {
      cause: err,
    });
  }
  checkServingPair(pair.cert, pair.key, { certFile, keyFile });
  return pair;
}

// checked turns a "problem" function ("" when the value is fine) into a commander argument parser.
function checked(problem: (flag: string, value: string) => string, flag: string): (value: string) => string {
  return (value: string) => {
    const found = problem(flag, value);
    if (found !== "") throw new InvalidArgumentError(found);
    return value;
  };
}

function aborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
