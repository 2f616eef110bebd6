/**
 * Where the relay keeps Automerge documents. Everything else sees only `DocumentStorage`, so a
 * MongoDB-backed implementation can replace the files later (DESIGN.md "Scale path").
 */
import path from "node:path";
import type { Chunk, StorageAdapterInterface, StorageKey } from "@automerge/automerge-repo";
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs";

export interface DocumentStorage extends StorageAdapterInterface {
  /** Bytes last known to be stored for a document (0 when unknown): the per-document budget. */
  storedBytes(documentId: string): number;
  /** Adds bytes accepted from peers but not saved yet, so a burst cannot overshoot the budget. */
  addPending(documentId: string, bytes: number): void;
  /** Drops what the adapter holds in memory for a document that was unloaded. */
  evict(documentId: string): void;
}

/** Keys are `[documentId, "snapshot" | "incremental" | "sync-state", ...]` (automerge-repo). */
class SizedStorage implements DocumentStorage {
  readonly #sizes = new Map<string, number>();
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
    const chunks = await this.inner.loadRange(prefix);
    const [documentId, type] = prefix;
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

export function createFileStorage(dataDir: string): DocumentStorage {
  const fsAdapter = new NodeFSStorageAdapter(path.join(dataDir, "automerge"));
  // The nodefs adapter keeps every chunk it ever saved in `cache`; left alone, memory would grow
  // with the whole history instead of the working set.
  const cache = (fsAdapter as unknown as { cache: Record<string, Uint8Array> }).cache;
  return new SizedStorage(fsAdapter, (documentId) => {
    for (const key of Object.keys(cache)) if (key.startsWith(documentId + path.sep)) delete cache[key];
  });
}
