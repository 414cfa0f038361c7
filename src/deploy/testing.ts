import { writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { MEDIA_TYPES, sha256 } from "./archive.js";
import { writeTar } from "./tar.js";

/**
 * Tiny image archives for tests, built from scratch (no Docker): one layer holding the given
 * files, an OCI config, a manifest, and either an OCI layout (index.json, oci-layout,
 * blobs/sha256/...) or the older `docker save` layout (manifest.json, <id>/layer.tar).
 */

/** TestImage describes an archive written by writeTestImage. */
export interface TestImage {
  /** manifestDigest is the image manifest's digest (for docker save: the one push will write). */
  manifestDigest: string;
  configDigest: string;
  layerDigest: string;
  manifest: Buffer;
  config: Buffer;
  layer: Buffer;
}

/** TestImageOptions shape the archive. */
export interface TestImageOptions {
  format: "oci" | "docker";
  /** files in the single layer. */
  files: Record<string, string>;
  /** tag recorded in the archive (RepoTags or ref.name). */
  tag?: string;
  /** gzip compresses the whole archive (as `docker save | gzip` does). */
  gzip?: boolean;
}

/** writeTestImage writes an image archive to `file` and returns its digests. */
export function writeTestImage(file: string, options: TestImageOptions): TestImage {
  const layer = writeTar(Object.entries(options.files).map(([name, data]) => ({ name, data })));
  const layerDigest = sha256(layer);
  const config = Buffer.from(
    JSON.stringify({
      architecture: "amd64",
      os: "linux",
      config: { Cmd: ["/hello"] },
      rootfs: { type: "layers", diff_ids: [layerDigest] },
    }),
  );
  const configDigest = sha256(config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociManifest,
      config: { mediaType: MEDIA_TYPES.ociConfig, digest: configDigest, size: config.length },
      layers: [{ mediaType: MEDIA_TYPES.ociLayer, digest: layerDigest, size: layer.length }],
    }),
  );
  const blob = (digest: string) => `blobs/sha256/${digest.slice("sha256:".length)}`;
  let tar: Buffer;
  if (options.format === "oci") {
    const index = {
      schemaVersion: 2,
      manifests: [
        {
          mediaType: MEDIA_TYPES.ociManifest,
          digest: sha256(manifest),
          size: manifest.length,
          ...(options.tag ? { annotations: { "org.opencontainers.image.ref.name": options.tag } } : {}),
        },
      ],
    };
    tar = writeTar([
      { name: "oci-layout", data: JSON.stringify({ imageLayoutVersion: "1.0.0" }) },
      { name: "index.json", data: JSON.stringify(index) },
      { name: "blobs" },
      { name: "blobs/sha256" },
      { name: blob(sha256(manifest)), data: manifest },
      { name: blob(configDigest), data: config },
      { name: blob(layerDigest), data: layer },
    ]);
  } else {
    const id = layerDigest.slice("sha256:".length);
    const configName = `${configDigest.slice("sha256:".length)}.json`;
    tar = writeTar([
      { name: configName, data: config },
      { name: `${id}/` },
      { name: `${id}/layer.tar`, data: layer },
      {
        name: "manifest.json",
        data: JSON.stringify([
          { Config: configName, RepoTags: options.tag ? [options.tag] : null, Layers: [`${id}/layer.tar`] },
        ]),
      },
    ]);
  }
  writeFileSync(file, options.gzip ? gzipSync(tar) : tar);
  // The manifest push writes for a docker save archive is built the same way, so it has this digest.
  return { manifestDigest: sha256(manifest), configDigest, layerDigest, manifest, config, layer };
}
