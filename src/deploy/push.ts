import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { openImageArchive } from "./archive.js";
import { DeployError } from "./errors.js";
import { LOCAL_REGISTRY, parseImageRef } from "./image.js";
import { RegistryClient, RegistryError, type RegistryOptions } from "./registry.js";

/**
 * Pushing an `image: AUTO` service's image: an image archive goes to the registry over the
 * Registry HTTP API v2, and the digest the registry stored is recorded in a small state file
 * beside the spec, `.kubewise/deploy/<name>.json`, which `render`, `plan` and `apply` read so
 * the Deployment runs exactly that image, `<registry>/<name>@sha256:…`.
 */

/** PushOptions say where an archive goes. */
export interface PushOptions extends RegistryOptions {
  /** registry host. @default "localhost:5000" */
  registry?: string;
  /** repository in the registry: the service name for `image: AUTO`. */
  repository: string;
  /** tag to put the image under. @default the archive's own tag, else "latest" */
  tag?: string;
  /** ref picks one image from an archive holding several (a tag or name:tag). */
  ref?: string;
  /** onProgress gets a line per blob. */
  onProgress?: (message: string) => void;
}

/** PushResult is what a push did and the pinned reference to run. */
export interface PushResult {
  registry: string;
  repository: string;
  tag: string;
  /** digest of the image manifest (or index) the registry stored. */
  digest: string;
  /** image is `<registry>/<repository>@<digest>`. */
  image: string;
  format: "oci" | "docker";
  blobsUploaded: number;
  blobsSkipped: number;
  bytesUploaded: number;
}

/**
 * pushImageArchive pushes an OCI layout tar or a `docker save` archive: every blob the registry
 * does not have yet, then the manifests, the image's last under the tag. The registry verifies
 * each blob against its digest, so a corrupt archive fails here, not on a node.
 */
export async function pushImageArchive(file: string, options: PushOptions): Promise<PushResult> {
  const registry = options.registry ?? LOCAL_REGISTRY;
  const archive = await openImageArchive(file, options.ref);
  try {
    const tag = options.tag ?? archive.tag ?? "latest";
    const checked = parseImageRef(`${registry}/${options.repository}:${tag}`);
    if (typeof checked === "string") throw new DeployError("invalid", `push: ${checked}`);
    const client = new RegistryClient(registry, options);
    let uploaded = 0;
    let skipped = 0;
    let bytes = 0;
    for (const blob of archive.blobs) {
      if (await client.blobExists(options.repository, blob.digest)) {
        skipped++;
        options.onProgress?.(`blob ${blob.digest.slice(0, 19)} already in ${registry}`);
        continue;
      }
      options.onProgress?.(`uploading blob ${blob.digest.slice(0, 19)} (${blob.size} bytes)`);
      await client.uploadBlob(options.repository, blob.digest, blob.size, blob.open);
      uploaded++;
      bytes += blob.size;
    }
    const image = archive.manifests[archive.manifests.length - 1];
    if (!image) throw new RegistryError("archive", `${file}: no image manifest`);
    for (const m of archive.manifests) {
      const reference = m === image ? tag : m.digest;
      const stored = await client.putManifest(options.repository, reference, m.mediaType, m.body);
      if (stored && stored !== m.digest) {
        throw new RegistryError(
          "rejected",
          `${registry} stored manifest ${reference} as ${stored}, expected ${m.digest}`,
        );
      }
    }
    return {
      registry,
      repository: options.repository,
      tag,
      digest: image.digest,
      image: `${registry}/${options.repository}@${image.digest}`,
      format: archive.format,
      blobsUploaded: uploaded,
      blobsSkipped: skipped,
      bytesUploaded: bytes,
    };
  } finally {
    await archive.close();
  }
}

/** PushRecord is the state file `push` writes and `render`/`plan`/`apply` read. */
export interface PushRecord {
  name: string;
  registry: string;
  repository: string;
  tag: string;
  digest: string;
  image: string;
  pushedAt: string;
}

/** pushRecordPath is `<folder of the spec>/.kubewise/deploy/<name>.json`. */
export function pushRecordPath(specFile: string, name: string): string {
  return join(dirname(specFile), ".kubewise", "deploy", `${name}.json`);
}

/** writePushRecord records a push for the service, replacing the file atomically. */
export function writePushRecord(specFile: string, result: PushResult, name: string, now: Date): string {
  const file = pushRecordPath(specFile, name);
  mkdirSync(dirname(file), { recursive: true });
  const record: PushRecord = {
    name,
    registry: result.registry,
    repository: result.repository,
    tag: result.tag,
    digest: result.digest,
    image: result.image,
    pushedAt: now.toISOString(),
  };
  writeFileSync(`${file}.tmp`, `${JSON.stringify(record, null, 2)}\n`);
  renameSync(`${file}.tmp`, file);
  return file;
}

/** readPushRecord reads the service's state file, or returns undefined when there is none. */
export function readPushRecord(specFile: string, name: string): PushRecord | undefined {
  const file = pushRecordPath(specFile, name);
  if (!existsSync(file)) return undefined;
  let record: Partial<PushRecord>;
  try {
    record = JSON.parse(readFileSync(file, "utf8")) as Partial<PushRecord>;
  } catch (err) {
    throw new DeployError("invalid", `${file} is not valid JSON: delete it and push again`, { cause: err });
  }
  if (typeof record.registry !== "string" || typeof record.digest !== "string") {
    throw new DeployError("invalid", `${file} has no registry or digest: delete it and push again`);
  }
  return record as PushRecord;
}
