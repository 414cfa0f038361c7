// Runs the benchmarks: every bench/<name>/main.ts, or the ones named on the command line
// (`npm run bench -- swarm agent`). Benchmarks that need a cluster use the test cluster in
// .kubewise/test-cluster, started here when it is not running and stopped afterwards.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";

const wanted = process.argv.slice(2);
const all = readdirSync("bench").filter((d) => existsSync(join("bench", d, "main.ts")));
const names = wanted.length > 0 ? wanted : all;
const unknown = names.filter((n) => !all.includes(n));
if (unknown.length > 0) {
  console.error(`unknown benchmark(s) ${unknown.join(", ")}; available: ${all.join(", ")}`);
  process.exit(2);
}
const needsCluster = new Set(["deploy", "jobs"]);
const clusterDir = process.env.KUBEWISE_TEST_CLUSTER_DIR ?? ".kubewise/test-cluster";
const cli = (stdio, ...a) =>
  spawnSync(process.execPath, ["--import", "tsx", "src/cli/main.ts", ...a], { stdio }).status;
let started = false;
if (names.some((n) => needsCluster.has(n)) && cli("ignore", "cluster", "status", "--dir", clusterDir) !== 0) {
  if (cli("inherit", "cluster", "up", "--dir", clusterDir) !== 0) process.exit(1);
  started = true;
}
let failed = 0;
for (const name of names) {
  console.log(`\n=== bench/${name}`);
  const res = spawnSync(process.execPath, ["--import", "tsx", join("bench", name, "main.ts")], {
    stdio: "inherit",
  });
  if (res.status !== 0) failed++;
}
if (started) cli("inherit", "cluster", "down", "--dir", clusterDir);
process.exit(failed > 0 ? 1 : 0);
