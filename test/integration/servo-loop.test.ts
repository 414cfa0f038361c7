/**
 * The servo end to end on the embedded cluster: the servo loop over HTTP against the local
 * optimizer's server, and the one-shot CLI commands (JSON out, exit codes, config errors).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { readFileSync } from "node:fs";
import { applyObject, waitForRollout, type V1Deployment } from "../../src/kube/index.js";
import {
  HttpTransport,
  LocalOptimizer,
  Servo,
  TrialStore,
  assembleServo,
  optimizerConfigSchema,
  parseServoConfig,
} from "../../src/servo/index.js";
import { startOptimizerServer } from "../../src/servo/optimizer/index.js";
import { eventually, testCluster, testNamespace } from "./support/cluster.js";

async function demoApp(namespace: string): Promise<void> {
  const labels = { app: "web-main" };
  const d: V1Deployment = {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "web-main", namespace },
    spec: {
      replicas: 1,
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
  await applyObject(testCluster().client, d);
  await waitForRollout(testCluster().client, namespace, "web-main", { timeoutMs: 60_000 });
}

function demoDoc(namespace: string, db: string): Record<string, Record<string, unknown>> {
  const doc = parse(readFileSync("examples/servo/demo.yaml", "utf8")) as Record<
    string,
    Record<string, unknown>
  >;
  (doc.k8s as Record<string, unknown>).namespace = namespace;
  Object.assign(doc.optimizer as Record<string, unknown>, { db, max_trials: 4, study: "loop" });
  return doc;
}

test("Verifies the servo loop over HTTP against the optimizer server: trials on the tuning pod, best applied, GOODBYE", async (t) => {
  const { client } = testCluster();
  const ns = await testNamespace(t, "servo-loop");
  await demoApp(ns);
  const dir = mkdtempSync(join(tmpdir(), "kubewise-loop-"));
  const config = parseServoConfig(demoDoc(ns, join(dir, "opt.db")), "demo.yaml");
  const optimizerConfig = optimizerConfigSchema.parse(config.optimizer);
  const store = TrialStore.open(optimizerConfig.db);
  t.after(() => store.close());
  const optimizer = new LocalOptimizer({ config: optimizerConfig, store });
  const server = await startOptimizerServer({ optimizerFor: () => optimizer, token: "t0ken" });
  t.after(() => server.close());
  const url = `${server.url}/accounts/acme/applications/web/servo`;
  const servo = new Servo({
    ...assembleServo(config, { client }),
    transport: new HttpTransport({ url, token: "t0ken" }),
    maxSleepSeconds: 0,
  });
  const summary = await servo.run(
    new AbortController().signal,
    (c) => c.cmd === "SLEEP" && optimizer.summary().done !== undefined,
  );
  assert.ok(
    summary.commands >= 4 * 2,
    `each trial is an ADJUST and a MEASURE (got ${summary.commands} commands)`,
  );
  const study = optimizer.summary();
  assert.equal(study.trials, 4);
  assert.ok(study.best, "a best trial was found");
  const trials = store.trials("loop");
  assert.equal(trials.length, 4);
  assert.ok(
    trials.every((tr) => tr.status === "ok"),
    JSON.stringify(trials.map((tr) => tr.status)),
  );
  const pod = await client.core.readNamespacedPod({ namespace: ns, name: "opsani-tuning" });
  const best = study.best.values["opsani-tuning"] as Record<string, number>;
  const c = pod.spec?.containers[0];
  assert.equal(
    c?.env?.find((e) => e.name === "COMMIT_DELAY")?.value,
    String(best.COMMIT_DELAY),
    "the best settings are left on the tuning pod",
  );
  const main = await client.apps.readNamespacedDeployment({ namespace: ns, name: "web-main" });
  assert.equal(main.metadata?.generation, 1, "the main deployment was never adjusted");
});

/** cliArgs runs the kubewise CLI from source against the test cluster. */
function cliArgs(args: string[]): string[] {
  return ["--import", "tsx", "src/cli/main.ts", "--kubeconfig", testCluster().kubeconfig, ...args];
}

