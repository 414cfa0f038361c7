/**
 * `kubewise deploy push` against a real registry: Debian's `docker-registry` package (the CNCF
 * distribution registry, /usr/bin/docker-registry), started here on a free port with its storage
 * in a temporary folder. The image archives are built by the test itself, no Docker involved.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { renderOutput } from "../../src/cli/deploy.js";
import {
  MEDIA_TYPES,
  RegistryClient,
  RegistryError,
  pushImageArchive,
  readPushRecord,
  sha256,
  writeTar,
} from "../../src/deploy/index.js";
import { writeTestImage } from "../../src/deploy/testing.js";

const REGISTRY_BINARY = process.env.KUBEWISE_DOCKER_REGISTRY ?? "/usr/bin/docker-registry";
const missing = !existsSync(REGISTRY_BINARY);
const skip = missing
  ? `${REGISTRY_BINARY} not found: install Debian's docker-registry package (apt-get install -y --no-install-recommends docker-registry)`
  : false;

const dir = mkdtempSync(join(tmpdir(), "kubewise-registry-"));
let registry = "";
let server: ChildProcess | undefined;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** startRegistry starts the registry and resolves once it logs that it is listening. */
async function startRegistry(): Promise<void> {
  const port = await freePort();
  const config = join(dir, "config.yml");
  writeFileSync(
    config,
    [
      "version: 0.1",
      "log:",
      "  level: info",
      "storage:",
      "  filesystem:",
      `    rootdirectory: ${join(dir, "storage")}`,
      "http:",
      `  addr: 127.0.0.1:${port}`,
      "",
    ].join("\n"),
  );
  const child = spawn(REGISTRY_BINARY, ["serve", config], { stdio: ["ignore", "pipe", "pipe"] });
  server = child;
  registry = `127.0.0.1:${port}`;
  await new Promise<void>((resolve, reject) => {
    let log = "";
    const timer = setTimeout(() => reject(new Error(`registry did not start in 30 s:\n${log}`)), 30_000);
    const onData = (chunk: Buffer): void => {
      log += chunk.toString();
      if (log.includes("listening on")) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`registry exited with ${code}:\n${log}`));
    });
  });
}

before(async () => {
  if (!missing) await startRegistry();
});

after(async () => {
  if (server && server.exitCode === null) {
    const exited = new Promise((resolve) => server?.once("exit", resolve));
    server.kill("SIGTERM");
    await exited;
  }
  rmSync(dir, { recursive: true, force: true });
});

async function getBlob(repository: string, digest: string): Promise<Buffer> {
  const res = await fetch(`http://${registry}/v2/${repository}/blobs/${digest}`);
  assert.equal(res.status, 200, `GET blob ${digest}`);
  return Buffer.from(await res.arrayBuffer());
}

test(
  "Verifies that an OCI layout archive is pushed and its manifest and layer can be fetched by digest",
  { skip },
  async () => {
    const file = join(dir, "hello-oci.tar");
    const image = writeTestImage(file, { format: "oci", files: { hello: "hello from kubewise\n" } });
    const result = await pushImageArchive(file, { registry, repository: "hello", tag: "v1" });
    assert.equal(result.digest, image.manifestDigest);
    assert.equal(result.image, `${registry}/hello@${image.manifestDigest}`);
    assert.equal(result.blobsUploaded, 2);
    assert.equal(result.blobsSkipped, 0);

    const client = new RegistryClient(registry);
    const byDigest = await client.getManifest("hello", image.manifestDigest, [MEDIA_TYPES.ociManifest]);
    assert.deepEqual(byDigest.body, image.manifest, "the registry returns the exact manifest bytes");
    assert.equal(sha256(byDigest.body), image.manifestDigest);
    assert.equal(byDigest.mediaType, MEDIA_TYPES.ociManifest);
    const manifest = JSON.parse(byDigest.body.toString()) as { layers: { digest: string }[] };
    assert.equal(manifest.layers[0]?.digest, image.layerDigest);
    const byTag = await client.getManifest("hello", "v1", [MEDIA_TYPES.ociManifest]);
    assert.equal(byTag.digest, image.manifestDigest, "the tag points at the pushed manifest");
    assert.equal(sha256(await getBlob("hello", image.layerDigest)), image.layerDigest);

    const again = await pushImageArchive(file, { registry, repository: "hello", tag: "v1" });
    assert.equal(again.digest, result.digest);
    assert.equal(again.blobsUploaded, 0, "blobs the registry has are not uploaded again");
    assert.equal(again.blobsSkipped, 2);
  },
);

