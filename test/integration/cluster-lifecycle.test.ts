/**
 * The embedded cluster's own life cycle, with the CLI as a user runs it, on a second cluster of
 * one node beside the shared test cluster: `env` exports that kubectl can use, `up` on a running
 * cluster changes nothing, `up` after a crash cleans the stale state and starts fresh, `down`
 * stops exactly the recorded processes (by pid checked against the binary, never by name) and
 * `--keep` keeps the state, and a missing control plane without Go is a clear error.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { readState, type ClusterState } from "../../src/cluster/index.js";

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], env: NodeJS.ProcessEnv = process.env): Run {
  const res = spawnSync(process.execPath, ["--import", "tsx", "src/cli/main.ts", ...args], {
    encoding: "utf8",
    env,
    timeout: 240_000,
  });
  return { code: res.status, stdout: res.stdout, stderr: res.stderr };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function pids(state: ClusterState | undefined): number[] {
  assert.ok(state, "the cluster state is written");
  return state.components.map((c) => c.pid);
}

async function waitGone(pidList: number[], timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (pidList.some(alive)) {
    if (Date.now() > deadline) throw new Error(`processes still alive: ${pidList.filter(alive).join(", ")}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** decoy starts a long sleep under a control-plane binary's name, which a by-name stop would kill. */
function decoy(t: TestContext, dir: string, name: string): ChildProcess {
  const path = join(dir, name);
  copyFileSync("/bin/sleep", path);
  const child = spawn(path, ["600"], { stdio: "ignore" });
  t.after(() => child.kill("SIGKILL"));
  return child;
}

test("Verifies the cluster life cycle: env works with kubectl, up twice changes nothing, up after a crash starts fresh, down stops only what up recorded and --keep keeps the state", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "kubewise-lifecycle-"));
  t.after(() => {
    cli(["cluster", "down", "--dir", dir]);
    rmSync(dir, { recursive: true, force: true });
  });

  const first = cli(["cluster", "up", "--dir", dir, "--nodes", "1", "--quiet"]);
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, /kubeconfig: /);
  assert.match(first.stdout, /cluster env --dir /, "the printed commands name the folder");
  const started = readState(dir);
  const firstPids = pids(started);
  assert.equal(firstPids.length, 5);
  assert.ok(firstPids.every(alive));

  // env: eval'd by a shell, kubectl (the built one, first on PATH) reaches the cluster.
  const env = cli(["cluster", "env", "--dir", dir]);
  assert.equal(env.code, 0, env.stderr);
  assert.match(env.stdout, /^export KUBECONFIG=.*\nexport PATH=.*:"\$PATH"\n$/);
  const kubectl = spawnSync(
    "bash",
    ["-c", `${env.stdout}\ncommand -v kubectl && kubectl get nodes -o name`],
    {
      encoding: "utf8",
      env: { PATH: "/usr/bin:/bin", HOME: dir },
    },
  );
  assert.equal(kubectl.status, 0, kubectl.stderr);
  assert.equal(kubectl.stdout.split("\n")[0], join(started?.binDir ?? "", "kubectl"));
  assert.equal(kubectl.stdout.split("\n")[1], "node/kwok-node-0");

  // up on a running cluster: says so, same processes, same state.
  const stateText = readFileSync(join(dir, "state.json"), "utf8");
  const again = cli(["cluster", "up", "--dir", dir, "--nodes", "1"]);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /already running .*nothing changed/);
  assert.equal(readFileSync(join(dir, "state.json"), "utf8"), stateText);

  // A crash: every component killed at once. A decoy under a component's name, and a recorded
  // pid now held by another program, must survive the clean-up.
  const decoyDir = mkdtempSync(join(tmpdir(), "kubewise-decoy-"));
  t.after(() => rmSync(decoyDir, { recursive: true, force: true }));
  const namedLikeEtcd = decoy(t, decoyDir, "etcd");
  const reusedPid = decoy(t, decoyDir, "not-kwok");
  for (const pid of firstPids) process.kill(pid, "SIGKILL");
  await waitGone(firstPids);
  const crashed = JSON.parse(stateText) as ClusterState;
  const kwok = crashed.components.find((c) => c.name === "kwok");
  assert.ok(kwok && reusedPid.pid);
  kwok.pid = reusedPid.pid;
  writeFileSync(join(dir, "state.json"), JSON.stringify(crashed));
  const status = cli(["cluster", "status", "--dir", dir]);
  assert.notEqual(status.code, 0, "status reports the dead components");
  assert.match(status.stdout, /not running/);

  const fresh = cli(["cluster", "up", "--dir", dir, "--nodes", "1"]);
  assert.equal(fresh.code, 0, fresh.stderr);
  assert.match(fresh.stderr, /no longer running: cleaning it up/);
  const freshPids = pids(readState(dir));
  assert.ok(freshPids.every(alive));
  assert.ok(freshPids.every((p) => !firstPids.includes(p) && p !== reusedPid.pid));
  assert.ok(alive(namedLikeEtcd.pid ?? -1), "a process merely named etcd is not ours");
  assert.ok(alive(reusedPid.pid ?? -1), "a recorded pid now running another program is left alone");

  // down --keep: the recorded processes stop, the state stays; down then removes it.
  const kept = cli(["cluster", "down", "--dir", dir, "--keep"]);
  assert.equal(kept.code, 0, kept.stderr);
  assert.match(kept.stdout, /^stopped .*; kept /);
  await waitGone(freshPids);
  assert.ok(existsSync(join(dir, "state.json")));
  assert.ok(alive(namedLikeEtcd.pid ?? -1));
  const removed = cli(["cluster", "down", "--dir", dir]);
  assert.equal(removed.code, 0, removed.stderr);
  assert.match(removed.stdout, /no process was running; removed /);
  assert.equal(existsSync(dir), false);
});

test("Verifies that without built binaries and without Go, `cluster up` says what to install and starts nothing", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "kubewise-nogo-"));
  const cache = mkdtempSync(join(tmpdir(), "kubewise-empty-cache-"));
  t.after(() => {
    rmSync(dir, { recursive: true, force: true });
    rmSync(cache, { recursive: true, force: true });
  });
  const env = { ...process.env, KUBEWISE_CACHE: cache, PATH: `${dirname(process.execPath)}:/usr/bin:/bin` };
  assert.equal(spawnSync("go", ["version"], { env }).status === 0, false, "go is off the PATH");
  const res = cli(["cluster", "up", "--dir", join(dir, "cluster")], env);
  assert.equal(res.code, 1, res.stderr);
  assert.match(res.stderr, /Go is not installed: install Go >= 1\.26/);
  assert.doesNotMatch(res.stderr, /\n\s+at /, "no stack trace");
  assert.equal(readState(join(dir, "cluster")), undefined, "no cluster state was written");
});
