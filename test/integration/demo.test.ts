/**
 * `kubewise demo`, the README's main command, as a user runs it (with fewer trials), on the
 * shared test cluster: the seed's app is created, the servo tunes the tuning pod against the
 * local optimizer, and the best settings and the report are printed.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { testCluster } from "./support/cluster.js";

test("Verifies that `kubewise demo --trials 3` tunes the seed's app on the local cluster and prints the best settings and the report", (t) => {
  const { client } = testCluster();
  const dir = mkdtempSync(join(tmpdir(), "kubewise-demo-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const clusterDir = process.env.KUBEWISE_TEST_CLUSTER_DIR ?? ".kubewise/test-cluster";
  const res = spawnSync(
    process.execPath,
    [
      "--import",
      "tsx",
      "src/cli/main.ts",
      "demo",
      "--trials",
      "3",
      "--dir",
      clusterDir,
      "--db",
      join(dir, "optimizer.db"),
      "--report-dir",
      join(dir, "report"),
    ],
    { encoding: "utf8", timeout: 300_000 },
  );
  assert.equal(res.status, 0, res.stderr);
  assert.match(res.stderr, /local cluster already running/);
  assert.match(res.stderr, /app: deployment kubewise-demo\/web-main (created|updated|unchanged)/);
  assert.match(res.stdout, /study "demo": 3 trials, reached max_trials/);
  assert.match(res.stdout, /best: trial \d+, objective \d+\.\d{4}: cpu=[\d.]+ mem=[\d.]+ COMMIT_DELAY=\d+/);
  const html = join(dir, "report", "demo.html");
  assert.ok(res.stdout.includes(`report: ${html}`), res.stdout);
  assert.ok(existsSync(html));
  assert.match(readFileSync(html, "utf8"), /<svg/);
  const report = JSON.parse(readFileSync(join(dir, "report", "demo.json"), "utf8")) as { trials: unknown[] };
  assert.equal(report.trials.length, 3);
  t.after(() => client.core.deleteNamespace({ name: "kubewise-demo" }).catch(() => undefined));
});
