import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { parse, parseAllDocuments } from "yaml";
import { toYaml, toYamlDocument } from "./yaml.js";

/** read parses YAML as kubectl (1.1) or as a 1.2 reader would. */
const read = (text: string, version: "1.1" | "1.2"): unknown => parse(text, { version });

test("Verifies that strings YAML 1.1 reads as booleans, numbers or null are quoted", () => {
  const tricky = [
    "yes",
    "no",
    "on",
    "off",
    "y",
    "N",
    "true",
    "null",
    "~",
    "1:20",
    "0777",
    "1_000",
    "0x1f",
    "1e3",
    ".inf",
    "2001-12-14",
    "",
    " padded",
    "a: b",
    "#x",
    "-x",
    "@x",
    "key:",
  ];
  const doc = Object.fromEntries(tricky.map((v, i) => [`k${i}`, v]));
  const text = toYamlDocument(doc);
  assert.deepEqual(read(text, "1.1"), doc);
  assert.deepEqual(read(text, "1.2"), doc);
  assert.match(text, /^k0: "yes"$/m);
});

test("Verifies that quantities, paths and image references stay plain and readable", () => {
  const text = toYamlDocument({
    cpu: "100m",
    memory: "128Mi",
    surge: "25%",
    path: "/healthz",
    image: "ghcr.io/a/b:1.2",
    target: "/$2",
  });
  assert.equal(
    text,
    "cpu: 100m\nmemory: 128Mi\nsurge: 25%\npath: /healthz\nimage: ghcr.io/a/b:1.2\ntarget: /$2\n",
  );
});

test("Verifies the block layout: nested maps, lists of maps, empty collections", () => {
  const text = toYamlDocument({ a: { b: [{ c: 1, d: [true, null] }, "x"], e: [], f: {} } });
  assert.equal(
    text,
    "a:\n  b:\n    - c: 1\n      d:\n        - true\n        - null\n    - x\n  e: []\n  f: {}\n",
  );
  assert.equal(toYaml([{ a: 1 }, { b: 2 }]), "a: 1\n---\nb: 2\n");
});

// Strings made of the characters the printer may leave plain, where a misjudged one would show.
const plainish = fc.oneof(
  fc.stringMatching(/^[A-Za-z_/][A-Za-z0-9_./@%+=,:$()*-]{0,6}$/),
  fc.stringMatching(/^[0-9][0-9.]{0,3}[mkKMGTPEi%]{0,2}$/),
);
const leafValue = fc.oneof(
  fc.string(),
  plainish,
  fc.constantFrom(
    "yes",
    "on",
    "N",
    "1:20",
    "0o17",
    "100m",
    "1.5Gi",
    "-1",
    ".5",
    "@",
    "|x",
    "a #b",
    "multi\nline",
    'q"uote',
    "\\",
  ),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }).filter((d) => !Object.is(d, -0)),
  fc.boolean(),
  fc.constant(null),
);
const key = fc.oneof(
  fc.string(),
  plainish,
  fc.constantFrom("app.kubernetes.io/name", "yes", "1", "a:b", "-"),
);
const json = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: "small" }, leafValue, tie("list"), tie("map")),
  list: fc.array(tie("value"), { maxLength: 4 }),
  map: fc.dictionary(key, tie("value"), { maxKeys: 4, noNullPrototype: true }),
})).map;

test("Verifies that any JSON object survives printing and reading back as YAML 1.1 and 1.2", () => {
  fc.assert(
    fc.property(json, (doc) => {
      const text = toYamlDocument(doc);
      assert.deepEqual(read(text, "1.1"), doc);
      assert.deepEqual(read(text, "1.2"), doc);
    }),
    { numRuns: 3000 },
  );
});

test("Verifies that a multi-document stream splits back into its documents", () => {
  const docs = [
    { kind: "A", n: [1] },
    { kind: "B", s: "---" },
  ];
  assert.deepEqual(
    parseAllDocuments(toYaml(docs)).map((d) => d.toJS() as unknown),
    docs,
  );
});
