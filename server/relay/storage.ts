/**
 * Where the relay keeps Automerge documents: files in the data folder (one machine) or MongoDB
 * (`RELAY_STORAGE=mongodb`, shared by relays on several machines). Everything else sees only
 * `DocumentStorage`.
 */
import path from "node:path";
import type { Chunk, StorageAdapterInterface, StorageKey } from "@automerge/automerge-repo";
import type { Logger } from "../log.js";
import type { Db } from "mongodb";
import { CorruptDocumentError, FileStorageAdapter, type CorruptChunk } from "./file-storage.js";
import { MongoStorageAdapter } from "./mongo-storage.js";

export { CorruptDocumentError } from "./file-storage.js";

/** A document the relay could not load from storage, since when and why. */
export interface DamagedDocument {
  documentId: string;
  since: Date;
  reason: string;
}

export interface DocumentStorage extends StorageAdapterInterface {
  /** Bytes last known to be stored for a document (0 when unknown): the per-document budget. */
  storedBytes(documentId: string): number;
  /** Adds bytes accepted from peers but not saved yet, so a burst cannot overshoot the budget. */
  addPending(documentId: string, bytes: number): void;
  /** Drops what the adapter holds in memory for a document that was unloaded. */
  evict(documentId: string): void;
  /** Documents whose last load failed because their stored chunks are damaged. */
  damaged(): readonly DamagedDocument[];
  isDamaged(documentId: string): boolean;
  /** Damaged chunks seen since start (skipped or refused). */
  corruptChunks(): number;
}

/** Keys are `[documentId, "snapshot" | "incremental" | "sync-state", ...]` (automerge-repo). */
class SizedStorage implements DocumentStorage {
  readonly #sizes = new Map<string, number>();
  readonly #damaged = new Map<string, DamagedDocument>();
  #corruptChunks = 0;

  constructor(
    private readonly inner: StorageAdapterInterface,
    private readonly evictInner: (documentId: string) => void,
  ) {}

  storedBytes(documentId: string): number {
    return this.#sizes.get(documentId) ?? 0;
  }
  addPending(documentId: string, bytes: number): void {
    this.#sizes.set(documentId, this.storedBytes(documentId) + bytes);
  }
  evict(documentId: string): void {
    this.evictInner(documentId);
  }
  damaged(): readonly DamagedDocument[] {
    return [...this.#damaged.values()];
  }
  isDamaged(documentId: string): boolean {
    return this.#damaged.has(documentId);
  }
  corruptChunks(): number {
    return this.#corruptChunks;
  }
  countCorrupt(): void {
    this.#corruptChunks += 1;
  }

  load(key: StorageKey): Promise<Uint8Array | undefined> {
    return this.inner.load(key);
  }
  async save(key: StorageKey, data: Uint8Array): Promise<void> {
    const [documentId, type] = key;
    if (type === "sync-state") {
      // A peer's sync state is a cache: losing one costs a fuller sync next time. automerge-repo
      // saves them on a timer that can fire after shutdown, when the folder may be gone; such a
      // failure must not become an unhandled rejection that takes the process down.
      await this.inner.save(key, data).catch(() => undefined);
      return;
    }
    await this.inner.save(key, data);
    // A snapshot replaces everything before it; incrementals were counted when accepted.
    if (documentId && type === "snapshot") this.#sizes.set(documentId, data.byteLength);
  }
  remove(key: StorageKey): Promise<void> {
    return this.inner.remove(key);
  }
  async loadRange(prefix: StorageKey): Promise<Chunk[]> {
    const [documentId, type] = prefix;
    let chunks: Chunk[];
    try {
      chunks = await this.inner.loadRange(prefix);
    } catch (err) {
      if (err instanceof CorruptDocumentError) {
        const known = this.#damaged.get(err.documentId);
        this.#damaged.set(err.documentId, { documentId: err.documentId, since: known?.since ?? new Date(), reason: err.reason });
      }
      throw err;
    }
    // A document that loads again (its files restored) is no longer damaged.
    if (documentId && type === "snapshot" && chunks.length > 0) this.#damaged.delete(documentId);
    if (documentId && (type === "snapshot" || type === "incremental")) {
      const bytes = chunks.reduce((n, c) => n + (c.data?.byteLength ?? 0), 0);
      // loadDocData asks for snapshots, then incrementals: sum the two answers.
      this.#sizes.set(documentId, type === "snapshot" ? bytes : this.storedBytes(documentId) + bytes);
    }
    return chunks;
  }
  removeRange(prefix: StorageKey): Promise<void> {
    return this.inner.removeRange(prefix);
  }
}

/**
 * Documents under `<dataDir>/automerge`. Only the relay may write there: another process
 * writing the same files (the admin CLI once did) races the relay's saves and compactions.
 */
export function createFileStorage(dataDir: string, logger?: Logger): DocumentStorage {
  let sized: SizedStorage | undefined;
  const onCorrupt = corruptReporter(() => sized, logger);
  // No cache of chunks in memory (nodefs kept every chunk it ever saved): automerge-repo holds
  // loaded documents itself, so eviction has nothing to drop.
  sized = new SizedStorage(new FileStorageAdapter(path.join(dataDir, "automerge"), { onCorrupt }), () => undefined);
  return sized;
}

/** Documents in MongoDB (`automerge_chunks`, `automerge_index`): see mongo-storage.ts. */
export function createMongoStorage(db: Db, logger?: Logger): DocumentStorage {
  let sized: SizedStorage | undefined;
  const adapter = new MongoStorageAdapter(db, { onCorrupt: corruptReporter(() => sized, logger) });
  sized = new SizedStorage(adapter, (documentId) => adapter.evict(documentId));
  return sized;
}

export type StorageKind = "files" | "mongodb";

export function createDocumentStorage(kind: StorageKind, dataDir: string, db: Db, logger?: Logger): DocumentStorage {
  return kind === "mongodb" ? createMongoStorage(db, logger) : createFileStorage(dataDir, logger);
}

function corruptReporter(sized: () => SizedStorage | undefined, logger: Logger | undefined): (c: CorruptChunk) => void {
  return (c) => {
    sized()?.countCorrupt();
    logger?.error({ documentId: c.documentId, chunk: c.key.slice(1).join("/"), reason: c.reason }, "damaged chunk in document storage: not loaded");
  };
}
