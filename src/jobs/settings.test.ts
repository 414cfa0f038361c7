import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError } from "../config/index.js";
import {
  NamespacedSettings,
  parseSettingsDocument,
  renderSettingsDocument,
  SettingsDocument,
  SettingsFile,
} from "./settings.js";

const doc = `
apiVersion: kubewise.io/v1alpha1
kind: JobSettings
apps:
  render-video:
    cpu: 0.5
    mem: 1.5
    env: {THREADS: 4, DEBUG: false, NAME: x}
    version: adjust-17
  "team/a b":
    mem: 0.25
    resources: limits
`;

test("Verifies that a settings document parses, with env values as strings and the default target", () => {
  const settings = parseSettingsDocument(doc, "settings.yaml");
  assert.deepEqual(settings.get("render-video"), {
    cpu: 0.5,
    mem: 1.5,
    env: { THREADS: "4", DEBUG: "false", NAME: "x" },
    resources: "both",
    version: "adjust-17",
  });
  assert.deepEqual(settings.get("team/a b"), { mem: 0.25, resources: "limits" });
  assert.equal(settings.get("other"), undefined);
});

test("Verifies that render and parse round-trip", () => {
  const settings = parseSettingsDocument(doc);
  assert.deepEqual(parseSettingsDocument(renderSettingsDocument(settings)), settings);
  assert.match(renderSettingsDocument(new Map()), /kind: JobSettings/);
});

test("Verifies that bad documents name the field and what is allowed", () => {
  const cases: [string, RegExp][] = [
    ["apiVersion: v1\nkind: JobSettings\n", /apiVersion: .*kubewise\.io\/v1alpha1/],
    [
      "apiVersion: kubewise.io/v1alpha1\nkind: JobSettings\napps: {a: {cpu: -1}}\n",
      /apps\.a\.cpu: cpu must be more than 0 cores \(got -1\)/,
    ],
    [
      "apiVersion: kubewise.io/v1alpha1\nkind: JobSettings\napps: {a: {cpus: 1}}\n",
      /apps\.a: unknown key "cpus"/,
    ],
    [
      "apiVersion: kubewise.io/v1alpha1\nkind: JobSettings\napps: {a: {resources: all}}\n",
      /must be one of "both", "requests", "limits"/,
    ],
    [
      "apiVersion: kubewise.io/v1alpha1\nkind: JobSettings\napps: {a: {env: {'1X': y}}}\n",
      /must be an environment variable name/,
    ],
    ["apps: [\n", /line \d+/],
  ];
  for (const [text, pattern] of cases) {
    assert.throws(
      () => parseSettingsDocument(text, "s.yaml"),
      (err: unknown) => err instanceof ConfigError && pattern.test(err.message),
      text,
    );
  }
});

test("Verifies that a settings file is re-read on change and a bad change keeps the last good settings", async () => {
  const dir = mkdtempSync(join(tmpdir(), "kubewise-settings-"));
  const file = join(dir, "settings.yaml");
  writeFileSync(file, doc);
  const source = await SettingsFile.open(file);
  assert.equal((await source.settingsFor("batch", "render-video"))?.cpu, 0.5);
  // Write-then-rename, as a ConfigMap volume update does: a new inode, so the change is seen.
  writeFileSync(join(dir, "next"), doc.replace("cpu: 0.5", "cpu: 2"));
  renameSync(join(dir, "next"), file);
  assert.equal((await source.settingsFor("batch", "render-video"))?.cpu, 2);
  writeFileSync(join(dir, "next"), "apps: [broken");
  renameSync(join(dir, "next"), file);
  assert.equal((await source.settingsFor("batch", "render-video"))?.cpu, 2, "the last good settings stay");
});

test("Verifies that a settings file may appear after start, and its removal clears the settings", async () => {
  const dir = mkdtempSync(join(tmpdir(), "kubewise-settings-"));
  const file = join(dir, "settings.yaml");
  const source = await SettingsFile.open(file);
  assert.equal(await source.settingsFor("batch", "render-video"), undefined);
  writeFileSync(file, doc);
  assert.equal((await source.settingsFor("batch", "render-video"))?.cpu, 0.5);
  rmSync(file);
  assert.equal(await source.settingsFor("batch", "render-video"), undefined);
});

