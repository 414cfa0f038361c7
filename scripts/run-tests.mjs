// Runs the unit tests (src/**/*.test.ts, no cluster) or the integration tests
// (test/integration/**/*.test.ts, on the embedded control plane) with node's test runner and tsx.
// Node 20's runner takes no globs, so the files are found here.
import { spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";

const kind = process.argv[2] ?? "unit";
const roots = { unit: ["src"], integration: ["test/integration"] }[kind];
if (!roots) {
  console.error(`unknown test kind "${kind}": use unit or integration`);
  process.exit(2);
}
const only = process.argv.slice(3);
// KUBEWISE_TEST_EXCLUDE: comma-separated path fragments of test files to leave out (see .ci/run).
const exclude = (process.env.KUBEWISE_TEST_EXCLUDE ?? "").split(",").filter((e) => e.length > 0);

function find(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...find(path));
    else if (name.endsWith(".test.ts")) out.push(path);
  }
  return out;
}

const files = roots
  .flatMap(find)
  .filter((f) => only.length === 0 || only.some((o) => f.includes(o)))
  .filter((f) => !exclude.some((e) => f.includes(e)))
  .sort();
if (exclude.length > 0) console.error(`excluded by KUBEWISE_TEST_EXCLUDE: ${exclude.join(", ")}`);
if (files.length === 0) {
  console.error(`no ${kind} test files found`);
  process.exit(1);
}
const args = ["--import", "tsx", "--test", "--test-concurrency=1"];
let startedCluster = false;
const clusterDir = process.env.KUBEWISE_TEST_CLUSTER_DIR ?? ".kubewise/test-cluster";
const cli = (...a) =>
  spawnSync(process.execPath, ["--import", "tsx", "src/cli/main.ts", ...a], { stdio: "inherit" }).status;
const quietCli = (...a) =>
  spawnSync(process.execPath, ["--import", "tsx", "src/cli/main.ts", ...a], { stdio: "ignore" }).status;
if (kind === "integration") {
  args.push("--test-timeout=600000");
  // One embedded cluster for the whole run: reused when one is already running in clusterDir.
  const already = quietCli("cluster", "status", "--dir", clusterDir) === 0;
  if (!already) {
    console.error(`starting the test cluster in ${clusterDir}`);
    if (cli("cluster", "up", "--dir", clusterDir, "--nodes", "3") !== 0) {
      console.error("could not start the test cluster");
      process.exit(1);
    }
    startedCluster = true;
  }
  process.env.KUBEWISE_TEST_CLUSTER_DIR = clusterDir;
}
const result = spawnSync(process.execPath, [...args, ...files], { stdio: "inherit", env: process.env });
if (startedCluster && !process.env.KUBEWISE_KEEP_TEST_CLUSTER) cli("cluster", "down", "--dir", clusterDir);
process.exit(result.status ?? 1);
