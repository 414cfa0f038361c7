/**
 * Benchmark: plan and apply of many services on the embedded cluster, kubewise against
 * `kubectl diff --server-side` and `kubectl apply --server-side` of the very same rendered
 * manifests, measured in one run, each in its own namespace.
 *
 * Phases, for every service in turn (one kubectl process per service, as a user or CI script
 * runs one per service; plus one kubectl process for all services at once, kubectl's best case):
 *   plan (new)        kubewise planService               vs kubectl diff --server-side
 *   apply (create)    kubewise applyService, no wait     vs kubectl apply --server-side
 *   plan (no change)  planService                        vs kubectl diff --server-side
 *   re-apply (no-op)  applyService                       vs kubectl apply --server-side
 *   apply + rollout   new image, applyService with wait  vs kubectl apply + kubectl rollout status
 *
 * kubewise does more per service than kubectl here: it lists the service's objects of every kind
 * (for pruning and ownership), dry-runs every object before writing any, and diffs field by field.
 * The run checks that both namespaces end up with the same objects.
 *
 * Needs the test cluster: `node scripts/run-tests.mjs integration` with
 * KUBEWISE_KEEP_TEST_CLUSTER=1, or `./kubewise cluster up --dir .kubewise/test-cluster`.
 *
 * Run: npx tsx bench/deploy/apply.ts [--services 50] [--dir .kubewise/test-cluster]
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { readState } from "../../src/cluster/index.js";
import {
  applyService,
  formatRollout,
  listServiceObjects,
  parseServiceSpec,
  planService,
  renderService,
  toYaml,
  type DeployTarget,
} from "../../src/deploy/index.js";
import { KubeClient } from "../../src/kube/index.js";

interface Args {
  services: number;
  dir: string;
}

function args(): Args {
  const { values } = parseArgs({
    options: {
      services: { type: "string", default: "50" },
      dir: { type: "string", default: ".kubewise/test-cluster" },
    },
  });
  return { services: Number(values.services), dir: values.dir as string };
}

/** specFor is service i: an http port, env, probes, 1..5 replicas autoscaled, an Ingress for every other one. */
function specFor(i: number, version: string): Record<string, unknown> {
  return {
    name: `svc-${i}`,
    image: `ghcr.io/acme/svc-${i}:${version}`,
    ports: [{ name: "http", type: "http", port: 8080 }],
    min_containers: 1 + (i % 2),
    max_containers: 3 + (i % 3),
    // Small requests: both namespaces' pods, surges included, must fit the test cluster's 3 x 8 CPUs.
    resource_request: { cpu: `${10 + (i % 4) * 10}m`, memory: `${32 + (i % 3) * 32}Mi` },
    env_vars: Object.fromEntries(Array.from({ length: 3 + (i % 5) }, (_, e) => [`VAR_${e}`, `v-${i}-${e}`])),
    healthcheck_path: "/healthz",
    ...(i % 2 === 0 ? { public_uri: `svc-${i}.example.com` } : {}),
  };
}

function targetFor(i: number, namespace: string, version: string): DeployTarget {
  const spec = parseServiceSpec(specFor(i, version));
  return { service: spec.name, namespace, manifests: renderService(spec, { namespace }).manifests };
}

interface Kubectl {
  run(args: string[], okCodes?: number[]): void;
}

function kubectl(binDir: string, kubeconfig: string): Kubectl {
  const bin = join(binDir, "kubectl");
  return {
    run(argv, okCodes = [0]) {
      const r = spawnSync(bin, ["--kubeconfig", kubeconfig, ...argv], {
        encoding: "utf8",
        env: { ...process.env, KUBECTL_EXTERNAL_DIFF: "diff -u -N" },
      });
      if (!okCodes.includes(r.status ?? -1)) {
        throw new Error(`kubectl ${argv.join(" ")} exited ${r.status}: ${r.stderr}`);
      }
    },
  };
}

async function timed(run: () => Promise<void> | void): Promise<number> {
  const t0 = performance.now();
  await run();
  return performance.now() - t0;
}

interface Row {
  phase: string;
  ours: number;
  perProcess: number;
  oneProcess?: number;
}

/** comparable keeps what the spec decides: names, labels, annotations, spec without server-assigned fields. */
function comparable(o: object): unknown {
  const j = JSON.parse(JSON.stringify(o)) as {
    kind: string;
    metadata: { name: string; labels?: object; annotations?: object };
    spec?: Record<string, unknown>;
  };
  // Cluster IPs are assigned by the server; replicas of an autoscaled Deployment by the HPA.
  const { clusterIP: _a, clusterIPs: _b, replicas: _c, ...spec } = j.spec ?? {};
  return {
    kind: j.kind,
    name: j.metadata.name,
    labels: j.metadata.labels,
    annotations: j.metadata.annotations,
    spec,
  };
}

/** sameObjects checks that kubectl's namespace holds what kubewise's does, object for object. */
async function sameObjects(client: KubeClient, a: string, b: string, count: number): Promise<number> {
  let objects = 0;
  for (let i = 0; i < count; i++) {
    const [ours, theirs] = await Promise.all([
      listServiceObjects(client, a, `svc-${i}`),
      listServiceObjects(client, b, `svc-${i}`),
    ]);
    assert.deepEqual(
      theirs.map(comparable),
      ours.map(comparable),
      `svc-${i} differs between kubewise and kubectl`,
    );
    objects += ours.length;
  }
  return objects;
}

