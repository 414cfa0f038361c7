import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { ConfigError, parseYamlText } from "../config/index.js";
import { assignWork } from "./assign.js";
import { parseJobList, parseNameList, parseSwarmPoolManifest, parseSwarmPoolSpec } from "./pool.js";

const root = new URL("../../", import.meta.url);
const read = (path: string): string => readFileSync(new URL(path, root), "utf8");

function assertInvalid(spec: unknown, message: RegExp): void {
  assert.throws(
    () => parseSwarmPoolSpec(spec, "pool.yaml"),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError, String(err));
      assert.match(err.message, message);
      return true;
    },
  );
}

test("Verifies that a minimal spec gets its defaults", () => {
  const spec = parseSwarmPoolSpec({ workload: { name: "swarm-worker" }, jobs: { inline: ["a"] } });
  assert.deepEqual(spec, {
    workload: { kind: "StatefulSet", name: "swarm-worker" },
    jobs: { inline: ["a"] },
    qos: { dedicated: [] },
    refresh: { strategy: "hot-reload" },
    workerConfigMap: { name: "swarm-worker-config", key: "config.yml" },
  });
});

test("Verifies that the example pools are valid and the inline one assigns on its StatefulSet", () => {
  const pool = parseSwarmPoolManifest(parse(read("examples/swarm/pool.yaml")), "pool.yaml");
  assert.equal(pool.spec.jobs.inline?.length, 27);
  const sts = parse(read("examples/swarm/worker-statefulset.yaml")) as { spec: { replicas: number } };
  assert.equal(pool.spec.workerConfigMap.name, "swarm-worker-config");
  const workers = Array.from({ length: sts.spec.replicas }, (_, i) => `swarm-worker-${i}`);
  const a = assignWork(pool.spec.jobs.inline ?? [], workers, undefined, pool.spec.qos);
  assert.deepEqual(
    [...a.values()].map((jobs) => jobs.length),
    [1, 1, 13, 12],
  );
  const docs = parseYamlText(read("examples/swarm/pool-configmap-jobs.yaml"));
  const fromConfigMap = parseSwarmPoolManifest(docs[1]);
  assert.deepEqual(fromConfigMap.spec.jobs, { configMapKeyRef: { name: "swarm-jobs", key: "config.yml" } });
  const cm = docs[0] as { data: Record<string, string> };
  assert.deepEqual(parseJobList(cm.data["config.yml"] ?? ""), pool.spec.jobs.inline);
  assert.deepEqual(parseJobList(read("examples/swarm/jobs.yaml")), pool.spec.jobs.inline);
});

test("Verifies that spec errors name the field and what is allowed", () => {
  const workload = { name: "swarm-worker" };
  assertInvalid({ workload, jobs: {} }, /spec\.jobs: set exactly one of inline or configMapKeyRef/);
  assertInvalid(
    { workload, jobs: { inline: ["a"], configMapKeyRef: { name: "j", key: "k" } } },
    /spec\.jobs: set exactly one/,
  );
  assertInvalid(
    { workload, jobs: { inline: ["a", "b", "a"] } },
    /spec\.jobs\.inline\.2: job listed more than once/,
  );
  assertInvalid(
    { workload, jobs: { inline: ["a"] }, qos: { dedicated: ["a", "z"] } },
    /spec\.qos\.dedicated\.1: not in jobs\.inline \(got "z"\)/,
  );
  assertInvalid(
    { workload: { kind: "DaemonSet", name: "w" }, jobs: { inline: [] } },
    /spec\.workload\.kind: must be one of "StatefulSet", "Deployment" \(got "DaemonSet"\)/,
  );
  assertInvalid(
    { workload: { name: "Swarm_Worker" }, jobs: { inline: [] } },
    /spec\.workload\.name: must be a lower-case/,
  );
  assertInvalid(
    { workload, jobs: { inline: [] }, refresh: { strategy: "reboot" } },
    /spec\.refresh\.strategy: must be one of "hot-reload", "restart"/,
  );
  assertInvalid({ workload, jobs: { inline: [] }, extra: 1 }, /spec: unknown key "extra"/);
});

test("Verifies that job and worker lists are read from YAML, JSON or a `jobs:` document", () => {
  assert.deepEqual(parseJobList('["a", "b"]'), ["a", "b"]);
  assert.deepEqual(parseJobList("- a\n- b\n"), ["a", "b"]);
  assert.deepEqual(parseJobList("jobs:\n  - a\n"), ["a"]);
  assert.deepEqual(parseNameList('{"workers": ["w-0"]}', "workers"), ["w-0"]);
  assert.deepEqual(parseJobList("[]"), []);
  assert.deepEqual(parseJobList("jobs: []\n"), []);
  assert.deepEqual(parseNameList("[]", "workers"), []);
  // An empty document after the list (a trailing `---`) is not a second list.
  assert.deepEqual(parseJobList("- a\n---\n"), ["a"]);
  assert.deepEqual(parseJobList("---\n- a\n...\n"), ["a"]);
  assert.throws(() => parseJobList("a: [x]\n", "j.yaml"), /j\.yaml: .*unknown key "a"/s);
  assert.throws(() => parseJobList("just-a-string", "j.yaml"), /j\.yaml: .*must be a list of names/s);
  assert.throws(() => parseJobList("- a\n- 3\n", "j.yaml"), /j\.yaml: .*\b1: /s);
});

