import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdtemp, open, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import { RegistryError } from "./registry.js";
import { indexTar, type TarEntry, type TarIndex } from "./tar.js";

/**
 * An image archive read as what a registry needs: the blobs (layers and configs) and the
 * manifests, in the order they must be pushed (a manifest only after everything it refers to).
 * Two formats: an OCI image layout in a tar (`docker buildx --output type=oci`, `podman save
 * --format oci-archive`, `skopeo copy oci-archive:`, and `docker save` since Docker 25), and the
 * older `docker save` format (manifest.json with a config file and uncompressed layer tars), for
 * which an OCI manifest is written here.
 */

export const MEDIA_TYPES = {
  ociIndex: "application/vnd.oci.image.index.v1+json",
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociConfig: "application/vnd.oci.image.config.v1+json",
  ociLayer: "application/vnd.oci.image.layer.v1.tar",
  dockerList: "application/vnd.docker.distribution.manifest.list.v2+json",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
} as const;

const indexTypes = new Set<string>([MEDIA_TYPES.ociIndex, MEDIA_TYPES.dockerList]);

/** Descriptor is an OCI content descriptor: what a manifest says about a blob it refers to. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

/** ArchiveBlob is a layer or config in the archive, streamed on demand. */
export interface ArchiveBlob extends Descriptor {
  open(): Readable;
}

/** ArchiveManifest is a manifest (or index) to put, with its exact bytes. */
export interface ArchiveManifest {
  mediaType: string;
  digest: string;
  body: Buffer;
}

/** ImageArchive is an archive ready to push; close() removes any unpacked temporary copy. */
export interface ImageArchive {
  format: "oci" | "docker";
  blobs: ArchiveBlob[];
  /** manifests in push order; the last one is the image (what the Deployment pins). */
  manifests: ArchiveManifest[];
  /** tag is the archive's own tag (RepoTags or the ref.name annotation), when it has one. */
  tag?: string;
  close(): Promise<void>;
}

/** sha256 is the OCI digest of a buffer. */
export function sha256(data: Buffer | string): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

const archiveError = (file: string, message: string, cause?: unknown): RegistryError =>
  new RegistryError("archive", `${file}: ${message}`, cause === undefined ? undefined : { cause });

/**
 * openImageArchive indexes an image archive (tar, or tar.gz which is unpacked to a temporary
 * file first). `ref` picks one image when the archive holds several: a tag, or a name:tag as
 * in RepoTags or the OCI `org.opencontainers.image.ref.name` annotation.
 */
export async function openImageArchive(file: string, ref?: string): Promise<ImageArchive> {
  let tarFile = file;
  let tmp: string | undefined;
  const close = async (): Promise<void> => {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  };
  try {
    if (await isGzip(file)) {
      tmp = await mkdtemp(join(tmpdir(), "kubewise-image-"));
      tarFile = join(tmp, "image.tar");
      await pipeline(createReadStream(file), createGunzip(), createWriteStream(tarFile));
    }
    let tar: TarIndex;
    try {
      tar = await indexTar(tarFile);
    } catch (err) {
      throw archiveError(file, `not an image archive (${(err as Error).message})`, err);
    }
    const parts = tar.resolve("index.json")
      ? await readOciLayout(file, tar, ref)
      : tar.resolve("manifest.json")
        ? await readDockerSave(file, tar, ref)
        : undefined;
    if (!parts) {
      throw archiveError(
        file,
        "has neither index.json (an OCI image layout) nor manifest.json (a docker save archive)",
      );
    }
    return { ...parts, close };
  } catch (err) {
    await close();
    if (err instanceof RegistryError) throw err;
    throw archiveError(file, (err as Error).message, err);
  }
}

async function isGzip(file: string): Promise<boolean> {
  const fd = await open(file, "r");
  try {
    const magic = Buffer.alloc(2);
    const { bytesRead } = await fd.read(magic, 0, 2, 0);
    return bytesRead === 2 && magic[0] === 0x1f && magic[1] === 0x8b;
  } finally {
    await fd.close();
  }
}

