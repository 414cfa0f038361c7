import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KubewiseError } from "../errors.js";
import { readToken, withOptimizerFlags } from "./common.js";

function withToken(t: TestContext, value: string | undefined): void {
  const saved = process.env.OPTUNE_AUTH_TOKEN;
  if (value === undefined) delete process.env.OPTUNE_AUTH_TOKEN;
  else process.env.OPTUNE_AUTH_TOKEN = value;
  t.after(() => {
    if (saved === undefined) delete process.env.OPTUNE_AUTH_TOKEN;
    else process.env.OPTUNE_AUTH_TOKEN = saved;
  });
}

test("Verifies that a token comes from the file (trimmed), else OPTUNE_AUTH_TOKEN, else none", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "kubewise-token-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, "token");
  writeFileSync(file, "s3cret\n");
  withToken(t, "from-env");
  assert.equal(readToken(file), "s3cret");
  assert.equal(readToken(undefined), "from-env");
  withToken(t, undefined);
  assert.equal(readToken(undefined), undefined);
});

test("Verifies that a missing or empty token file is a clear error naming the flag and the file", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "kubewise-token-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const missing = join(dir, "nope");
  assert.throws(
    () => readToken(missing),
    (err: unknown) =>
      err instanceof KubewiseError &&
      err.message === `--token-file ${missing}: the token file cannot be read (ENOENT)`,
  );
  const empty = join(dir, "empty");
  writeFileSync(empty, "  \n");
  assert.throws(
    () => readToken(empty, "servo.yaml: remote.token_file"),
    (err: unknown) =>
      err instanceof KubewiseError &&
      err.message === `servo.yaml: remote.token_file ${empty}: the token file is empty`,
  );
});

test("Verifies that --max-sleep takes seconds >= 0 and names a bad value", async () => {
  const { Command } = await import("commander");
  const parse = (value: string): unknown => {
    const cmd = withOptimizerFlags(new Command("run").exitOverride().configureOutput({ writeErr: () => {} }));
    cmd.parse(["--max-sleep", value], { from: "user" });
    return cmd.opts().maxSleep;
  };
  assert.equal(parse("0"), 0);
  assert.equal(parse("2.5"), 2.5);
  for (const bad of ["abc", "-1", ""]) {
    assert.throws(() => parse(bad), new RegExp(`must be a number of seconds >= 0, not "${bad}"`));
  }
});

test("Verifies that jobs release-finalizers refuses a bad --namespaces value, naming it", async () => {
  const { jobsCommand } = await import("./jobs.js");
  const jobs = jobsCommand()
    .exitOverride()
    .configureOutput({ writeErr: () => {} });
  for (const sub of jobs.commands) sub.exitOverride().configureOutput({ writeErr: () => {} });
  assert.throws(
    () => jobs.parse(["release-finalizers", "--namespaces", "batch,Bad_NS"], { from: "user" }),
    /option '--namespaces <list>' argument 'batch,Bad_NS' is invalid. "Bad_NS": must be a namespace name/,
  );
});