function print(rows: Row[], count: number): void {
  const header = [
    "phase",
    "kubewise ms",
    "kubectl ms (process/service)",
    "kubectl ms (1 process)",
    "kubewise/kubectl",
  ];
  const body = rows.map((r) => [
    r.phase,
    r.ours.toFixed(0),
    r.perProcess.toFixed(0),
    r.oneProcess === undefined ? "-" : r.oneProcess.toFixed(0),
    (r.ours / r.perProcess).toFixed(2),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] as string).length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number)))
      .join("  ");
  console.log(line(header));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const b of body) console.log(line(b));
  console.log(
    `\nper service: ${rows.map((r) => `${r.phase} ${(r.ours / count).toFixed(1)} vs ${(r.perProcess / count).toFixed(1)} ms`).join("; ")}`,
  );
}

async function main(): Promise<void> {
  const { services: count, dir } = args();
  const state = readState(dir);
  if (!state) {
    console.error(`no cluster in ${dir}: start one with \`./kubewise cluster up --dir ${dir}\``);
    process.exitCode = 1;
    return;
  }
  const client = KubeClient.connect({ kubeconfig: state.kubeconfig });
  const kc = kubectl(state.binDir, state.kubeconfig);
  const suffix = randomBytes(3).toString("hex");
  const ours = `bench-kubewise-${suffix}`;
  const theirs = `bench-kubectl-${suffix}`;
  const files = mkdtempSync(join(tmpdir(), "kubewise-bench-"));
  for (const name of [ours, theirs]) await client.core.createNamespace({ body: { metadata: { name } } });
  try {
    const write = (version: string): string[] =>
      Array.from({ length: count }, (_, i) => {
        const file = join(files, `svc-${i}-${version}.yaml`);
        writeFileSync(file, toYaml(targetFor(i, theirs, version).manifests));
        return file;
      });
    const v1 = write("1.0");
    const v2 = write("2.0");
    const all = join(files, "all.yaml");
    writeFileSync(
      all,
      Array.from({ length: count }, (_, i) => toYaml(targetFor(i, theirs, "1.0").manifests)).join("---\n"),
    );
    const apply = ["apply", "--server-side", "--field-manager=kubectl-bench"];
    // Warm both sides (discovery caches, connections) on a service outside the measured set.
    await planService(client, targetFor(count, ours, "1.0"));
    kc.run(["diff", "--server-side", "-f", write("warm")[0] as string], [0, 1]);

    const rows: Row[] = [];
    /**
     * row times one phase. Service by service, kubewise then kubectl, so a machine busy with
     * something else slows both alike; the one-process kubectl run comes after.
     */
    const row = async (
      phase: string,
      ourStep: (i: number) => Promise<void>,
      theirStep: (i: number) => void,
      one?: () => void,
    ) => {
      const r: Row = { phase, ours: 0, perProcess: 0 };
      for (let i = 0; i < count; i++) {
        r.ours += await timed(() => ourStep(i));
        r.perProcess += await timed(() => theirStep(i));
      }
      if (one) r.oneProcess = await timed(one);
      rows.push(r);
      console.error(`${phase}: kubewise ${r.ours.toFixed(0)} ms, kubectl ${r.perProcess.toFixed(0)} ms`);
    };
    const diff = (file: string, changes: boolean) =>
      kc.run(["diff", "--server-side", "-f", file], [changes ? 1 : 0]);

    await row(
      "plan (new)",
      async (i) => assert.equal((await planService(client, targetFor(i, ours, "1.0"))).changed, true),
      (i) => diff(v1[i] as string, true),
    );
    await row(
      "apply (create)",
      async (i) => {
        const r = await applyService(client, targetFor(i, ours, "1.0"), { wait: false });
        assert.ok(r.objects.every((o) => o.result === "created"));
      },
      (i) => kc.run([...apply, "-f", v1[i] as string]),
    );
    await row(
      "plan (no change)",
      async (i) => assert.equal((await planService(client, targetFor(i, ours, "1.0"))).changed, false),
      (i) => diff(v1[i] as string, false),
      () => diff(all, false),
    );
    await row(
      "re-apply (no-op)",
      async (i) => {
        const r = await applyService(client, targetFor(i, ours, "1.0"), { wait: false });
        assert.ok(r.objects.every((o) => o.result === "unchanged"));
      },
      (i) => kc.run([...apply, "-f", v1[i] as string]),
      () => kc.run([...apply, "-f", all]),
    );
    const objects = await sameObjects(client, ours, theirs, count);
    await row(
      "apply + rollout",
      async (i) => {
        const r = await applyService(client, targetFor(i, ours, "2.0"), { timeoutMs: 120_000 });
        assert.equal(r.rollout?.state, "ready", r.rollout ? formatRollout(r.rollout) : "no rollout");
      },
      (i) => {
        kc.run([...apply, "-f", v2[i] as string]);
        kc.run(["rollout", "status", `deployment/svc-${i}`, "-n", theirs, "--timeout=120s"]);
      },
    );
    console.log(
      `\ndeploy apply: ${count} services, ${objects} objects, on the embedded cluster, node ${process.version}; both namespaces checked to hold the same objects\n`,
    );
    print(rows, count);
  } finally {
    for (const name of [ours, theirs]) await client.core.deleteNamespace({ name }).catch(() => undefined);
    rmSync(files, { recursive: true, force: true });
  }
}

await main();
