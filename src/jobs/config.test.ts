import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError } from "../config/index.js";
import {
  checkUrlTemplate,
  DEFAULT_OPTUNE_URL,
  DEFAULT_OUTBOX,
  namespaceListProblem,
  resolveWatchConfig,
  resolveWebhookConfig,
} from "./config.js";

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err;
  }
  assert.fail("expected an error");
}

test("Verifies that the seed's defaults apply when only OPTUNE_ACCOUNT is set", () => {
  const config = resolveWatchConfig({}, { OPTUNE_ACCOUNT: "example.com" });
  assert.deepEqual(config.target, {
    urlTemplate: DEFAULT_OPTUNE_URL,
    account: "example.com",
    token: undefined,
  });
  assert.deepEqual(config.namespaces, ["default"]);
  assert.equal(config.appIdPath.source, "spec/containers/0/env/[JOBID]");
  assert.equal(config.outbox, DEFAULT_OUTBOX);
});

test("Verifies that the seed's environment variables are read", () => {
  const config = resolveWatchConfig(
    {},
    {
      OPTUNE_URL: "http://127.0.0.1:9000/{acct}/{app_id}",
      OPTUNE_ACCOUNT: "acme",
      OPTUNE_AUTH_TOKEN: "s3cret\n",
      POD_NAMESPACES: "batch, jobs ,batch",
      OPTUNE_APP_ID: "metadata/labels/job",
    },
  );
  assert.equal(config.target.urlTemplate, "http://127.0.0.1:9000/{acct}/{app_id}");
  assert.equal(config.target.token, "s3cret");
  assert.deepEqual(config.namespaces, ["batch", "jobs"]);
  assert.equal(config.appIdPath.source, "metadata/labels/job");
});

test("Verifies that flags override the environment, the token file included", () => {
  const dir = mkdtempSync(join(tmpdir(), "kubewise-jobs-config-"));
  const tokenFile = join(dir, "token");
  writeFileSync(tokenFile, "from-file\n");
  const config = resolveWatchConfig(
    {
      url: "https://x.example/{app_id}",
      account: "flag",
      tokenFile,
      namespaces: "a",
      appIdPath: "metadata/name",
      outbox: "/tmp/o.db",
    },
    {
      OPTUNE_URL: "https://env.example/{acct}",
      OPTUNE_ACCOUNT: "env",
      OPTUNE_AUTH_TOKEN: "from-env",
      POD_NAMESPACES: "b",
    },
  );
  assert.equal(config.target.urlTemplate, "https://x.example/{app_id}");
  assert.equal(config.target.account, "flag");
  assert.equal(config.target.token, "from-file");
  assert.deepEqual(config.namespaces, ["a"]);
  assert.equal(config.appIdPath.source, "metadata/name");
  assert.equal(config.outbox, "/tmp/o.db");
});

test("Verifies that an empty token means no Authorization header", () => {
  assert.equal(
    resolveWatchConfig({}, { OPTUNE_ACCOUNT: "a", OPTUNE_AUTH_TOKEN: "  " }).target.token,
    undefined,
  );
});

test("Verifies that the account is required when the URL has {acct}, and only then", () => {
  const err = configError(() => resolveWatchConfig({}, {}));
  assert.match(
    err.message,
    /--account\/OPTUNE_ACCOUNT: must be set because the URL contains \{acct\} \(got ""\)/,
  );
  assert.equal(resolveWatchConfig({ url: "http://127.0.0.1/{app_id}" }, {}).target.account, "");
});

test("Verifies that URL templates with unknown placeholders or other schemes are rejected", () => {
  assert.equal(checkUrlTemplate(DEFAULT_OPTUNE_URL), undefined);
  assert.match(checkUrlTemplate("https://x/{account}/{app_id}") ?? "", /unknown placeholder "\{account\}"/);
  assert.match(checkUrlTemplate("https://x/{app_id") ?? "", /has a stray "\{"/);
  assert.match(checkUrlTemplate("ftp://x/{app_id}") ?? "", /http or https URL, not ftp/);
  assert.match(checkUrlTemplate("x/{app_id}") ?? "", /not an absolute URL/);
  assert.match(checkUrlTemplate("") ?? "", /must not be empty/);
  const err = configError(() => resolveWatchConfig({ url: "https://x/{job}" }, { OPTUNE_ACCOUNT: "a" }));
  assert.match(
    err.message,
    /--url: unknown placeholder "\{job\}"; allowed are \{acct\} and \{app_id\} \(got "https:\/\/x\/\{job\}"\)/,
  );
});

test("Verifies that a stray brace, or a URL without {app_id}, is an error", () => {
  assert.match(checkUrlTemplate("https://x/{acct}}/{app_id}") ?? "", /has a stray "\}"/);
  assert.match(checkUrlTemplate("https://x/{{acct}/{app_id}") ?? "", /has a stray "\{"/);
  assert.match(checkUrlTemplate("https://x/a}b/{app_id}") ?? "", /has a stray "\}"/);
  assert.match(checkUrlTemplate("https://x/{app_id}/{") ?? "", /has a stray "\{"/);
  assert.equal(checkUrlTemplate("https://x/{acct}/{app_id}/{app_id}"), undefined);
  assert.match(
    checkUrlTemplate("https://x/{acct}/servo") ?? "",
    /must contain \{app_id\}: each report is sent to the URL of its pod's app id/,
  );
  const err = configError(() =>
    resolveWatchConfig({}, { OPTUNE_URL: "https://x/{acct}", OPTUNE_ACCOUNT: "a" }),
  );
  assert.match(err.message, /OPTUNE_URL: must contain \{app_id\}/);
  const stray = configError(() => resolveWatchConfig({ url: "https://x/{app_id}}" }, {}));
  assert.match(stray.message, /--url: has a stray "\}"/);
});

