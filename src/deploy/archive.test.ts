import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MEDIA_TYPES, openImageArchive, sha256 } from "./archive.js";
import { RegistryError } from "./registry.js";
import { writeTar } from "./tar.js";
import { writeTestImage } from "./testing.js";

const dir = mkdtempSync(join(tmpdir(), "kubewise-archive-"));
after(() => rmSync(dir, { recursive: true, force: true }));

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

for (const format of ["oci", "docker"] as const) {
  for (const gzip of [false, true]) {
    test(`Verifies that a ${format} archive${gzip ? " (gzipped)" : ""} yields its config and layer blobs and one manifest, with matching digests`, async () => {
      const file = join(dir, `${format}${gzip ? ".tar.gz" : ".tar"}`);
      const image = writeTestImage(file, { format, files: { hello: "hi\n" }, tag: "app:1.0", gzip });
      const archive = await openImageArchive(file);
      try {
        assert.equal(archive.format, format);
        assert.equal(archive.tag, "1.0");
        assert.deepEqual(
          archive.blobs.map((b) => b.digest).sort(),
          [image.configDigest, image.layerDigest].sort(),
        );
        for (const blob of archive.blobs) {
          const data = await readAll(blob.open());
          assert.equal(sha256(data), blob.digest, "the streamed data is the blob");
          assert.equal(data.length, blob.size);
        }
        assert.equal(archive.manifests.length, 1);
        const m = archive.manifests[0]!;
        assert.equal(m.digest, image.manifestDigest);
        assert.equal(sha256(m.body), m.digest);
        assert.equal(m.mediaType, MEDIA_TYPES.ociManifest);
        const layer = archive.blobs.find((b) => b.digest === image.layerDigest);
        assert.equal(layer?.mediaType, MEDIA_TYPES.ociLayer);
      } finally {
        await archive.close();
      }
    });
  }
}

test("Verifies that an OCI index is pushed after the manifests it lists", async () => {
  const file = join(dir, "single.tar");
  writeTestImage(file, { format: "oci", files: { a: "1" } });
  const inner = await openImageArchive(file);
  const manifest = inner.manifests[0]!;
  const blobs = await Promise.all(inner.blobs.map(async (b) => ({ b, data: await readAll(b.open()) })));
  await inner.close();
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociIndex,
      manifests: [
        {
          mediaType: MEDIA_TYPES.ociManifest,
          digest: manifest.digest,
          size: manifest.body.length,
          platform: { os: "linux", architecture: "amd64" },
        },
      ],
    }),
  );
  const path = (d: string) => `blobs/sha256/${d.slice(7)}`;
  const nested = join(dir, "nested.tar");
  writeFileSync(
    nested,
    writeTar([
      { name: "oci-layout", data: "{}" },
      {
        name: "index.json",
        data: JSON.stringify({
          schemaVersion: 2,
          manifests: [{ mediaType: MEDIA_TYPES.ociIndex, digest: sha256(index), size: index.length }],
        }),
      },
      { name: path(sha256(index)), data: index },
      { name: path(manifest.digest), data: manifest.body },
      ...blobs.map(({ b, data }) => ({ name: path(b.digest), data })),
    ]),
  );
  const archive = await openImageArchive(nested);
  try {
    assert.deepEqual(
      archive.manifests.map((m) => m.digest),
      [manifest.digest, sha256(index)],
    );
    assert.equal(archive.manifests[1]?.mediaType, MEDIA_TYPES.ociIndex);
  } finally {
    await archive.close();
  }
});

test("Verifies that a file that is no image archive fails with RegistryError reason archive", async () => {
  const file = join(dir, "plain.tar");
  writeFileSync(file, writeTar([{ name: "readme", data: "no image" }]));
  await assert.rejects(openImageArchive(file), (err: unknown) => {
    assert.ok(err instanceof RegistryError);
    assert.equal(err.reason, "archive");
    assert.match(err.message, /neither index\.json .* nor manifest\.json/);
    return true;
  });
  const junk = join(dir, "junk.bin");
  writeFileSync(junk, Buffer.alloc(2048, 1));
  await assert.rejects(openImageArchive(junk), /not an image archive/);
  // A short text file given by mistake is not a tar archive, rather than an archive lacking index.json.
  const text = join(dir, "notes.txt");
  writeFileSync(text, "8 bytes\n");
  await assert.rejects(openImageArchive(text), (err: unknown) => {
    assert.ok(err instanceof RegistryError);
    assert.equal(err.reason, "archive");
    assert.match(
      err.message,
      /not an image archive \(.* is not a tar archive \(8 bytes, shorter than one 512-byte header\)\)/,
    );
    assert.doesNotMatch(err.message, /neither index\.json/);
    return true;
  });
});

test("Verifies that a corrupt manifest blob is caught by its digest", async () => {
  const file = join(dir, "corrupt.tar");
  const image = writeTestImage(file, { format: "oci", files: { a: "1" } });
  const tarData = writeTar([
    {
      name: "index.json",
      data: JSON.stringify({
        schemaVersion: 2,
        manifests: [{ mediaType: MEDIA_TYPES.ociManifest, digest: image.manifestDigest, size: 1 }],
      }),
    },
    { name: `blobs/sha256/${image.manifestDigest.slice(7)}`, data: "{}" },
  ]);
  writeFileSync(file, tarData);
  await assert.rejects(openImageArchive(file), /does not match its digest/);
});

test("Verifies that --ref picks an image by tag and names the choices when it matches none", async () => {
  const file = join(dir, "tagged.tar");
  writeTestImage(file, { format: "docker", files: { a: "1" }, tag: "shop/app:2.1" });
  const archive = await openImageArchive(file, "2.1");
  await archive.close();
  assert.equal(archive.tag, "2.1");
  await assert.rejects(openImageArchive(file, "9.9"), /has no image tagged 9\.9 \(it has: shop\/app:2\.1\)/);
});
