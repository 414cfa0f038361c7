/**
 * Benchmark: render time for 1,000 generated service specs, ours against two baselines measured
 * in the same run on the same specs.
 *
 * - ours: parseServiceSpec (zod validation, Opta forms, defaults, cross-field checks) then
 *   renderService (objects); also render alone from parsed specs, and with YAML printing.
 * - clone-and-fill: what a hand-rolled renderer without validation does: deep-clone (JSON round
 *   trip) a template of the same objects and assign the spec's values into it. It trusts its
 *   input and knows no defaults beyond the template's, so it is a floor, not a competitor.
 * - string template: Helm's way, text substitution into a YAML template (scalars JSON-quoted so
 *   the text is valid YAML), producing the YAML stream directly with no objects at all.
 *
 * The generated specs use only forms both baselines understand (explicit limits, one http port,
 * quantity strings), and the run stops unless both baselines produce exactly the objects ours
 * does, so every row does the same job.
 *
 * Run: npx tsx bench/deploy/render.ts [--specs 1000] [--rounds 15]
 */
import assert from "node:assert/strict";
import { parseAllDocuments } from "yaml";
import {
  ingressName,
  parseServiceSpec,
  renderService,
  toYaml,
  type Manifest,
  type ServiceSpec,
} from "../../src/deploy/index.js";

interface GenSpec {
  name: string;
  image: string;
  ports: { name: string; type: "http"; port: number }[];
  min_containers: number;
  max_containers: number;
  resource_request: { cpu: string; memory: string };
  resource_limits: { cpu: string; memory: string };
  env_vars: Record<string, string>;
  healthcheck_path: string;
  public_uri: string[];
}

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