test("Verifies that POD_NAMESPACES, OPTUNE_APP_ID and OPTUNE_URL set but empty are errors, not the defaults", () => {
  const err = configError(() =>
    resolveWatchConfig({}, { OPTUNE_ACCOUNT: "a", POD_NAMESPACES: "", OPTUNE_APP_ID: "", OPTUNE_URL: "" }),
  );
  assert.deepEqual(
    new Set(err.issues.map((i) => i.path[0])),
    new Set(["POD_NAMESPACES", "OPTUNE_APP_ID", "OPTUNE_URL"]),
  );
  assert.match(err.message, /POD_NAMESPACES: is set but empty: list the namespaces to watch/);
  assert.match(err.message, /OPTUNE_APP_ID: is set but empty/);
  assert.match(err.message, /OPTUNE_URL: must not be empty/);
  assert.match(
    configError(() => resolveWatchConfig({ namespaces: " " }, { OPTUNE_ACCOUNT: "a" })).message,
    /--namespaces: is set but empty/,
  );
  const webhook = configError(() =>
    resolveWebhookConfig({ certFile: "c", keyFile: "k" }, { OPTUNE_APP_ID: "" }),
  );
  assert.match(webhook.message, /OPTUNE_APP_ID: is set but empty/);
});

test("Verifies that the config says where the namespaces came from", () => {
  assert.equal(
    resolveWatchConfig({}, { OPTUNE_ACCOUNT: "a", POD_NAMESPACES: "x" }).namespacesFrom,
    "POD_NAMESPACES",
  );
  assert.equal(
    resolveWatchConfig({ namespaces: "x" }, { OPTUNE_ACCOUNT: "a" }).namespacesFrom,
    "--namespaces",
  );
  assert.equal(resolveWatchConfig({}, { OPTUNE_ACCOUNT: "a" }).namespacesFrom, "--namespaces/POD_NAMESPACES");
});

test("Verifies that empty or malformed namespace names are named, with their source", () => {
  const err = configError(() =>
    resolveWatchConfig({}, { OPTUNE_ACCOUNT: "a", POD_NAMESPACES: "batch,,Jobs" }),
  );
  assert.equal(err.issues.length, 2);
  assert.match(err.message, /POD_NAMESPACES\.1: a namespace name is empty \(check for a stray comma\)/);
  assert.match(err.message, /POD_NAMESPACES\.2: must be a namespace name.* \(got "Jobs"\)/);
});

test("Verifies that a bad app-id path is reported with the parser's reason and its flag", () => {
  const err = configError(() => resolveWatchConfig({ appIdPath: "spec//x" }, { OPTUNE_ACCOUNT: "a" }));
  assert.match(err.message, /--app-id-path: element 2 is empty/);
  const fromEnv = configError(() => resolveWatchConfig({}, { OPTUNE_ACCOUNT: "a", OPTUNE_APP_ID: "[a,b]" }));
  assert.match(fromEnv.message, /OPTUNE_APP_ID: element 1 "\[a,b\]" has 2 parts/);
});

test("Verifies that all problems are reported at once", () => {
  const err = configError(() => resolveWatchConfig({ url: "mailto:x", namespaces: ",", outbox: "" }, {}));
  const fields = err.issues.map((i) => i.path[0]);
  assert.deepEqual(new Set(fields), new Set(["--url", "--namespaces", "--outbox"]));
});

test("Verifies that an unreadable token file names the file, not a token", () => {
  const err = configError(() =>
    resolveWatchConfig({ tokenFile: "/nonexistent/token" }, { OPTUNE_ACCOUNT: "a" }),
  );
  assert.equal(err.reason, "unreadable");
  assert.match(err.message, /--token-file: file not found \(got "\/nonexistent\/token"\)/);
});

test("Verifies that the token never appears in a configuration error", () => {
  const err = configError(() => resolveWatchConfig({ url: "bad" }, { OPTUNE_AUTH_TOKEN: "TOPSECRET-123" }));
  assert.doesNotMatch(err.message, /TOPSECRET/);
});

test("Verifies that the webhook config parses host:port and requires cert and key", () => {
  const ok = resolveWebhookConfig({ certFile: "c.pem", keyFile: "k.pem", listen: "[::1]:9443" }, {});
  assert.equal(ok.host, "::1");
  assert.equal(ok.port, 9443);
  assert.equal(ok.appIdPath.source, "spec/containers/0/env/[JOBID]");
  const defaults = resolveWebhookConfig({ certFile: "c", keyFile: "k" }, { OPTUNE_APP_ID: "metadata/name" });
  assert.equal(defaults.host, "127.0.0.1");
  assert.equal(defaults.port, 8443);
  assert.equal(defaults.appIdPath.source, "metadata/name");
  const err = configError(() => resolveWebhookConfig({ listen: "8443" }, {}));
  assert.match(err.message, /--listen: must be host:port/);
  assert.match(err.message, /--cert-file: is required/);
  assert.match(err.message, /--key-file: is required/);
  assert.match(
    configError(() => resolveWebhookConfig({ listen: "a:70000", certFile: "c", keyFile: "k" }, {})).message,
    /at most 65535/,
  );
});

test("Verifies that a namespace list names its first bad namespace and why", () => {
  assert.equal(namespaceListProblem("batch,etl"), "");
  assert.match(namespaceListProblem("batch,,etl"), /empty \(check for a stray comma\)/);
  assert.match(namespaceListProblem("batch,Bad_NS"), /^"Bad_NS": must be a namespace name/);
});
