/**
 * An automerge-repo StorageAdapter on MongoDB, so relays on several machines can share one
 * database instead of a local data folder (issue 17).
 *
 * Every read and write is by `_id`: FerretDB v1 only uses an index for `_id` equality (README,
 * "Every read and write on the hot path is by `_id`"), so a prefix query over chunk ids would scan
 * the whole collection. Instead each Automerge document has one small index document
 * (`automerge_index`, `_id` = document id, `keys`: the rest of each chunk key) beside its chunks
 * (`automerge_chunks`, `_id` = the whole key joined by `/`, `data`: the bytes):
 * - a save writes the chunk (one document replace: atomic), then adds its key to the index;
 * - a remove takes the key out of the index, then deletes the chunk;
 * so a crash in between leaves at worst an orphan chunk nobody lists, never a listed chunk that
 * is missing or half written. A listed chunk that is missing anyway (removed by another process)
 * is skipped.
 *
 * Damage is handled as by the file storage: a chunk that is not whole Automerge is reported and
 * never handed to Automerge, and a document left with nothing but damaged chunks fails to load.
 */
import { Binary, type Collection, type Db } from "mongodb";
import type { Chunk, StorageAdapterInterface, StorageKey } from "@automerge/automerge-repo";
import { chunkProblem } from "./chunk-check.js";
import { CorruptDocumentError, type CorruptChunk } from "./file-storage.js";

export const CHUNKS_COLLECTION = "automerge_chunks";
export const INDEX_COLLECTION = "automerge_index";

/** BSON documents stop at 16 MiB; keep room for the `_id` and field names. */
const MAX_CHUNK_BYTES = 16 * 1024 * 1024 - 64 * 1024;

interface ChunkDoc {
  _id: string;
  /** The Automerge document (first key part), so an operator can find a document's chunks. */
  doc: string;
  data: Binary;
}

interface IndexDoc {
  _id: string;
  /** The key parts after the document id, joined by `/` (`""` for a one-part key). */
  keys: string[];
}

export interface MongoStorageOptions {
  onCorrupt?: (chunk: CorruptChunk) => void;
}

export class MongoStorageAdapter implements StorageAdapterInterface {
  readonly #chunks: Collection<ChunkDoc>;
  readonly #index: Collection<IndexDoc>;
  /**
   * Index updates of one document run one after another: FerretDB applies `$addToSet`/`$pull`
   * as read-modify-write, so two concurrent ones on one index document can lose a key.
   */
  readonly #queues = new Map<string, Promise<unknown>>();
  /** Keys this process knows are listed, so overwriting a sync state costs one write, not two. */
  readonly #listed = new Map<string, Set<string>>();

  constructor(
    db: Db,
    private readonly opts: MongoStorageOptions = {},
  ) {
    this.#chunks = db.collection<ChunkDoc>(CHUNKS_COLLECTION);
    this.#index = db.collection<IndexDoc>(INDEX_COLLECTION);
  }

  async load(key: StorageKey): Promise<Uint8Array | undefined> {
    const found = await this.#chunks.findOne({ _id: idOf(key) });
    if (!found) return undefined;
    const data = bytesOf(found.data);
    if (!isChunkKey(key)) return data;
    const problem = chunkProblem(data);
    if (problem === null) return data;
    this.opts.onCorrupt?.({ documentId: key[0]!, key, reason: problem });
    throw new CorruptDocumentError(key[0]!, `${key.slice(1).join("/")}: ${problem}`);
  }

