import { test } from "node:test";
import assert from "node:assert/strict";
import {
  appContainerIndex,
  DEFAULT_APP_ID_PATH,
  describeAppIdPathError,
  jobAppId,
  parseAppIdPath,
  resolveAppId,
} from "./appid.js";
import { JobsError } from "./errors.js";

const pod = {
  metadata: { name: "job-1", labels: { app: "batch", "0": "zero" }, annotations: { "example.com/x": "y" } },
  spec: {
    containers: [
      {
        name: "main",
        env: [
          { name: "OTHER", value: "o" },
          { name: "JOBID", value: "render-video" },
          { name: "FROM_SECRET", valueFrom: { secretKeyRef: { name: "s", key: "k" } } },
          { name: "EMPTY", value: "" },
        ],
        ports: [{ name: "http", containerPort: 8080, protocol: "TCP" }],
      },
      { name: "sidecar", env: [{ name: "JOBID", value: "sidecar-id" }] },
    ],
  },
};

function resolve(path: string, object: unknown = pod): string | undefined {
  return resolveAppId(parseAppIdPath(path), object);
}

test("Verifies that the seed's default path finds JOBID in container 0's env", () => {
  assert.equal(resolve(DEFAULT_APP_ID_PATH), "render-video");
});

test("Verifies that map keys and array indexes descend in sequence", () => {
  assert.equal(resolve("metadata/name"), "job-1");
  assert.equal(resolve("spec/containers/1/name"), "sidecar");
  assert.equal(resolve("spec/containers/1/env/[JOBID]"), "sidecar-id");
  assert.equal(resolve("metadata/annotations/example.com~x"), undefined);
});

test("Verifies that digits are a map key when the value is a map", () => {
  assert.equal(resolve("metadata/labels/0"), "zero");
  assert.deepEqual(parseAppIdPath("metadata/labels/0").steps[2], { kind: "index", index: 0, key: "0" });
});

test("Verifies that a key is not used as an index into an array, nor an index into a string", () => {
  assert.equal(resolve("spec/containers/main/name"), undefined);
  assert.equal(resolve("metadata/name/0"), undefined);
});

test("Verifies that [KEY,keyField,valueField] searches with custom field names", () => {
  const path = parseAppIdPath("spec/containers/0/ports/[http,name,protocol]");
  assert.deepEqual(path.steps[4], { kind: "search", key: "http", keyField: "name", valueField: "protocol" });
  assert.equal(resolveAppId(path, pod), "TCP");
  assert.equal(resolve("spec/containers/0/ports/[ http , name , protocol ]"), "TCP");
});

test("Verifies that missing steps, non-string values and valueFrom env resolve to undefined", () => {
  assert.equal(resolve("spec/containers/5/env/[JOBID]"), undefined);
  assert.equal(resolve("spec/containers/0/env/[NOPE]"), undefined);
  assert.equal(resolve("spec/containers/0/env/[FROM_SECRET]"), undefined);
  assert.equal(
    resolve("spec/containers/0/ports/[http,name,containerPort]"),
    undefined,
    "a number is not an app id",
  );
  assert.equal(resolve("spec/containers"), undefined, "an array is not an app id");
  assert.equal(resolve("spec/containers/0/env/[JOBID]", {}), undefined);
  assert.equal(resolve("spec/containers/0/env/[JOBID]", null), undefined);
  assert.equal(resolve("spec/containers/0/env/[JOBID]", { spec: { containers: [{ env: "x" }] } }), undefined);
});

test("Verifies that a search takes the last duplicate, as the kubelet does for env", () => {
  const dup = { env: [{ name: "JOBID", value: "first" }, null, 3, { name: "JOBID", value: "second" }] };
  assert.equal(resolve("env/[JOBID]", dup), "second");
});

test("Verifies that keys inherited from Object.prototype are not followed", () => {
  assert.equal(resolve("constructor/name", {}), undefined);
  assert.equal(resolve("toString", {}), undefined);
});

test("Verifies that jobAppId treats an empty value as not a job pod", () => {
  assert.equal(jobAppId(parseAppIdPath("spec/containers/0/env/[EMPTY]"), pod), undefined);
  assert.equal(jobAppId(parseAppIdPath(DEFAULT_APP_ID_PATH), pod), "render-video");
  assert.equal(resolve("spec/containers/0/env/[EMPTY]"), "");
});

test("Verifies that a search key may contain a slash", () => {
  const obj = { items: [{ name: "a/b", value: "slash" }] };
  assert.equal(resolve("items/[a/b]", obj), "slash");
});

test("Verifies that parse errors say what is wrong and where", () => {
  const cases: [string, RegExp][] = [
    ["", /the path is empty/],
    ["   ", /the path is empty/],
    ["/spec/containers", /element 1 is empty/],
    ["spec//containers", /element 2 is empty/],
    ["spec/", /element 2 is empty/],
    ["spec/[JOBID", /"\[" is not closed/],
    ["spec/JOBID]", /unbalanced "\]" at character 11/],
    ["spec/[[a]]", /unbalanced "\["/],
    ["spec/env[JOBID]", /element 2 "env\[JOBID\]" mixes brackets/],
    ["spec/[]", /element 2 "\[\]" has an empty part/],
    ["spec/[a,,b]", /has an empty part/],
    ["spec/[a,b]", /has 2 parts; write \[KEY\] or \[KEY,keyField,valueField\]/],
    ["spec/[a,b,c,d]", /has 4 parts/],
  ];
  for (const [source, pattern] of cases) {
    assert.throws(
      () => parseAppIdPath(source),
      (err: unknown) =>
        err instanceof JobsError && err.reason === "invalid-app-id-path" && pattern.test(err.message),
      `path ${JSON.stringify(source)}`,
    );
    assert.match(describeAppIdPathError(source) ?? "", pattern);
  }
  assert.equal(describeAppIdPathError(DEFAULT_APP_ID_PATH), undefined);
});

test("Verifies that the app container is the one the path points into, else container 0", () => {
  assert.equal(appContainerIndex(parseAppIdPath(DEFAULT_APP_ID_PATH)), 0);
  assert.equal(appContainerIndex(parseAppIdPath("spec/containers/2/env/[JOBID]")), 2);
  assert.equal(appContainerIndex(parseAppIdPath("metadata/labels/job")), 0);
  assert.equal(appContainerIndex(parseAppIdPath("spec/initContainers/1/env/[JOBID]")), 0);
});