test(
  "Verifies that a gzipped `docker save` archive is pushed as an OCI manifest the registry serves",
  { skip },
  async () => {
    const file = join(dir, "hello-docker.tar.gz");
    const image = writeTestImage(file, {
      format: "docker",
      files: { "etc/motd": "docker save\n" },
      tag: "hello:2.0",
      gzip: true,
    });
    const result = await pushImageArchive(file, { registry, repository: "legacy" });
    assert.equal(result.tag, "2.0", "the archive's own tag is used when none is given");
    assert.equal(result.format, "docker");
    const fetched = await new RegistryClient(registry).getManifest("legacy", result.digest, [
      MEDIA_TYPES.ociManifest,
    ]);
    assert.equal(sha256(fetched.body), result.digest);
    const manifest = JSON.parse(fetched.body.toString()) as {
      config: { digest: string };
      layers: { digest: string }[];
    };
    assert.equal(manifest.config.digest, image.configDigest);
    assert.equal(manifest.layers[0]?.digest, image.layerDigest);
    const config = JSON.parse((await getBlob("legacy", image.configDigest)).toString()) as {
      rootfs: { diff_ids: string[] };
    };
    assert.deepEqual(config.rootfs.diff_ids, [image.layerDigest]);
  },
);

test(
  "Verifies that a layer whose data does not match its digest is refused by the registry",
  { skip },
  async () => {
    const file = join(dir, "good.tar");
    const image = writeTestImage(file, { format: "oci", files: { a: "real" } });
    // Same manifest and names, but the layer's bytes are replaced.
    const bad = join(dir, "bad.tar");
    const blob = (d: string) => `blobs/sha256/${d.slice(7)}`;
    const index = {
      schemaVersion: 2,
      manifests: [
        { mediaType: MEDIA_TYPES.ociManifest, digest: image.manifestDigest, size: image.manifest.length },
      ],
    };
    writeFileSync(
      bad,
      writeTar([
        { name: "index.json", data: JSON.stringify(index) },
        { name: blob(image.manifestDigest), data: image.manifest },
        { name: blob(image.configDigest), data: image.config },
        { name: blob(image.layerDigest), data: writeTar([{ name: "a", data: "tampered" }]) },
      ]),
    );
    await assert.rejects(pushImageArchive(bad, { registry, repository: "tampered" }), (err: unknown) => {
      assert.ok(err instanceof RegistryError);
      assert.equal(err.reason, "rejected");
      assert.match(err.message, /DIGEST_INVALID|digest/i);
      return true;
    });
  },
);

test("Verifies that a registry nobody listens on fails as unreachable", { skip }, async () => {
  const file = join(dir, "x.tar");
  writeTestImage(file, { format: "oci", files: { a: "1" } });
  const port = await freePort();
  await assert.rejects(
    pushImageArchive(file, { registry: `127.0.0.1:${port}`, repository: "x" }),
    (err: unknown) => err instanceof RegistryError && err.reason === "unreachable",
  );
});

test(
  "Verifies that `kubewise deploy push` records the digest and render then pins the AUTO image to it",
  { skip },
  async () => {
    const project = mkdtempSync(join(dir, "project-"));
    const spec = join(project, "service.yaml");
    writeFileSync(spec, "name: shop\nimage: AUTO\nport: { http: 8080 }\n");
    const archive = join(project, "image.tar");
    const image = writeTestImage(archive, { format: "oci", files: { app: "v1" }, tag: "1.0" });
    const cli = spawnSync(
      process.execPath,
      [
        "--import",
        "tsx",
        "src/cli/main.ts",
        "deploy",
        "push",
        "-f",
        spec,
        "--image-archive",
        archive,
        "--registry",
        registry,
      ],
      { encoding: "utf8" },
    );
    assert.equal(cli.status, 0, cli.stderr);
    assert.match(cli.stdout, new RegExp(`${registry}/shop@${image.manifestDigest}`));
    const record = readPushRecord(spec, "shop");
    assert.equal(record?.digest, image.manifestDigest);
    assert.equal(record?.tag, "1.0");
    assert.ok(existsSync(join(project, ".kubewise", "deploy", "shop.json")));
    const { text, warnings } = renderOutput({ file: spec, var: {}, output: "yaml" });
    assert.match(
      text,
      new RegExp(`image: "?${registry.replaceAll(".", "\\.")}/shop@${image.manifestDigest}"?\n`),
    );
    assert.match(text, /imagePullPolicy: IfNotPresent/, "a digest never needs pulling again");
    assert.deepEqual(warnings, []);
    const tagged = renderOutput({ file: spec, var: {}, output: "yaml", tag: "dev" });
    assert.match(tagged.text, /shop:dev/, "--tag wins over the recorded digest");
  },
);