  async save(key: StorageKey, data: Uint8Array): Promise<void> {
    const [documentId = "", ...rest] = key;
    if (data.byteLength > MAX_CHUNK_BYTES) {
      throw new Error(`document ${documentId}: chunk ${rest.join("/")} of ${data.byteLength} bytes is larger than a MongoDB document (${MAX_CHUNK_BYTES} bytes)`);
    }
    const _id = idOf(key);
    const write = () => this.#chunks.replaceOne({ _id }, { doc: documentId, data: new Binary(data) }, { upsert: true });
    // Two upserts of one new `_id` at once (automerge-repo can save the same incremental twice)
    // race, and the loser gets E11000 even though the chunk now exists: replace it again.
    await write().catch((err: unknown) => (isDuplicateKey(err) ? write() : Promise.reject(err)));
    const sub = rest.join("/");
    if (this.#listed.get(documentId)?.has(sub)) return;
    await this.#serial(documentId, () => this.#index.updateOne({ _id: documentId }, { $addToSet: { keys: sub } }, { upsert: true }));
    let known = this.#listed.get(documentId);
    if (!known) this.#listed.set(documentId, (known = new Set()));
    known.add(sub);
  }

  async remove(key: StorageKey): Promise<void> {
    const [documentId = "", ...rest] = key;
    const sub = rest.join("/");
    this.#listed.get(documentId)?.delete(sub);
    await this.#serial(documentId, () => this.#index.updateOne({ _id: documentId }, { $pull: { keys: sub } }));
    await this.#chunks.deleteOne({ _id: idOf(key) });
  }

  async loadRange(prefix: StorageKey): Promise<Chunk[]> {
    const [documentId = "", ...rest] = prefix;
    const subs = await this.#keysUnder(documentId, rest);
    const found = await Promise.all(subs.map(async (sub) => ({ sub, doc: await this.#chunks.findOne({ _id: joinId(documentId, sub) }) })));
    const chunks: Chunk[] = [];
    const corrupt: CorruptChunk[] = [];
    for (const { sub, doc } of found) {
      if (!doc) continue; // removed meanwhile
      const key: StorageKey = sub === "" ? [documentId] : [documentId, ...sub.split("/")];
      const data = bytesOf(doc.data);
      const problem = isChunkKey(key) ? chunkProblem(data) : null;
      if (problem === null) {
        chunks.push({ key, data });
        continue;
      }
      const bad = { documentId, key, reason: problem };
      corrupt.push(bad);
      this.opts.onCorrupt?.(bad);
    }
    const type = rest[0];
    if (documentId && corrupt.length > 0 && chunks.length === 0 && (type === "snapshot" || (await this.#keysUnder(documentId, ["snapshot"])).length === 0)) {
      // Same rule as the file storage: what is left would load as an empty or partial document.
      throw new CorruptDocumentError(documentId, corrupt.map((c) => `${c.key.slice(1).join("/")}: ${c.reason}`).join("; "));
    }
    return chunks;
  }

  async removeRange(prefix: StorageKey): Promise<void> {
    const [documentId = "", ...rest] = prefix;
    const subs = await this.#keysUnder(documentId, rest);
    for (const sub of subs) await this.remove(sub === "" ? [documentId] : [documentId, ...sub.split("/")]);
  }

  /** Forgets what this process knew of a document's index (the relay unloaded it). */
  evict(documentId: string): void {
    this.#listed.delete(documentId);
  }

  async #keysUnder(documentId: string, rest: readonly string[]): Promise<string[]> {
    const index = await this.#index.findOne({ _id: documentId });
    const want = rest.join("/");
    return (index?.keys ?? []).filter((sub) => want === "" || sub === want || sub.startsWith(`${want}/`));
  }

  #serial<T>(documentId: string, work: () => Promise<T>): Promise<T> {
    const before = this.#queues.get(documentId) ?? Promise.resolve();
    const run = before.then(work, work);
    const settled = run.catch(() => undefined);
    this.#queues.set(documentId, settled);
    void settled.then(() => {
      if (this.#queues.get(documentId) === settled) this.#queues.delete(documentId);
    });
    return run;
  }
}

function idOf(key: StorageKey): string {
  return key.join("/");
}

function joinId(documentId: string, sub: string): string {
  return sub === "" ? documentId : `${documentId}/${sub}`;
}

function bytesOf(data: Binary): Uint8Array {
  // The driver's buffer may be a view into a larger one; copy so callers own exactly these bytes.
  return new Uint8Array(data.buffer.subarray(0, data.position));
}

function isDuplicateKey(err: unknown): boolean {
  return typeof err === "object" && err !== null && (err as { code?: unknown }).code === 11000;
}

function isChunkKey(key: StorageKey): boolean {
  return key.length >= 3 && (key[1] === "snapshot" || key[1] === "incremental");
}