function cli(args: string[], input?: string): { status: number | null; stdout: string; stderr: string } {
  const res = spawnSync(process.execPath, cliArgs(args), {
    timeout: 300_000,
    encoding: "utf8",
    input,
    env: { ...process.env, KUBEWISE_LOG_LEVEL: "warn" },
  });
  return { status: res.status, stdout: res.stdout, stderr: res.stderr };
}

test("Verifies the one-shot servo commands: describe and adjust print protocol JSON, a rejected adjust exits 1", async (t) => {
  const ns = await testNamespace(t, "servo-cli");
  await demoApp(ns);
  const dir = mkdtempSync(join(tmpdir(), "kubewise-cli-"));
  const file = join(dir, "servo.yaml");
  writeFileSync(file, stringify(demoDoc(ns, join(dir, "opt.db"))));

  const described = cli(["servo", "describe", "-c", file]);
  assert.equal(described.status, 0, described.stderr);
  const description = JSON.parse(described.stdout) as {
    status: string;
    descriptor: { application: { components: Record<string, unknown> } };
  };
  assert.equal(description.status, "ok");
  assert.deepEqual(Object.keys(description.descriptor.application.components).sort(), [
    "opsani-tuning",
    "web-main/main",
  ]);

  const param = {
    state: {
      application: {
        components: { "opsani-tuning": { settings: { cpu: { value: 0.5 }, mem: { value: 0.5 } } } },
      },
    },
    control: { userdata: { deploy_to: "tuning" } },
  };
  const adjusted = cli(["servo", "adjust", "-c", file], JSON.stringify(param));
  assert.equal(adjusted.status, 0, adjusted.stderr + adjusted.stdout);
  assert.equal((JSON.parse(adjusted.stdout) as { status: string }).status, "ok");

  const tooMany = {
    ...param,
    state: { application: { components: { "opsani-tuning": { settings: { replicas: { value: 2 } } } } } },
  };
  const rejected = cli(["servo", "adjust", "-c", file], JSON.stringify(tooMany));
  assert.equal(rejected.status, 1);
  const reply = JSON.parse(rejected.stdout) as { status: string; reason: string; message: string };
  assert.deepEqual([reply.status, reply.reason], ["failed", "adjust-failed"]);
  assert.match(reply.message, /only 0 \(remove it\) or 1/);

  const measured = cli(
    ["servo", "measure", "-c", file],
    JSON.stringify({ metrics: ["latency_p90"], control: { duration: 1 } }),
  );
  assert.equal(measured.status, 0, measured.stderr);
  const m = JSON.parse(measured.stdout) as { metrics: Record<string, { value: number; unit: string }> };
  assert.equal(m.metrics.latency_p90?.unit, "ms");
});

test("Verifies that a config with two main components is refused at start-up naming both, with no stack trace", () => {
  const doc = parse(readFileSync("test/fixtures/servo/seed.yaml", "utf8")) as {
    k8s: { application: { components: Record<string, unknown> } };
  };
  doc.k8s.application.components["api/server"] = { settings: { cpu: { min: 0.125, max: 1, step: 0.125 } } };
  const dir = mkdtempSync(join(tmpdir(), "kubewise-bad-"));
  const file = join(dir, "servo.yaml");
  writeFileSync(file, stringify(doc));
  const res = cli(["servo", "describe", "-c", file]);
  assert.equal(res.status, 1);
  assert.match(res.stderr, /servo\.yaml: .*k8s\.application\.components/s);
  assert.match(res.stderr, /web-main\/main/);
  assert.match(res.stderr, /api\/server/);
  assert.doesNotMatch(res.stderr, / {4}at /, "no stack trace");
});

