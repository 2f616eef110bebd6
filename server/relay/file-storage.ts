/**
 * An automerge-repo StorageAdapter on files, crash-safe: a chunk is written whole or not at all
 * (temporary file in the same folder, fsync, rename, fsync of the folder), and a chunk that is
 * not whole on load is reported and never handed to Automerge, which would load an empty file
 * as an empty document.
 *
 * The layout is automerge-repo-storage-nodefs's, so data folders written by it still load:
 * key `[documentId, "snapshot", hash]` is `<base>/<documentId[0..2]>/<documentId[2..]>/snapshot/<hash>`.
 */
import { randomBytes } from "node:crypto";
import { mkdir, open, readFile, readdir, rename, rm, unlink } from "node:fs/promises";
import path from "node:path";
import type { Chunk, StorageAdapterInterface, StorageKey } from "@automerge/automerge-repo";
import { chunkProblem } from "./chunk-check.js";

/** Marks files being written; never a stored key (keys are hashes, ids and fixed words). */
const TMP_MARK = ".tmp-";
const READS_AT_ONCE = 16;

export interface CorruptChunk {
  documentId: string;
  key: StorageKey;
  reason: string;
}

/** A document whose stored chunks are all damaged: loading it would give an empty document. */
export class CorruptDocumentError extends Error {
  constructor(
    readonly documentId: string,
    readonly reason: string,
  ) {
    super(`document ${documentId} cannot be loaded from storage: ${reason}`);
    this.name = "CorruptDocumentError";
  }
}

export interface FileStorageOptions {
  /** Told of every damaged chunk skipped or refused (the caller logs and counts it). */
  onCorrupt?: (chunk: CorruptChunk) => void;
  /**
   * fsync each file and its folder before a save resolves (default true). Rename alone already
   * makes a save atomic across a process crash; the fsyncs make it survive a power cut.
   */
  durable?: boolean;
}

export class FileStorageAdapter implements StorageAdapterInterface {
  /** Distinguishes our temporary files from those a previous (crashed) process left. */
  readonly #instance = `${process.pid}-${randomBytes(4).toString("hex")}`;
  #tmpSeq = 0;
  readonly #durable: boolean;

  constructor(
    readonly baseDirectory: string,
    private readonly opts: FileStorageOptions = {},
  ) {
    this.#durable = opts.durable ?? true;
  }

  async load(key: StorageKey): Promise<Uint8Array | undefined> {
    const data = await this.#read(this.#path(key));
    if (data === undefined || !isChunkKey(key)) return data;
    const problem = chunkProblem(data);
    if (problem === null) return data;
    this.opts.onCorrupt?.({ documentId: key[0]!, key, reason: problem });
    throw new CorruptDocumentError(key[0]!, `${key.slice(1).join("/")}: ${problem}`);
  }

  async save(key: StorageKey, data: Uint8Array): Promise<void> {
    const file = this.#path(key);
    const dir = path.dirname(file);
    await mkdir(dir, { recursive: true });
    const tmp = `${file}${TMP_MARK}${this.#instance}-${this.#tmpSeq++}`;
    try {
      const fh = await open(tmp, "w", 0o600);
      try {
        await fh.writeFile(data);
        if (this.#durable) await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, file);
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
    if (this.#durable) await syncDirectory(dir);
  }

  async remove(key: StorageKey): Promise<void> {
    await unlink(this.#path(key)).catch(ignoreMissing);
  }

  async loadRange(prefix: StorageKey): Promise<Chunk[]> {
    const files = await this.#walk(this.#path(prefix));
    const chunks: Chunk[] = [];
    const corrupt: CorruptChunk[] = [];
    // Read a few files at a time: one by one, a segment of hundreds of incrementals waited on
    // each read in turn; all at once, a big document would open thousands of files.
    const contents: (Uint8Array | undefined)[] = [];
    for (let i = 0; i < files.length; i += READS_AT_ONCE) {
      contents.push(...(await Promise.all(files.slice(i, i + READS_AT_ONCE).map((f) => this.#read(f)))));
    }
    for (const [i, file] of files.entries()) {
      const key = this.#keyOf(file);
      const data = contents[i];
      if (data === undefined) continue; // removed meanwhile
      const problem = isChunkKey(key) ? chunkProblem(data) : null;
      if (problem === null) {
        chunks.push({ key, data });
        continue;
      }
      const bad = { documentId: key[0]!, key, reason: problem };
      corrupt.push(bad);
      this.opts.onCorrupt?.(bad);
    }
    const [documentId, type] = prefix;
    if (documentId && corrupt.length > 0 && chunks.length === 0 && (type === "snapshot" || !(await this.#hasSnapshot(documentId)))) {
      // Every snapshot damaged (automerge-repo always writes one first, and a compaction writes
      // the new one before removing the old), or nothing but damaged incrementals: what is left
      // would load as an empty or partial document, and a peer would take that as the truth.
      throw new CorruptDocumentError(documentId, corrupt.map((c) => `${c.key.slice(1).join("/")}: ${c.reason}`).join("; "));
    }
    return chunks;
  }

  async removeRange(prefix: StorageKey): Promise<void> {
    await rm(this.#path(prefix), { recursive: true, force: true });
  }

  #path(key: StorageKey): string {
    const [first = "", ...rest] = key;
    return path.join(this.baseDirectory, first.slice(0, 2), first.slice(2), ...rest);
  }

  /** The inverse of #path for a file under the base directory. */
  #keyOf(file: string): StorageKey {
    const [a = "", b = "", ...rest] = path.relative(this.baseDirectory, file).split(path.sep);
    return [a + b, ...rest];
  }

  async #hasSnapshot(documentId: string): Promise<boolean> {
    return (await this.#walk(this.#path([documentId, "snapshot"]))).length > 0;
  }

  async #read(file: string): Promise<Uint8Array | undefined> {
    try {
      return new Uint8Array(await readFile(file));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
  }

  /** Files under `dir`, recursively; temporary files are skipped, and removed when a crashed process left them. */
  async #walk(dir: string): Promise<string[]> {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT" || (err as NodeJS.ErrnoException).code === "ENOTDIR") return [];
      throw err;
    }
    const out: string[] = [];
    for (const entry of entries) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) out.push(...(await this.#walk(full)));
      else if (!entry.name.includes(TMP_MARK)) out.push(full);
      else if (!entry.name.includes(`${TMP_MARK}${this.#instance}-`)) await unlink(full).catch(() => undefined);
    }
    return out;
  }
}

function isChunkKey(key: StorageKey): boolean {
  return key.length >= 3 && (key[1] === "snapshot" || key[1] === "incremental");
}

function ignoreMissing(err: unknown): void {
  if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
}

async function syncDirectory(dir: string): Promise<void> {
  const fh = await open(dir, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