type Parts = Omit<ImageArchive, "close">;

function parseJson<T>(file: string, what: string, data: Buffer): T {
  try {
    return JSON.parse(data.toString("utf8")) as T;
  } catch (err) {
    throw archiveError(file, `${what} is not valid JSON`, err);
  }
}

interface OciIndex {
  manifests?: Descriptor[];
}
interface OciManifest {
  mediaType?: string;
  config?: Descriptor;
  layers?: Descriptor[];
  manifests?: Descriptor[];
}

function blobPath(digest: string): string {
  const [algorithm, hex] = digest.split(":");
  return `blobs/${algorithm}/${hex}`;
}

/** tagOf reads the tag from a reference such as "app:1.2", "ghcr.io/x/app:1.2" or just "1.2". */
function tagOf(ref: string | undefined): string | undefined {
  if (!ref) return undefined;
  const colon = ref.lastIndexOf(":");
  if (colon > ref.lastIndexOf("/")) return ref.slice(colon + 1);
  return ref.includes("/") ? undefined : ref;
}

function matchesRef(candidate: string | undefined, ref: string): boolean {
  return candidate !== undefined && (candidate === ref || tagOf(candidate) === ref);
}

async function readOciLayout(file: string, tar: TarIndex, ref?: string): Promise<Parts> {
  const index = parseJson<OciIndex>(file, "index.json", await tar.read("index.json"));
  const entries = index.manifests ?? [];
  const refName = (d: Descriptor) => d.annotations?.["org.opencontainers.image.ref.name"];
  const chosen =
    ref === undefined
      ? entries.length === 1
        ? entries[0]
        : undefined
      : entries.find((d) => matchesRef(refName(d), ref));
  if (!chosen) {
    const names = entries.map((d) => refName(d) ?? d.digest).join(", ");
    throw archiveError(
      file,
      ref === undefined
        ? `holds ${entries.length} images (${names || "none"}): pick one with --ref`
        : `has no image named ${ref} (it has: ${names || "none"})`,
    );
  }
  const blobs = new Map<string, ArchiveBlob>();
  const manifests: ArchiveManifest[] = [];
  await collectOci(file, tar, chosen, blobs, manifests);
  const tag = tagOf(refName(chosen));
  return { format: "oci", blobs: [...blobs.values()], manifests, ...(tag ? { tag } : {}) };
}

async function readVerified(file: string, tar: TarIndex, d: Descriptor): Promise<Buffer> {
  const data = await tar.read(blobPath(d.digest));
  if (sha256(data) !== d.digest) throw archiveError(file, `blob ${d.digest} does not match its digest`);
  return data;
}

/** collectOci walks a manifest or index depth first, so children come before their parents. */
async function collectOci(
  file: string,
  tar: TarIndex,
  d: Descriptor,
  blobs: Map<string, ArchiveBlob>,
  manifests: ArchiveManifest[],
): Promise<void> {
  const body = await readVerified(file, tar, d);
  const parsed = parseJson<OciManifest>(file, `manifest ${d.digest}`, body);
  const mediaType = d.mediaType || parsed.mediaType || (parsed.manifests ? MEDIA_TYPES.ociIndex : "");
  if (indexTypes.has(mediaType) || parsed.manifests) {
    // A multi-platform index often ships with only some platforms' manifests (docker save
    // --platform): push the present ones and pin the image to the only one, if only one is here.
    const present = (parsed.manifests ?? []).filter((m) => tar.resolve(blobPath(m.digest)));
    if (present.length === 0) throw archiveError(file, `index ${d.digest} has none of its manifests`);
    for (const child of present) await collectOci(file, tar, child, blobs, manifests);
    if (present.length < (parsed.manifests ?? []).length) {
      if (present.length > 1) {
        throw archiveError(
          file,
          `index ${d.digest} lists ${(parsed.manifests ?? []).length} manifests but the archive holds ${present.length}`,
        );
      }
      return;
    }
    manifests.push({ mediaType, digest: d.digest, body });
    return;
  }
  for (const blob of [parsed.config, ...(parsed.layers ?? [])]) {
    if (!blob) throw archiveError(file, `manifest ${d.digest} has no config`);
    const entry = tar.resolve(blobPath(blob.digest));
    if (!entry) throw archiveError(file, `blob ${blob.digest} of manifest ${d.digest} is not in the archive`);
    blobs.set(blob.digest, {
      mediaType: blob.mediaType,
      digest: blob.digest,
      size: entry.size,
      open: () => tar.stream(entry),
    });
  }
  manifests.push({ mediaType: mediaType || MEDIA_TYPES.ociManifest, digest: d.digest, body });
}