/** started runs the CLI in the background and resolves once its output matches `ready`. */
function started(
  args: string[],
  ready: RegExp,
): Promise<{ child: ChildProcess; output: () => string; exited: Promise<number | null> }> {
  const child = spawn(process.execPath, cliArgs(args), {
    env: { ...process.env, KUBEWISE_LOG_LEVEL: "info" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${String(ready)} within 60 s:\n${out}`)), 60_000);
    const onData = (chunk: Buffer): void => {
      out += chunk.toString();
      if (ready.test(out)) {
        clearTimeout(timer);
        resolve({ child, output: () => out, exited });
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`exited ${String(code)} before ${String(ready)}:\n${out}`));
    });
  });
}

test("Verifies the CLI end to end: optimizer serve with a token, servo run against it until SIGTERM (GOODBYE, exit 0), then optimizer report", async (t) => {
  const ns = await testNamespace(t, "servo-run-cli");
  await demoApp(ns);
  const dir = mkdtempSync(join(tmpdir(), "kubewise-run-"));
  const db = join(dir, "opt.db");
  const file = join(dir, "servo.yaml");
  const doc = demoDoc(ns, db);
  Object.assign(doc.optimizer as Record<string, unknown>, { max_trials: 2, study: "cli" });
  writeFileSync(file, stringify(doc));
  const token = join(dir, "token");
  writeFileSync(token, "cli-s3cret\n");

  const optimizer = await started(
    ["optimizer", "serve", "-c", file, "--port", "0", "--token-file", token],
    /local optimizer listening: (http:\/\/127\.0\.0\.1:\d+)/,
  );
  t.after(() => optimizer.child.kill("SIGKILL"));
  const base = /local optimizer listening: (http:\/\/127\.0\.0\.1:\d+)/.exec(optimizer.output())?.[1];
  assert.ok(base);

  const wrong = join(dir, "wrong-token");
  writeFileSync(wrong, "nope\n");
  const refused = cli([
    "servo",
    "run",
    "-c",
    file,
    "--optimizer",
    `${base}/accounts/acme/applications/web/servo`,
    "--token-file",
    wrong,
  ]);
  assert.equal(refused.status, 1, refused.stderr);
  assert.match(refused.stderr, /HTTP 401/);
  assert.doesNotMatch(refused.stderr + refused.stdout, /cli-s3cret|nope/, "tokens are never printed");

  const servo = await started(
    [
      "servo",
      "run",
      "-c",
      file,
      "--optimizer",
      `${base}/accounts/acme/applications/web/servo`,
      "--token-file",
      token,
    ],
    /servo starting/,
  );
  t.after(() => servo.child.kill("SIGKILL"));
  // Two trials, then the best is applied and the optimizer answers SLEEP: the servo sleeps.
  await eventually(
    () => /"sleeping"/.test(servo.output()),
    "the study to end and the servo to sleep",
    120_000,
  );
  servo.child.kill("SIGTERM");
  assert.equal(await servo.exited, 0, servo.output());
  assert.match(servo.output(), /servo stopped/);
  await eventually(
    () => /servo said goodbye/.test(optimizer.output()),
    "the optimizer to log GOODBYE",
    10_000,
  );
  assert.match(
    optimizer.output(),
    /servo said goodbye[^\n]*interrupted by SIGTERM|interrupted by SIGTERM[^\n]*servo said goodbye/,
  );
  assert.doesNotMatch(servo.output() + optimizer.output(), /cli-s3cret/, "the token is never logged");
  optimizer.child.kill("SIGTERM");
  assert.equal(await optimizer.exited, 0, optimizer.output());

  const out = join(dir, "report");
  const report = cli(["optimizer", "report", "--db", db, "--out", out, "--study", "cli"]);
  assert.equal(report.status, 0, report.stderr);
  assert.match(report.stdout, /^cli: 2 trials, /);
  const json = JSON.parse(readFileSync(join(out, "cli.json"), "utf8")) as { trials: unknown[] };
  assert.equal(json.trials.length, 2);
  assert.match(readFileSync(join(out, "cli.html"), "utf8"), /<svg/);
});