test("Verifies that a malformed settings file at start is a clear error", async () => {
  const file = join(mkdtempSync(join(tmpdir(), "kubewise-settings-")), "settings.yaml");
  writeFileSync(file, "apiVersion: v1\n");
  await assert.rejects(
    SettingsFile.open(file),
    (err: unknown) => err instanceof ConfigError && /settings\.yaml: 2 problems:/.test(err.message),
  );
});

test("Verifies that a document source keeps the last good settings and clears on a removed key", async () => {
  const source = new SettingsDocument();
  assert.equal(source.get("render-video"), undefined);
  assert.equal(source.update(doc, "kubewise/kubewise-jobs-settings"), true);
  assert.equal(source.get("render-video")?.mem, 1.5);
  assert.equal(source.update("apiVersion: nope", "kubewise/kubewise-jobs-settings"), false);
  assert.equal(source.get("render-video")?.mem, 1.5);
  assert.equal(source.update(undefined, "kubewise/kubewise-jobs-settings"), true);
  assert.equal(source.get("render-video"), undefined);
});

test("Verifies that a settings file applies to pods of every namespace", async () => {
  const file = join(mkdtempSync(join(tmpdir(), "kubewise-settings-")), "settings.yaml");
  writeFileSync(file, doc);
  const source = await SettingsFile.open(file);
  assert.equal((await source.settingsFor("batch", "render-video"))?.cpu, 0.5);
  assert.equal((await source.settingsFor("other", "render-video"))?.cpu, 0.5);
});

test("Verifies that namespaced settings answer a pod from its own namespace's document only", async () => {
  const settings = new NamespacedSettings();
  const other = doc.replace("cpu: 0.5", "cpu: 2");
  assert.equal(settings.update("batch", doc, "configmap batch/kubewise-jobs-settings"), true);
  assert.equal(settings.update("team-b", other, "configmap team-b/kubewise-jobs-settings"), true);
  assert.equal((await settings.settingsFor("batch", "render-video"))?.cpu, 0.5);
  assert.equal((await settings.settingsFor("team-b", "render-video"))?.cpu, 2);
  assert.equal((await settings.settingsFor("team-b", "team/a b"))?.mem, 0.25);
  assert.equal(await settings.settingsFor("no-configmap", "render-video"), undefined);
  assert.equal(await settings.settingsFor("batch", "no-such-app"), undefined);
  assert.deepEqual(settings.namespaces(), ["batch", "team-b"]);
});

test("Verifies that a bad document keeps only its own namespace's last good settings, and a removed one clears only its own", async () => {
  const settings = new NamespacedSettings();
  settings.update("batch", doc, "configmap batch/kubewise-jobs-settings");
  settings.update("team-b", doc.replace("cpu: 0.5", "cpu: 2"), "configmap team-b/kubewise-jobs-settings");
  assert.equal(settings.update("batch", "apps: [broken", "configmap batch/kubewise-jobs-settings"), false);
  assert.equal(
    (await settings.settingsFor("batch", "render-video"))?.cpu,
    0.5,
    "the last good settings stay",
  );
  assert.equal((await settings.settingsFor("team-b", "render-video"))?.cpu, 2);

  // A malformed first document for a namespace gives that namespace no settings.
  assert.equal(settings.update("new", "apps: [broken", "configmap new/kubewise-jobs-settings"), false);
  assert.equal(await settings.settingsFor("new", "render-video"), undefined);

  // The ConfigMap without the key: no settings there, as for a deleted one.
  settings.update("team-b", undefined, "configmap team-b/kubewise-jobs-settings");
  assert.equal(await settings.settingsFor("team-b", "render-video"), undefined);
  settings.remove("batch", "configmap batch/kubewise-jobs-settings");
  assert.equal(await settings.settingsFor("batch", "render-video"), undefined);
  assert.deepEqual(settings.namespaces(), ["new", "team-b"]);
  settings.remove("never-seen", "configmap never-seen/kubewise-jobs-settings");
});