interface DockerSaveImage {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

async function readDockerSave(file: string, tar: TarIndex, ref?: string): Promise<Parts> {
  const images = parseJson<DockerSaveImage[]>(file, "manifest.json", await tar.read("manifest.json"));
  const chosen =
    ref === undefined
      ? images.length === 1
        ? images[0]
        : undefined
      : images.find((i) => (i.RepoTags ?? []).some((t) => matchesRef(t, ref)));
  if (!chosen) {
    const names = images.flatMap((i) => i.RepoTags ?? []).join(", ");
    throw archiveError(
      file,
      ref === undefined
        ? `holds ${images.length} images (${names || "untagged"}): pick one with --ref`
        : `has no image tagged ${ref} (it has: ${names || "none"})`,
    );
  }
  const config = await tar.read(chosen.Config).catch((err: unknown) => {
    throw archiveError(file, `config ${chosen.Config} is missing`, err);
  });
  const configBlob: ArchiveBlob = {
    mediaType: MEDIA_TYPES.ociConfig,
    digest: sha256(config),
    size: config.length,
    open: () => tar.stream(tar.resolve(chosen.Config) as TarEntry),
  };
  const layers: ArchiveBlob[] = [];
  for (const name of chosen.Layers) {
    const entry = tar.resolve(name);
    if (!entry) throw archiveError(file, `layer ${name} is missing`);
    layers.push({
      mediaType: await layerMediaType(tar, entry),
      digest: await digestOf(tar, entry),
      size: entry.size,
      open: () => tar.stream(entry),
    });
  }
  const descriptor = ({ mediaType, digest, size }: ArchiveBlob): Descriptor => ({ mediaType, digest, size });
  const body = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociManifest,
      config: descriptor(configBlob),
      layers: layers.map(descriptor),
    }),
  );
  const tag = tagOf(chosen.RepoTags?.[0]);
  return {
    format: "docker",
    blobs: [configBlob, ...layers],
    manifests: [{ mediaType: MEDIA_TYPES.ociManifest, digest: sha256(body), body }],
    ...(tag ? { tag } : {}),
  };
}

async function digestOf(tar: TarIndex, entry: TarEntry): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of tar.stream(entry)) hash.update(chunk as Buffer);
  return `sha256:${hash.digest("hex")}`;
}

/** layerMediaType tells a gzip or zstd layer from a plain tar by its first bytes. */
async function layerMediaType(tar: TarIndex, entry: TarEntry): Promise<string> {
  const fd = await open(tar.file, "r");
  try {
    const magic = Buffer.alloc(4);
    await fd.read(magic, 0, Math.min(4, entry.size), entry.offset);
    if (magic[0] === 0x1f && magic[1] === 0x8b) return `${MEDIA_TYPES.ociLayer}+gzip`;
    if (magic.readUInt32LE(0) === 0xfd2fb528) return `${MEDIA_TYPES.ociLayer}+zstd`;
    return MEDIA_TYPES.ociLayer;
  } finally {
    await fd.close();
  }
}