/** mulberry32 is a small seeded PRNG, so every run benchmarks the same specs. */
function mulberry32(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function generate(count: number): GenSpec[] {
  const rand = mulberry32(42);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
  // Values whose canonical quantity is the plain "<n>m" / "<n>Mi" form the baselines copy.
  const cpus = [100, 250, 300, 400];
  const mems = [128, 192, 256, 384];
  return Array.from({ length: count }, (_, i) => {
    const cpu = pick(cpus);
    const mem = pick(mems);
    const env: Record<string, string> = {};
    for (let e = 0; e < 2 + Math.floor(rand() * 8); e++) env[`VAR_${e}`] = `value-${i}-${e}`;
    const uris = Array.from({ length: Math.floor(rand() * 3) }, (_, u) =>
      u % 2 === 0 ? `svc-${i}.example.com` : `example.com/svc-${i}/v${u}`,
    );
    return {
      name: `svc-${i}`,
      image: `ghcr.io/acme/svc-${i}:1.${i % 7}.0`,
      ports: [{ name: "http", type: "http", port: 8000 + (i % 100) }],
      min_containers: 1,
      max_containers: 2 + (i % 5),
      resource_request: { cpu: `${cpu}m`, memory: `${mem}Mi` },
      resource_limits: { cpu: `${cpu * 2}m`, memory: `${mem * 2}Mi` },
      env_vars: env,
      healthcheck_path: "/healthz",
      public_uri: uris,
    };
  });
}

const labelsOf = (name: string) => ({
  "app.kubernetes.io/name": name,
  "app.kubernetes.io/managed-by": "kubewise",
});

/** cloneAndFill: deep-clone a template of the objects, assign the spec's values. */
function makeCloneAndFill(): (g: GenSpec, namespace: string) => Manifest[] {
  const seed = generate(1)[0] as GenSpec;
  const template = renderService(
    parseServiceSpec({ ...seed, public_uri: ["a.example.com", "a.example.com/x"] }),
    {
      namespace: "ns",
    },
  ).manifests;
  const [service, deployment, hpa, plainIngress, stripIngress] = template.map((m) => JSON.stringify(m));
  return (g, namespace) => {
    const clone = (text: string | undefined): Manifest => {
      const m = JSON.parse(text as string) as Manifest;
      m.metadata.name = g.name;
      m.metadata.namespace = namespace;
      m.metadata.labels = labelsOf(g.name);
      return m;
    };
    const port = g.ports[0] as GenSpec["ports"][number];
    const svc = clone(service) as Manifest & { spec: { selector: object } };
    svc.spec.selector = { "app.kubernetes.io/name": g.name };
    const dep = clone(deployment) as unknown as { spec: Record<string, never> } & Manifest;
    const spec = dep.spec as unknown as {
      selector: { matchLabels: object };
      template: { metadata: { labels: object }; spec: { containers: Record<string, unknown>[] } };
    };
    spec.selector.matchLabels = { "app.kubernetes.io/name": g.name };
    spec.template.metadata.labels = {
      "app.kubernetes.io/managed-by": "kubewise",
      "app.kubernetes.io/name": g.name,
    };
    const c = spec.template.spec.containers[0] as Record<string, unknown>;
    c.name = g.name;
    c.image = g.image;
    c.ports = [{ name: port.name, containerPort: port.port, protocol: "TCP" }];
    c.env = Object.entries(g.env_vars).map(([name, value]) => ({ name, value }));
    c.resources = { requests: { ...g.resource_request }, limits: { ...g.resource_limits } };
    const h = clone(hpa) as unknown as {
      spec: { scaleTargetRef: { name: string }; minReplicas: number; maxReplicas: number };
    };
    h.spec.scaleTargetRef.name = g.name;
    h.spec.minReplicas = g.min_containers;
    h.spec.maxReplicas = g.max_containers;
    const ingresses = g.public_uri.map((uri) => {
      const slash = uri.indexOf("/");
      const host = slash < 0 ? uri : uri.slice(0, slash);
      const path = slash < 0 ? "/" : uri.slice(slash);
      const ing = clone(path === "/" ? plainIngress : stripIngress) as unknown as Manifest & {
        spec: {
          rules: {
            host: string;
            http: { paths: { path: string; backend: { service: { name: string } } }[] };
          }[];
        };
      };
      ing.metadata.name = ingressName(g.name, { host, path });
      const rule = ing.spec.rules[0] as (typeof ing.spec.rules)[number];
      rule.host = host;
      const p = rule.http.paths[0] as (typeof rule.http.paths)[number];
      p.path = path === "/" ? "/" : `${path}(/|$)(.*)`;
      p.backend.service.name = g.name;
      return ing;
    });
    return [svc, dep, h as unknown as Manifest, ...ingresses];
  };
}

const q = (s: string | number): string => JSON.stringify(s);

/** stringTemplate: Helm-style text substitution straight to YAML. */
function stringTemplate(g: GenSpec, namespace: string): string {
  const meta = (name: string) =>
    `metadata:\n  name: ${q(name)}\n  namespace: ${q(namespace)}\n  labels:\n    app.kubernetes.io/name: ${q(g.name)}\n    app.kubernetes.io/managed-by: kubewise\n`;
  const port = g.ports[0] as GenSpec["ports"][number];
  const env = Object.entries(g.env_vars)
    .map(([k, v]) => `            - name: ${q(k)}\n              value: ${q(v)}\n`)
    .join("");
  const probe = (readiness: boolean) =>
    `            httpGet:\n              path: ${q(g.healthcheck_path)}\n              port: ${q(port.name)}\n            initialDelaySeconds: 30\n${readiness ? "            periodSeconds: 10\n" : ""}`;
  const docs = [
    `apiVersion: v1\nkind: Service\n${meta(g.name)}spec:\n  type: ClusterIP\n  selector:\n    app.kubernetes.io/name: ${q(g.name)}\n  ports:\n    - name: ${q(port.name)}\n      port: 80\n      targetPort: ${q(port.name)}\n      protocol: TCP\n      appProtocol: http\n`,
    `apiVersion: apps/v1\nkind: Deployment\n${meta(g.name)}spec:\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: ${q(g.name)}\n  strategy:\n    type: RollingUpdate\n    rollingUpdate:\n      maxSurge: 25%\n      maxUnavailable: 25%\n  template:\n    metadata:\n      labels:\n        app.kubernetes.io/managed-by: kubewise\n        app.kubernetes.io/name: ${q(g.name)}\n    spec:\n      containers:\n        - name: ${q(g.name)}\n          image: ${q(g.image)}\n          imagePullPolicy: Always\n          ports:\n            - name: ${q(port.name)}\n              containerPort: ${port.port}\n              protocol: TCP\n          env:\n${env}          resources:\n            requests:\n              cpu: ${q(g.resource_request.cpu)}\n              memory: ${q(g.resource_request.memory)}\n            limits:\n              cpu: ${q(g.resource_limits.cpu)}\n              memory: ${q(g.resource_limits.memory)}\n          livenessProbe:\n${probe(false)}          readinessProbe:\n${probe(true)}`,
    `apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\n${meta(g.name)}spec:\n  scaleTargetRef:\n    apiVersion: apps/v1\n    kind: Deployment\n    name: ${q(g.name)}\n  minReplicas: ${g.min_containers}\n  maxReplicas: ${g.max_containers}\n  metrics:\n    - type: Resource\n      resource:\n        name: cpu\n        target:\n          type: Utilization\n          averageUtilization: 80\n    - type: Resource\n      resource:\n        name: memory\n        target:\n          type: Utilization\n          averageUtilization: 80\n`,
  ];
  for (const uri of g.public_uri) {
    const slash = uri.indexOf("/");
    const host = slash < 0 ? uri : uri.slice(0, slash);
    const path = slash < 0 ? "/" : uri.slice(slash);
    const strip = path !== "/";
    const annotations = strip
      ? `  annotations:\n    nginx.ingress.kubernetes.io/rewrite-target: /$2\n    nginx.ingress.kubernetes.io/use-regex: "true"\n`
      : "";
    docs.push(
      `apiVersion: networking.k8s.io/v1\nkind: Ingress\n${meta(ingressName(g.name, { host, path }))}${annotations}spec:\n  ingressClassName: nginx\n  rules:\n    - host: ${q(host)}\n      http:\n        paths:\n          - path: ${q(strip ? `${path}(/|$)(.*)` : "/")}\n            pathType: ${strip ? "ImplementationSpecific" : "Prefix"}\n            backend:\n              service:\n                name: ${q(g.name)}\n                port:\n                  name: ${q(port.name)}\n`,
    );
  }
  return docs.join("---\n");
}

/**
 * timeInterleaved runs every approach once per round, in turn, so a busy machine slows them all
 * alike, and returns each one's median round time in ms.
 */
function timeInterleaved(rounds: number, runs: (() => void)[]): number[] {
  for (let w = 0; w < 3; w++) for (const run of runs) run();
  const samples: number[][] = runs.map(() => []);
  for (let r = 0; r < rounds; r++) {
    runs.forEach((run, i) => {
      const t0 = performance.now();
      run();
      samples[i]?.push(performance.now() - t0);
    });
  }
  return samples.map((xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] as number);
}

function main(): void {
  const count = flag("specs", 1000);
  const rounds = flag("rounds", 15);
  const namespace = "bench";
  const specs = generate(count);
  const cloneAndFill = makeCloneAndFill();

  // Same job check: both baselines must produce exactly our objects, or the table means nothing.
  const parsed: ServiceSpec[] = specs.map((g) => parseServiceSpec(g));
  const ours = parsed.map((s) => renderService(s, { namespace }).manifests);
  specs.forEach((g, i) => {
    const expected = JSON.parse(JSON.stringify(ours[i])) as unknown;
    assert.deepEqual(
      JSON.parse(JSON.stringify(cloneAndFill(g, namespace))),
      expected,
      `clone-and-fill differs on ${g.name}`,
    );
    const docs = parseAllDocuments(stringTemplate(g, namespace)).map((d) => d.toJS() as unknown);
    assert.deepEqual(docs, expected, `string template differs on ${g.name}`);
  });
  const objects = ours.reduce((n, m) => n + m.length, 0);

  const sink: unknown[] = [];
  const approaches: [string, string, () => unknown][] = [
    [
      "ours: validate + render",
      "objects",
      () => specs.map((g) => renderService(parseServiceSpec(g), { namespace })),
    ],
    [
      "ours: render only (pre-validated)",
      "objects",
      () => parsed.map((s) => renderService(s, { namespace })),
    ],
    ["baseline: clone-and-fill", "objects", () => specs.map((g) => cloneAndFill(g, namespace))],
    [
      "ours: validate + render + YAML",
      "YAML",
      () => specs.map((g) => toYaml(renderService(parseServiceSpec(g), { namespace }).manifests)),
    ],
    ["baseline: clone-and-fill + YAML", "YAML", () => specs.map((g) => toYaml(cloneAndFill(g, namespace)))],
    ["baseline: string template (Helm-style)", "YAML", () => specs.map((g) => stringTemplate(g, namespace))],
  ];
  const medians = timeInterleaved(
    rounds,
    approaches.map(
      ([, , run]) =>
        () =>
          void sink.push(run()),
    ),
  );
  sink.length = 0;
  const rows = approaches.map(([name, out], i): [string, string, number] => [
    name,
    out,
    medians[i] as number,
  ]);

  console.log(
    `deploy render: ${count} specs -> ${objects} objects, median of ${rounds} interleaved rounds (after 3 warm-up), node ${process.version}`,
  );
  console.log("all baselines checked to produce exactly the same objects as ours\n");
  const header = ["approach", "output", `ms / ${count} specs`, "µs / spec"];
  const body = rows.map(([name, out, ms]) => [name, out, ms.toFixed(1), ((ms * 1000) / count).toFixed(1)]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => (r[i] as string).length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i < 2 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join("  ");
  console.log(line(header));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const r of body) console.log(line(r));
}

main();
