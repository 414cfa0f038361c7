/**
 * `kubewise jobs`: the batch-job watcher and reporter (seed 001), the admission webhook that
 * applies tuned settings to new job pods, and the webhook's certificate.
 */
import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Command } from "commander";
import {
  JobsError,
  JobsWatch,
  SettingsFile,
  WebhookServer,
  createServingCertificate,
  resolveWatchConfig,
  resolveWebhookConfig,
  webhookDnsNames,
  type JobPodSource,
  type JobsWatchConfig,
  type JobsWatchFlags,
  type JobsWebhookFlags,
} from "../jobs/index.js";
import { action, packageVersion, parseIntFlag, type CommandContext } from "./common.js";

/** CertFlags are the flags of `kubewise jobs cert`. */
export interface CertFlags {
  service: string;
  namespace: string;
  outDir: string;
  ip: string[];
  days: number;
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
      "serve the mutating admission webhook (HTTPS, POST /mutate, GET /healthz) that applies the latest " +
        "tuned cpu, mem and env for a pod's app id to each new job pod",
    )
    .option("--listen <host:port>", "address to listen on", "127.0.0.1:8443")
    .option("--cert-file <file>", "PEM serving certificate; re-read when it changes (e.g. a Secret volume)")
    .option("--key-file <file>", "PEM private key of the certificate")
    .option(
      "--settings-file <file>",
      "JobSettings document (the kubewise-jobs-settings ConfigMap's settings.yaml, mounted); re-read on change",
    )
    .option("--app-id-path <path>", "where a pod's app id is (env OPTUNE_APP_ID)")
    .action(action(runWebhook));
  jobs
    .command("cert")
    .description(
      "make a CA and a serving certificate for the webhook's Service; writes ca.crt (for the " +
        "MutatingWebhookConfiguration's caBundle), tls.crt and tls.key (for the webhook's Secret), " +
        "and prints the CA base64-encoded, as caBundle takes it",
    )
    .option("--service <name>", "the webhook's Service name", "kubewise-jobs-webhook")
    .option("--namespace <name>", "the webhook's namespace", "kubewise-system")
    .option("--ip <address>", "an IP address to add to the certificate (repeatable)", collect, [])
    .option("--days <n>", "validity in days", parseIntFlag("days", 1), 365)
    .requiredOption("--out-dir <dir>", "folder to write ca.crt, tls.crt and tls.key to")
    .action(action(runCert));
  return jobs;
}

async function runWatch(ctx: CommandContext, flags: JobsWatchFlags): Promise<void> {
  const config = resolveWatchConfig(flags);
  const source = await podSourceFor(ctx, config);
  const reporter = { userAgent: `kubewise/${packageVersion()}` };
  const watch = new JobsWatch({ config, source, log: ctx.log, reporter });
  await watch.start();
  try {
    await aborted(ctx.signal);
  } finally {
    await watch.stop();
  }
}

/**
 * podSourceFor is the seam between `jobs watch` and Kubernetes: the pod watch over the
 * configured namespaces and the reported annotation, built on src/kube in
 * src/jobs/watcher.ts. Until that file lands, the command stops here with a clear error after
 * validating its configuration.
 */
async function podSourceFor(_ctx: CommandContext, _config: JobsWatchConfig): Promise<JobPodSource> {
  throw new JobsError(
    "not-wired",
    "jobs watch: the Kubernetes pod watcher (src/jobs/watcher.ts) is not part of this build yet",
  );
}

async function runWebhook(ctx: CommandContext, flags: JobsWebhookFlags): Promise<void> {
  const config = resolveWebhookConfig(flags);
  const pair = readCertificate(config.certFile, config.keyFile);
  const settings = config.settingsFile
    ? await SettingsFile.open(config.settingsFile, ctx.log)
    : { settingsFor: async () => undefined };
  if (!config.settingsFile) ctx.log.warn("no --settings-file: pods are admitted unchanged");
  const server = new WebhookServer({
    host: config.host,
    port: config.port,
    certPem: pair.cert,
    keyPem: pair.key,
    appIdPath: config.appIdPath,
    settings,
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

function readCertificate(certFile: string, keyFile: string): { cert: string; key: string; stamp: string } {
  try {
    const cert = readFileSync(certFile, "utf8");
    const key = readFileSync(keyFile, "utf8");
    const stamp = [certFile, keyFile].map((f) => `${statSync(f).mtimeMs}:${statSync(f).ino}`).join("|");
    return { cert, key, stamp };
  } catch (err) {
    throw new JobsError("certificate", `cannot read the serving certificate: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

function aborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
