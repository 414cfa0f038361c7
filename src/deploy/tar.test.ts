import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { indexTar, normalizeName, writeTar } from "./tar.js";

const dir = mkdtempSync(join(tmpdir(), "kubewise-tar-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, data: Buffer): string {
  const file = join(dir, name);
  writeFileSync(file, data);
  return file;
}

test("Verifies that what writeTar writes, indexTar reads back: names, sizes, data and links", async () => {
  const big = Buffer.alloc(1500, 7);
  const file = write(
    "a.tar",
    writeTar([
      { name: "dir" },
      { name: "dir/hello.txt", data: "hello\n" },
      { name: "dir/big.bin", data: big },
      { name: "empty", data: "" },
      { name: "link.txt", symlink: "dir/hello.txt" },
      { name: `${"d".repeat(120)}/${"f".repeat(90)}`, data: "long" },
    ]),
  );
  const tar = await indexTar(file);
  assert.equal(tar.entries.get("dir")?.type, "directory");
  assert.equal(tar.entries.get("dir/big.bin")?.size, 1500);
  assert.equal((await tar.read("dir/hello.txt")).toString(), "hello\n");
  assert.deepEqual(await tar.read("dir/big.bin"), big);
  assert.equal((await tar.read("empty")).length, 0);
  assert.equal((await tar.read("./link.txt")).toString(), "hello\n", "symlinks resolve to their target");
  assert.equal((await tar.read(`${"d".repeat(120)}/${"f".repeat(90)}`)).toString(), "long");
  const chunks: Buffer[] = [];
  for await (const c of tar.stream(tar.resolve("dir/hello.txt")!)) chunks.push(c as Buffer);
  assert.equal(Buffer.concat(chunks).toString(), "hello\n");
});

test("Verifies that writeTar is deterministic, so a layer's digest depends only on its files", () => {
  const a = writeTar([{ name: "x", data: "1" }]);
  const b = writeTar([{ name: "x", data: "1" }]);
  assert.deepEqual(a, b);
  assert.equal(a.length % 512, 0);
});

test("Verifies that PAX path records and GNU long names override the header name", async () => {
  const base = writeTar([{ name: "short", data: "pax data" }]);
  const pax = (key: string, value: string): Buffer => {
    const record = ` ${key}=${value}\n`;
    let length = record.length;
    while (`${length}${record}`.length !== length) length = `${length}${record}`.length;
    return Buffer.from(`${length}${record}`);
  };
  const records = pax("path", "a/very/long/pax/name.json");
  const header = Buffer.from(base.subarray(0, 512));
  // Turn a copy of the header into a PAX 'x' header carrying the records, then fix its checksum.
  header.fill(0, 124, 136);
  header.write(`${records.length.toString(8).padStart(11, "0")}\0`, 124, 12, "ascii");
  header.write("x", 156, 1, "ascii");
  header.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of header) sum += b;
  header.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, 8, "ascii");
  const padded = Buffer.concat([records, Buffer.alloc(512 - records.length)]);
  const file = write("pax.tar", Buffer.concat([header, padded, base]));
  const tar = await indexTar(file);
  assert.equal((await tar.read("a/very/long/pax/name.json")).toString(), "pax data");
  assert.equal(tar.entries.has("short"), false);
});

test("Verifies that a file that is not a tar archive is refused with the offset of the bad header", async () => {
  const file = write("not.tar", Buffer.alloc(1024, 65));
  await assert.rejects(indexTar(file), /not a tar archive \(bad header at byte 0\)/);
  const truncated = write("cut.tar", writeTar([{ name: "x", data: Buffer.alloc(2000) }]).subarray(0, 1024));
  await assert.rejects(indexTar(truncated), /truncated/);
});

test("Verifies that a file shorter than one header, or one whose first header has a bad checksum, is not a tar archive", async () => {
  const text = write("note.txt", Buffer.from("hello!\n\n"));
  await assert.rejects(
    indexTar(text),
    /note\.txt is not a tar archive \(8 bytes, shorter than one 512-byte header\)/,
  );
  await assert.rejects(indexTar(write("empty.bin", Buffer.alloc(0))), /not a tar archive \(0 bytes/);
  // One header long, with a text where the checksum should be.
  const header = Buffer.from(writeTar([{ name: "x", data: "1" }]).subarray(0, 512));
  header.write("garbage\0", 148, 8, "ascii");
  await assert.rejects(indexTar(write("bad-sum.tar", header)), /not a tar archive \(bad header at byte 0\)/);
  // The smallest real archive (one header, its data, no end blocks) and an empty one (zeros) are fine.
  const smallest = write("smallest.tar", writeTar([{ name: "x", data: "1" }]).subarray(0, 1024));
  assert.equal((await (await indexTar(smallest)).read("x")).toString(), "1");
  assert.equal((await indexTar(write("zeros.tar", Buffer.alloc(1024)))).entries.size, 0);
});

test("Verifies that member names are normalized: ./ and trailing slashes dropped", () => {
  assert.equal(normalizeName("./index.json"), "index.json");
  assert.equal(normalizeName("blobs/sha256/"), "blobs/sha256");
  assert.equal(normalizeName("/abs"), "abs");
});
