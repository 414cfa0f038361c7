import { createReadStream } from "node:fs";
import { open } from "node:fs/promises";
import type { Readable } from "node:stream";

/**
 * A tar reader and writer just large enough for image archives (`docker save`, OCI layouts). The
 * reader indexes the headers without reading the data, so a multi-gigabyte archive costs one
 * seek per entry, and a layer can then be streamed straight from the file to a registry. It
 * understands ustar, PAX extended headers and GNU long names, which is what docker, podman,
 * buildkit and skopeo write.
 */

const BLOCK = 512;

/** TarEntry is one member of an archive: where its data starts and how long it is. */
export interface TarEntry {
  name: string;
  type: "file" | "directory" | "symlink" | "hardlink" | "other";
  size: number;
  /** offset of the first data byte in the archive file. */
  offset: number;
  /** linkTarget is where a symlink or hard link points. */
  linkTarget?: string;
}

/** TarIndex is an archive's entries by normalized name, with ways to read them. */
export class TarIndex {
  readonly file: string;
  readonly entries: ReadonlyMap<string, TarEntry>;

  constructor(file: string, entries: Map<string, TarEntry>) {
    this.file = file;
    this.entries = entries;
  }

  /** resolve finds a regular file by name, following symlinks and hard links (docker save links shared layers). */
  resolve(name: string): TarEntry | undefined {
    let entry = this.entries.get(normalizeName(name));
    for (let hops = 0; entry && entry.type !== "file" && hops < 16; hops++) {
      if (entry.linkTarget === undefined) return undefined;
      const target = entry.type === "symlink" ? joinRelative(entry.name, entry.linkTarget) : entry.linkTarget;
      entry = this.entries.get(normalizeName(target));
    }
    return entry?.type === "file" ? entry : undefined;
  }

  /** read returns a file's data; meant for small members such as manifests and configs. */
  async read(name: string): Promise<Buffer> {
    const entry = this.resolve(name);
    if (!entry) throw new Error(`${this.file} has no file ${name}`);
    const fd = await open(this.file, "r");
    try {
      const data = Buffer.alloc(entry.size);
      await fd.read(data, 0, entry.size, entry.offset);
      return data;
    } finally {
      await fd.close();
    }
  }

  /** stream opens a file's data as a stream, for uploading large members. */
  stream(entry: TarEntry): Readable {
    if (entry.size === 0) return createReadStream(this.file, { start: 1, end: 0 });
    return createReadStream(this.file, { start: entry.offset, end: entry.offset + entry.size - 1 });
  }
}

/** normalizeName drops a leading "./" or "/" and a trailing "/", so "./index.json" is "index.json". */
export function normalizeName(name: string): string {
  return name.replace(/^(\.\/|\/)+/, "").replace(/\/+$/, "");
}

function joinRelative(from: string, target: string): string {
  if (target.startsWith("/")) return target;
  const parts = normalizeName(from).split("/").slice(0, -1);
  for (const part of target.split("/")) {
    if (part === "..") parts.pop();
    else if (part !== "." && part !== "") parts.push(part);
  }
  return parts.join("/");
}

function text(block: Buffer, start: number, length: number): string {
  const field = block.subarray(start, start + length);
  const end = field.indexOf(0);
  return field.subarray(0, end < 0 ? length : end).toString("utf8");
}

function octal(block: Buffer, start: number, length: number): number {
  // Sizes of 8 GiB and more are stored base-256 with the high bit of the first byte set.
  if ((block[start] ?? 0) & 0x80) {
    let value = (block[start] ?? 0) & 0x7f;
    for (let i = 1; i < length; i++) value = value * 256 + (block[start + i] ?? 0);
    return value;
  }
  const digits = text(block, start, length).trim();
  return digits === "" ? 0 : parseInt(digits, 8);
}

function checksumOk(block: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : (block[i] ?? 0);
  return sum === octal(block, 148, 8);
}

/** parsePax reads PAX records, "<length> <key>=<value>\n", into a map. */
function parsePax(data: Buffer): Map<string, string> {
  const records = new Map<string, string>();
  let pos = 0;
  while (pos < data.length) {
    const space = data.indexOf(0x20, pos);
    if (space < 0) break;
    const length = Number(data.subarray(pos, space).toString("ascii"));
    if (!Number.isInteger(length) || length <= 0) break;
    const record = data.subarray(space + 1, pos + length - 1).toString("utf8");
    const eq = record.indexOf("=");
    if (eq > 0) records.set(record.slice(0, eq), record.slice(eq + 1));
    pos += length;
  }
  return records;
}

const types: Record<string, TarEntry["type"]> = {
  "0": "file",
  "": "file",
  "7": "file",
  "5": "directory",
  "2": "symlink",
  "1": "hardlink",
};

interface Pending {
  name?: string;
  linkTarget?: string;
  size?: number;
}

/**
 * indexTar reads the headers of a tar file. It throws when the file is not a tar archive (shorter
 * than one header, or a header checksum does not match) or ends in the middle of an entry. A file
 * of only zero blocks is an empty archive, as tar reads it.
 */