function assertConfigError(parse: () => unknown, message: RegExp): void {
  assert.throws(parse, (err: unknown) => {
    assert.ok(err instanceof ConfigError, String(err));
    assert.equal(err.reason, "invalid");
    assert.match(err.message, message);
    return true;
  });
}

test("Verifies that a job or worker file with more than one YAML document is refused, naming the file and the count", () => {
  assertConfigError(
    () => parseJobList("- a\n---\n- b\n", "jobs.yaml"),
    /^jobs\.yaml: 1 problem:\n {2}\(document\): holds 2 YAML documents \(separated by "---"\); expected one$/,
  );
  assertConfigError(
    () => parseJobList("jobs: [a]\n---\njobs: [b]\n---\n- c\n", "jobs.yaml"),
    /^jobs\.yaml: .*holds 3 YAML documents \(separated by "---"\); expected one$/s,
  );
  // Empty documents in between do not count, the non-empty ones do.
  assertConfigError(
    () => parseNameList("---\n- w-0\n---\n---\n- w-1\n", "workers", "workers.yaml"),
    /^workers\.yaml: .*holds 2 YAML documents \(separated by "---"\); expected one$/s,
  );
  assertConfigError(
    () => parseJobList("[]\n---\n[]\n", "ConfigMap ns/jobs key config.yml"),
    /^ConfigMap ns\/jobs key config\.yml: .*holds 2 YAML documents/s,
  );
});

test("Verifies that an empty or null job or worker document is an error, not an empty list", () => {
  for (const text of ["", "\n", "# nothing here\n", "---\n", "~\n", "null\n", "---\n---\n"]) {
    assertConfigError(
      () => parseJobList(text, "jobs.yaml"),
      /^jobs\.yaml: 1 problem:\n {2}\(document\): lists no jobs/,
    );
    assertConfigError(
      () => parseNameList(text, "workers", "workers.yaml"),
      /^workers\.yaml: 1 problem:\n {2}\(document\): lists no workers/,
    );
  }
});

// ---- the CRD and the zod schema describe the same spec ------------------------------------------

interface CrdSchema {
  type?: string;
  properties?: Record<string, CrdSchema>;
  items?: CrdSchema;
  enum?: unknown[];
  default?: unknown;
}

/** crdLeaves lists the scalar fields under a CRD schema as dotted paths with their enum and default. */
function crdLeaves(schema: CrdSchema, path = ""): Map<string, CrdSchema> {
  const out = new Map<string, CrdSchema>();
  if (schema.properties) {
    for (const [k, sub] of Object.entries(schema.properties)) {
      for (const [p, s] of crdLeaves(sub, path ? `${path}.${k}` : k)) out.set(p, s);
    }
  } else out.set(path, schema);
  return out;
}

function specSchemaFromCrd(): CrdSchema {
  const crd = parse(read("manifests/swarm/crd.yaml")) as {
    spec: { group: string; versions: { name: string; schema: { openAPIV3Schema: CrdSchema } }[] };
  };
  assert.equal(crd.spec.group, "swarm.kubewise.dev");
  const version = crd.spec.versions.find((v) => v.name === "v1alpha1");
  assert.ok(version);
  return version.schema.openAPIV3Schema.properties?.spec as CrdSchema;
}

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split(".");
  let node = target;
  for (const k of keys.slice(0, -1)) node = (node[k] ??= {}) as Record<string, unknown>;
  node[keys[keys.length - 1] as string] = value;
}

test("Verifies that every CRD spec field, enum value and default is what the zod schema accepts", () => {
  const leaves = crdLeaves(specSchemaFromCrd());
  assert.deepEqual([...leaves.keys()].sort(), [
    "jobs.configMapKeyRef.key",
    "jobs.configMapKeyRef.name",
    "jobs.inline",
    "qos.dedicated",
    "refresh.strategy",
    "workerConfigMap.key",
    "workerConfigMap.name",
    "workload.kind",
    "workload.name",
  ]);
  const base = { workload: { name: "w" }, jobs: { inline: ["a"] } };
  const defaults = parseSwarmPoolSpec(base) as unknown as Record<string, Record<string, unknown>>;
  for (const [path, leaf] of leaves) {
    const [top, field] = path.split(".") as [string, string];
    if (leaf.default !== undefined && path !== "qos.dedicated") {
      assert.deepEqual(defaults[top]?.[field], leaf.default, `default of ${path}`);
    }
    for (const value of leaf.enum ?? []) {
      const spec = structuredClone(base) as Record<string, unknown>;
      setPath(spec, path, value);
      assert.doesNotThrow(() => parseSwarmPoolSpec(spec), `${path}=${String(value)}`);
    }
  }
  // Every field the zod schema takes is in the CRD (the API server would prune the rest).
  const full = {
    workload: { kind: "Deployment", name: "w" },
    jobs: { inline: ["a"] },
    qos: { dedicated: ["a"] },
    refresh: { strategy: "restart" },
    workerConfigMap: { name: "cm", key: "config.yml" },
  };
  const paths = [...crdLeaves({ properties: toSchema(full) }).keys()];
  for (const p of paths) assert.ok(leaves.has(p), p);
  assert.doesNotThrow(() => parseSwarmPoolSpec(full));
});

function toSchema(value: Record<string, unknown>): Record<string, CrdSchema> {
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [
      k,
      v !== null && typeof v === "object" && !Array.isArray(v)
        ? { properties: toSchema(v as Record<string, unknown>) }
        : {},
    ]),
  );
}
