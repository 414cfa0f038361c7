import { test } from "node:test";
import assert from "node:assert/strict";
import { childName, shortHash } from "./names.js";
import { parseImageRef, resolveImage } from "./image.js";

test("Verifies that childName keeps short names readable and bounds long ones", () => {
  assert.equal(childName("web", "tls"), "web-tls");
  const parent = "a".repeat(60);
  const name = childName(parent, "secrets");
  assert.ok(name.length <= 63, name);
  assert.match(name, /^a+-secrets-[0-9a-f]{8}$/);
  assert.ok(childName(parent, "cron-0", 52).length <= 52);
});

test("Verifies that long parents sharing a prefix still get different child names", () => {
  const a = childName(`${"x".repeat(62)}a`, "headless");
  const b = childName(`${"x".repeat(62)}b`, "headless");
  assert.notEqual(a, b);
  assert.equal(
    childName(`${"x".repeat(62)}a`, "headless"),
    a,
    "and the same parent always gets the same name",
  );
});

test("Verifies that shortHash is stable across runs (SHA-256 prefix)", () => {
  assert.equal(shortHash("abc"), "ba7816bf");
});

test("Verifies that image references split at the tag, not at a registry port", () => {
  assert.deepEqual(parseImageRef("localhost:5000/app"), { repository: "localhost:5000/app" });
  assert.deepEqual(parseImageRef("localhost:5000/app:v1"), { repository: "localhost:5000/app", tag: "v1" });
  assert.deepEqual(parseImageRef(`nginx@sha256:${"a".repeat(64)}`), {
    repository: "nginx",
    digest: `sha256:${"a".repeat(64)}`,
  });
  assert.match(String(parseImageRef("Nginx")), /not an image repository/);
  assert.match(String(parseImageRef("nginx@sha256:zz")), /not an image digest/);
});

test("Verifies how AUTO and external images resolve with a tag or a digest", () => {
  const digest = `sha256:${"b".repeat(64)}`;
  assert.equal(resolveImage("AUTO", "web"), "localhost:5000/web:latest");
  assert.equal(resolveImage("AUTO", "web", { tag: "v2" }), "localhost:5000/web:v2");
  assert.equal(resolveImage("AUTO", "web", { tag: "v2", digest }), `localhost:5000/web@${digest}`);
  assert.equal(
    resolveImage("AUTO", "web", { registry: "registry.local:5001" }),
    "registry.local:5001/web:latest",
  );
  assert.equal(resolveImage("nginx", "web"), "nginx");
  assert.equal(resolveImage("nginx:1.27", "web", { tag: "1.28" }), "nginx:1.28");
  assert.equal(resolveImage("nginx:1.27", "web", { digest }), `nginx@${digest}`);
  assert.throws(
    () => resolveImage("AUTO", "web", { digest: "md5:1" }),
    /digest: "md5:1" is not an image digest/,
  );
});