export async function indexTar(file: string): Promise<TarIndex> {
  const fd = await open(file, "r");
  const entries = new Map<string, TarEntry>();
  try {
    const { size: fileSize } = await fd.stat();
    refuseShortFile(file, fileSize);
    const header = Buffer.alloc(BLOCK);
    let pos = 0;
    let pending: Pending = {};
    while (pos + BLOCK <= fileSize) {
      await fd.read(header, 0, BLOCK, pos);
      if (header.every((b) => b === 0)) break;
      if (!checksumOk(header)) throw new Error(`${file} is not a tar archive (bad header at byte ${pos})`);
      const flag = String.fromCharCode(header[156] ?? 0).replace("\0", "");
      const size = pending.size ?? octal(header, 124, 12);
      const offset = pos + BLOCK;
      if (offset + size > fileSize) throw new Error(`${file} is truncated (entry at byte ${pos})`);
      pos = offset + Math.ceil(size / BLOCK) * BLOCK;
      if (flag === "x" || flag === "L" || flag === "K") {
        const data = Buffer.alloc(size);
        await fd.read(data, 0, size, offset);
        pending = { ...pending, ...extendedHeader(flag, data) };
        continue;
      }
      if (flag === "g") continue;
      const prefix = text(header, 345, 155);
      const base = text(header, 0, 100);
      const name = normalizeName(pending.name ?? (prefix ? `${prefix}/${base}` : base));
      const linkTarget = pending.linkTarget ?? text(header, 157, 100);
      const type = types[flag] ?? "other";
      entries.set(name, {
        name,
        type,
        size: type === "file" ? size : 0,
        offset,
        ...(type === "symlink" || type === "hardlink" ? { linkTarget } : {}),
      });
      pending = {};
    }
  } finally {
    await fd.close();
  }
  return new TarIndex(file, entries);
}

/**
 * refuseShortFile: a file shorter than one header (a text file given by mistake) is no archive,
 * rather than an empty one with neither index.json nor manifest.json.
 */
function refuseShortFile(file: string, size: number): void {
  if (size < BLOCK) {
    throw new Error(`${file} is not a tar archive (${size} bytes, shorter than one ${BLOCK}-byte header)`);
  }
}

function extendedHeader(flag: string, data: Buffer): Pending {
  const value = data.toString("utf8").replace(/\0+$/, "");
  if (flag === "L") return { name: value };
  if (flag === "K") return { linkTarget: value };
  const pax = parsePax(data);
  const out: Pending = {};
  const path = pax.get("path");
  const link = pax.get("linkpath");
  const size = pax.get("size");
  if (path !== undefined) out.name = path;
  if (link !== undefined) out.linkTarget = link;
  if (size !== undefined) out.size = Number(size);
  return out;
}

/** TarInput is one member to write: a regular file, or a directory when data is absent. */
export interface TarInput {
  name: string;
  data?: Buffer | string;
  /** symlink makes the member a symbolic link to this path. */
  symlink?: string;
}

function writeField(header: Buffer, value: string, start: number, length: number): void {
  header.write(value.slice(0, length), start, length, "utf8");
}

function writeOctal(header: Buffer, value: number, start: number, length: number): void {
  writeField(header, `${value.toString(8).padStart(length - 1, "0")}\0`, start, length);
}

function splitName(name: string): [prefix: string, base: string] {
  if (Buffer.byteLength(name) <= 100) return ["", name];
  const cut = name.lastIndexOf("/", 155);
  if (cut <= 0 || Buffer.byteLength(name.slice(cut + 1)) > 100) {
    throw new Error(`tar member name too long for ustar: ${name}`);
  }
  return [name.slice(0, cut), name.slice(cut + 1)];
}

function header(input: TarInput, size: number, mtime: number): Buffer {
  const block = Buffer.alloc(BLOCK);
  const directory = input.data === undefined && input.symlink === undefined;
  const [prefix, base] = splitName(directory ? `${input.name.replace(/\/$/, "")}/` : input.name);
  writeField(block, base, 0, 100);
  writeOctal(block, directory ? 0o755 : 0o644, 100, 8);
  writeOctal(block, 0, 108, 8);
  writeOctal(block, 0, 116, 8);
  writeOctal(block, size, 124, 12);
  writeOctal(block, mtime, 136, 12);
  block.write(directory ? "5" : input.symlink !== undefined ? "2" : "0", 156, 1, "ascii");
  if (input.symlink !== undefined) writeField(block, input.symlink, 157, 100);
  block.write("ustar\0", 257, 6, "ascii");
  block.write("00", 263, 2, "ascii");
  writeField(block, prefix, 345, 155);
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of block) sum += b;
  writeField(block, `${sum.toString(8).padStart(6, "0")}\0 `, 148, 8);
  return block;
}

/**
 * writeTar builds a ustar archive in memory: deterministic (fixed mtime, uid and gid 0), so the
 * same members always give the same bytes and hence the same layer digest.
 */
export function writeTar(members: readonly TarInput[], mtime = 0): Buffer {
  const parts: Buffer[] = [];
  for (const m of members) {
    const data = m.data === undefined ? Buffer.alloc(0) : Buffer.from(m.data);
    parts.push(header(m, data.length, mtime), data);
    const pad = (BLOCK - (data.length % BLOCK)) % BLOCK;
    if (pad > 0) parts.push(Buffer.alloc(pad));
  }
  parts.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(parts);
}
