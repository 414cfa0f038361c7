import { test } from "node:test";
import assert from "node:assert/strict";
import { z } from "zod";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, loadConfigFile, parseConfig, parseYamlText, readYamlFile } from "./index.js";

const schema = z.strictObject({
  on_fail: z.enum(["destroy", "nop"]).default("destroy"),
  settlement: z.number().min(0).default(0),
  nested: z.strictObject({ name: z.string() }).optional(),
});

test("Verifies that valid data gets its defaults", () => {
  assert.deepEqual(parseConfig(schema, {}), { on_fail: "destroy", settlement: 0 });
});

test("Verifies that an enum error names the field, the value and what is allowed", () => {
  assert.throws(
    () => parseConfig(schema, { on_fail: "foo" }, "servo.yaml"),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.reason, "invalid");
      assert.match(err.message, /^servo\.yaml: 1 problem:/);
      assert.match(err.message, /on_fail: must be one of "destroy", "nop" \(got "foo"\)/);
      return true;
    },
  );
});

test("Verifies that unknown keys and several problems are all reported at once", () => {
  assert.throws(
    () => parseConfig(schema, { settlement: -1, nested: { name: "x", extra: 1 } }, "f.yaml"),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.issues.length, 2);
      assert.match(err.message, /settlement: .* \(got -1\)/);
      assert.match(err.message, /nested: unknown key "extra" \(known keys: name\)/);
      return true;
    },
  );
});

test("Verifies that YAML syntax errors name the line", () => {
  assert.throws(
    () => parseYamlText("a: 1\nb: [1, 2\n", "bad.yaml"),
    (err: unknown) => err instanceof ConfigError && /bad\.yaml: .*line \d+/s.test(err.message),
  );
});

test("Verifies that a file with two non-empty YAML documents is refused, and empty documents do not count", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "kubewise-config-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, text: string): string => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };
  const two = file("two.yaml", "name: a\n---\nname: b\n");
  assert.throws(
    () => readYamlFile(two),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError, String(err));
      assert.equal(err.reason, "invalid");
      assert.equal(
        err.message,
        `${two}: 1 problem:\n  (document): holds 2 YAML documents (separated by "---"); expected one`,
      );
      return true;
    },
  );
  assert.throws(() => loadConfigFile(z.object({ name: z.string() }), two), /holds 2 YAML documents/);
  assert.deepEqual(readYamlFile(file("one.yaml", "---\nname: a\n---\n# nothing here\n")), { name: "a" });
  assert.deepEqual(readYamlFile(file("lead.yaml", "# header\n---\nname: a\n")), { name: "a" });
  assert.deepEqual(readYamlFile(file("empty.yaml", "")), {});
});

test("Verifies that duplicate keys are rejected", () => {
  assert.throws(() => parseYamlText("a: 1\na: 2\n"), ConfigError);
});

test("Verifies that an unknown key names the known ones through wrappers, records and arrays, and an empty string says so", () => {
  const deep = z.strictObject({
    sections: z
      .record(z.string(), z.array(z.strictObject({ a: z.string(), b: z.number().optional() })))
      .default({}),
    name: z.string().min(1),
    piped: z.strictObject({ x: z.number() }).optional().pipe(z.any()),
  });
  assert.throws(
    () =>
      parseConfig(
        deep,
        { sections: { s: [{ a: "x", c: 1 }] }, name: "", piped: { x: 1, y: 2 }, top: 1 },
        "f.yaml",
      ),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /sections\.s\.0: unknown key "c" \(known keys: a, b\)/);
      assert.match(err.message, /piped: unknown key "y" \(known keys: x\)/);
      assert.match(err.message, /unknown key "top" \(known keys: sections, name, piped\)/);
      assert.match(err.message, /name: must not be empty/);
      return true;
    },
  );
});
