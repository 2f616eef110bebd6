/**
 * The relay's document storage, run over both implementations (files, MongoDB): the
 * StorageAdapter contract on real Automerge chunks, and damage: an empty, truncated or altered
 * chunk is reported with its document id and never loaded as an empty document. File-only: the
 * nodefs layout (old data folders still load) and temporary files. MongoDB-only: what a crash
 * between a chunk and its index entry leaves.
 */
import * as A from "@automerge/automerge";
import { Repo, type AutomergeUrl, type PeerId } from "@automerge/automerge-repo";
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs";
import { mkdir, mkdtemp, readdir, readFile, rm, truncate, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Binary } from "mongodb";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { StorageAdapterInterface, StorageKey } from "@automerge/automerge-repo";
import { chunkProblem } from "../../../server/relay/chunk-check.js";
import { CorruptDocumentError, FileStorageAdapter, type CorruptChunk } from "../../../server/relay/file-storage.js";
import { CHUNKS_COLLECTION, INDEX_COLLECTION, MongoStorageAdapter } from "../../../server/relay/mongo-storage.js";
import { createFileStorage, createMongoStorage, type DocumentStorage } from "../../../server/relay/storage.js";
import { freshDb, type TestDb } from "../../helpers/db.js";

const DOC = "3XYZabcdefghijklmnopqrstuvw1";
let dir: string;
let reports: CorruptChunk[];
let adapter: FileStorageAdapter;
let mongo: TestDb;

beforeAll(async () => {
  mongo = await freshDb("storage");
}, 60_000);
afterAll(async () => {
  await mongo?.close();
});
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "file-storage-"));
  reports = [];
  adapter = new FileStorageAdapter(dir, { onCorrupt: (c) => reports.push(c) });
  await mongo.db.collection(CHUNKS_COLLECTION).deleteMany({});
  await mongo.db.collection(INDEX_COLLECTION).deleteMany({});
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** One storage implementation, with a way to plant bytes behind its checks (damage on disk or in the database). */
interface Backend {
  name: string;
  adapter(onCorrupt?: (c: CorruptChunk) => void): StorageAdapterInterface;
  relayStorage(): DocumentStorage;
  plant(key: StorageKey, bytes: Uint8Array): Promise<void>;
}

const backends: Backend[] = [
  {
    name: "files",
    adapter: (onCorrupt) => new FileStorageAdapter(dir, { onCorrupt }),
    relayStorage: () => createFileStorage(path.join(dir, "relay-data")),
    plant: async (key, bytes) => {
      await writeFile(await ensureDir(fileOf(...key)), bytes);
    },
  },
  {
    name: "mongodb",
    adapter: (onCorrupt) => new MongoStorageAdapter(mongo.db, { onCorrupt }),
    relayStorage: () => createMongoStorage(mongo.db),
    plant: async (key, bytes) => {
      const [doc = "", ...rest] = key;
      await mongo.db.collection(CHUNKS_COLLECTION).replaceOne({ _id: key.join("/") as never }, { doc, data: new Binary(bytes) }, { upsert: true });
      await mongo.db.collection(INDEX_COLLECTION).updateOne({ _id: doc as never }, { $addToSet: { keys: rest.join("/") } }, { upsert: true });
    },
  },
];

/** A snapshot and an incremental of a small document, as automerge-repo writes them. */
function chunks(): { snapshot: Uint8Array; incremental: Uint8Array } {
  let doc = A.from<{ items: Record<string, number> }>({ items: { a: 1 } });
  const snapshot = A.save(doc);
  const heads = A.getHeads(doc);
  doc = A.change(doc, (d) => {
    d.items.b = 2;
  });
  return { snapshot, incremental: A.saveSince(doc, heads) };
}

function fileOf(...key: string[]): string {
  const [first = "", ...rest] = key;
  return path.join(dir, first.slice(0, 2), first.slice(2), ...rest);
}

describe.each(backends)("$name storage: the StorageAdapter contract", (backend) => {
  it("saves, loads, lists, removes", async () => {
    const adapter = backend.adapter((c) => reports.push(c));
    const { snapshot, incremental } = chunks();
    expect(await adapter.load([DOC, "snapshot", "s1"])).toBeUndefined();
    expect(await adapter.loadRange([DOC])).toEqual([]);

    await adapter.save(["storage-adapter-id"], new TextEncoder().encode("relay-1"));
    await adapter.save([DOC, "snapshot", "s1"], snapshot);
    await adapter.save([DOC, "incremental", "i1"], incremental);
    await adapter.save([DOC, "sync-state", "peer-1"], new Uint8Array([1, 2, 3]));
    await adapter.save(["4other0000000000000000000000", "snapshot", "s9"], snapshot);

    expect(new TextDecoder().decode(await adapter.load(["storage-adapter-id"]))).toBe("relay-1");
    expect(await adapter.load([DOC, "snapshot", "s1"])).toEqual(snapshot);
    expect(await adapter.loadRange([DOC, "snapshot"])).toEqual([{ key: [DOC, "snapshot", "s1"], data: snapshot }]);
    const all = await adapter.loadRange([DOC]);
    expect(all.map((c) => c.key.join("/")).sort()).toEqual([`${DOC}/incremental/i1`, `${DOC}/snapshot/s1`, `${DOC}/sync-state/peer-1`]);

    // Overwrite in place: the new bytes, whole.
    const bigger = A.save(A.from({ many: Array.from({ length: 2000 }, (_, i) => i) }));
    await adapter.save([DOC, "snapshot", "s1"], bigger);
    expect(await adapter.load([DOC, "snapshot", "s1"])).toEqual(bigger);

    await adapter.remove([DOC, "incremental", "i1"]);
    await adapter.remove([DOC, "incremental", "never-saved"]);
    expect(await adapter.loadRange([DOC, "incremental"])).toEqual([]);
    await adapter.removeRange([DOC]);
    expect(await adapter.loadRange([DOC])).toEqual([]);
    expect(await adapter.loadRange(["4other0000000000000000000000"])).toHaveLength(1);
    expect(reports).toEqual([]);
  });

  it("a document written through one Repo loads whole in another (a restarted relay)", async () => {
    const first = new Repo({ network: [], storage: backend.adapter(), peerId: "a" as PeerId });
    const handle = first.create<{ items: Record<string, string> }>({ items: {} });
    for (let i = 0; i < 30; i++) handle.change((d) => void (d.items[`k${i}`] = `v${i}`));
    await first.flush();
    await first.shutdown();
    const second = new Repo({ network: [], storage: backend.adapter(), peerId: "b" as PeerId });
    const again = await second.find<{ items: Record<string, string> }>(handle.url);
    expect(Object.keys(again.doc().items)).toHaveLength(30);
    again.change((d) => void (d.items.more = "yes"));
    await second.flush();
    await second.shutdown();
    const third = new Repo({ network: [], storage: backend.adapter(), peerId: "c" as PeerId });
    expect((await third.find<{ items: Record<string, string> }>(handle.url)).doc().items.more).toBe("yes");
    await third.shutdown();
  });
});

describe("file storage adapter: files only", () => {
  it("leaves no temporary file beside the chunks", async () => {
    const { snapshot } = chunks();
    await adapter.save(["4other0000000000000000000000", "snapshot", "s9"], snapshot);
    await adapter.save(["4other0000000000000000000000", "snapshot", "s9"], snapshot);
    const left = await readdir(path.join(dir, "4o", "ther0000000000000000000000", "snapshot"));
    expect(left).toEqual(["s9"]);
  });

  it("reads and writes the nodefs layout: a data folder written by automerge-repo-storage-nodefs loads", async () => {
    const old = new Repo({ network: [], storage: new NodeFSStorageAdapter(dir), peerId: "old" as PeerId });
    const handle = old.create<{ items: Record<string, string> }>({ items: {} });
    for (let i = 0; i < 20; i++) handle.change((d) => void (d.items[`k${i}`] = `v${i}`));
    await old.flush();
    await old.shutdown();

    const ours = new Repo({ network: [], storage: new FileStorageAdapter(dir), peerId: "new" as PeerId });
    const again = await ours.find<{ items: Record<string, string> }>(handle.url);
    expect(Object.keys(again.doc().items)).toHaveLength(20);
    again.change((d) => void (d.items.more = "yes"));
    await ours.flush();
    await ours.shutdown();

    const back = new Repo({ network: [], storage: new NodeFSStorageAdapter(dir), peerId: "back" as PeerId });
    expect((await back.find<{ items: Record<string, string> }>(handle.url)).doc().items.more).toBe("yes");
    await back.shutdown();
  });
});

describe("chunk check", () => {
  it("knows whole chunks from empty, truncated, altered and foreign bytes", () => {
    const { snapshot, incremental } = chunks();
    expect(chunkProblem(snapshot)).toBeNull();
    expect(chunkProblem(incremental)).toBeNull();
    expect(chunkProblem(new Uint8Array(0))).toBe("empty (0 bytes)");
    expect(chunkProblem(snapshot.subarray(0, snapshot.length - 3))).toMatch(/truncated/);
    expect(chunkProblem(snapshot.subarray(0, 6))).toMatch(/truncated header/);
    const altered = Uint8Array.from(snapshot);
    altered[altered.length - 1] = (altered[altered.length - 1] ?? 0) ^ 0xff;
    expect(chunkProblem(altered)).toMatch(/checksum mismatch/);
    expect(chunkProblem(new TextEncoder().encode("not automerge at all"))).toMatch(/bad magic/);
  });
});

describe.each(backends)("$name storage: damage", (backend) => {
  it("a document whose only snapshot is 0 bytes fails to load, loudly, with its id; it is never an empty document", async () => {
    const repo = new Repo({ network: [], storage: backend.adapter(), peerId: "w" as PeerId });
    const handle = repo.create<{ items: Record<string, number> }>({ items: { tea: 3 } });
    await repo.flush();
    await repo.shutdown();
    const adapter = backend.adapter((c) => reports.push(c));
    const snapshots = (await adapter.loadRange([handle.documentId, "snapshot"])).map((c) => c.key[2]!);
    expect(snapshots).toHaveLength(1);
    await backend.plant([handle.documentId, "snapshot", snapshots[0]!], new Uint8Array(0));

    await expect(adapter.loadRange([handle.documentId, "snapshot"])).rejects.toThrow(CorruptDocumentError);
    expect(reports).toEqual([expect.objectContaining({ documentId: handle.documentId, reason: "empty (0 bytes)" })]);

    const reader = new Repo({ network: [], storage: backend.adapter(), peerId: "r" as PeerId });
    await expect(reader.find(handle.url as AutomergeUrl)).rejects.toThrow(`document ${handle.documentId} cannot be loaded from storage: snapshot/${snapshots[0]}: empty (0 bytes)`);
    // A handle that failed to load is never ready, and automerge-repo's shutdown flushes every handle.
    await reader.shutdown().catch(() => undefined);
  });

  it("a truncated incremental is skipped with a report; the rest of the document loads", async () => {
    const adapter = backend.adapter((c) => reports.push(c));
    const { snapshot, incremental } = chunks();
    let doc = A.load<{ items: Record<string, number> }>(snapshot);
    doc = A.loadIncremental(doc, incremental);
    const later = A.saveSince(A.change(doc, (d) => void (d.items.c = 3)), A.getHeads(doc));
    await adapter.save([DOC, "snapshot", "s1"], snapshot);
    await adapter.save([DOC, "incremental", "i1"], incremental);
    await backend.plant([DOC, "incremental", "i2"], later.subarray(0, later.length - 5));

    const incs = await adapter.loadRange([DOC, "incremental"]);
    expect(incs.map((c) => c.key[2])).toEqual(["i1"]);
    expect(reports).toEqual([expect.objectContaining({ documentId: DOC, key: [DOC, "incremental", "i2"], reason: expect.stringMatching(/truncated/) })]);
    const loaded = A.loadIncremental(A.load<{ items: Record<string, number> }>(snapshot), incs[0]!.data!);
    expect(loaded.items).toEqual({ a: 1, b: 2 });
    // A single load of a damaged chunk names it too.
    await expect(adapter.load([DOC, "incremental", "i2"])).rejects.toThrow(new RegExp(`^document ${DOC} cannot be loaded from storage: incremental/i2: chunk 0 at byte 0: truncated`));
  });

  it("nothing but damaged incrementals, and no snapshot, fails the document", async () => {
    const adapter = backend.adapter();
    const { incremental } = chunks();
    await backend.plant([DOC, "incremental", "i1"], incremental.subarray(0, 20));
    await expect(adapter.loadRange([DOC, "snapshot"])).resolves.toEqual([]);
    await expect(adapter.loadRange([DOC, "incremental"])).rejects.toThrow(CorruptDocumentError);
  });

  it("the relay's storage lists a document that cannot load, with since and reason, and counts the chunk", async () => {
    const storage = backend.relayStorage();
    await storage.save([DOC, "snapshot", "s1"], new Uint8Array(0));
    await expect(storage.loadRange([DOC, "snapshot"])).rejects.toThrow(CorruptDocumentError);
    expect(storage.damaged()).toEqual([{ documentId: DOC, since: expect.any(Date), reason: "snapshot/s1: empty (0 bytes)" }]);
    expect(storage.corruptChunks()).toBe(1);
    await storage.save([DOC, "snapshot", "s1"], chunks().snapshot);
    expect(await storage.loadRange([DOC, "snapshot"])).toHaveLength(1);
    expect(storage.damaged()).toEqual([]);
  });
});

describe("file storage adapter: temporary files", () => {
  it("a temporary file left by a crash is ignored and cleaned; our own in-flight ones are left alone", async () => {
    const { snapshot } = chunks();
    await adapter.save([DOC, "snapshot", "s1"], snapshot);
    const stale = fileOf(DOC, "snapshot", "s2.tmp-99999-deadbeef-0");
    await writeFile(stale, snapshot.subarray(0, 10));
    const chunksFound = await adapter.loadRange([DOC, "snapshot"]);
    expect(chunksFound.map((c) => c.key)).toEqual([[DOC, "snapshot", "s1"]]);
    expect(reports).toEqual([]);
    expect(await readdir(fileOf(DOC, "snapshot"))).toEqual(["s1"]);
    expect(await readFile(fileOf(DOC, "snapshot", "s1"))).toEqual(Buffer.from(snapshot));
  });
});

describe("MongoDB storage adapter: crash points and concurrency", () => {
  it("a chunk written but not yet listed (crash before its index entry) is invisible; a listed chunk that is gone is skipped", async () => {
    const store = new MongoStorageAdapter(mongo.db, { onCorrupt: (c) => reports.push(c) });
    const { snapshot, incremental } = chunks();
    await store.save([DOC, "snapshot", "s1"], snapshot);
    // The crash: the chunk's document is written, its index entry is not.
    await mongo.db.collection(CHUNKS_COLLECTION).insertOne({ _id: `${DOC}/incremental/orphan` as never, doc: DOC, data: new Binary(incremental.subarray(0, 12)) });
    // The other crash point of a remove: listed, chunk already deleted.
    await mongo.db.collection(INDEX_COLLECTION).updateOne({ _id: DOC as never }, { $addToSet: { keys: "incremental/gone" } });
    expect((await store.loadRange([DOC])).map((c) => c.key.join("/"))).toEqual([`${DOC}/snapshot/s1`]);
    expect(reports).toEqual([]);
  });

  it("many concurrent saves and removes of one document's chunks leave exactly the saved ones listed", async () => {
    const store = new MongoStorageAdapter(mongo.db);
    const { incremental } = chunks();
    await Promise.all(Array.from({ length: 40 }, (_, i) => store.save([DOC, "incremental", `i${i}`], incremental)));
    await Promise.all(Array.from({ length: 20 }, (_, i) => store.remove([DOC, "incremental", `i${i * 2}`])));
    const left = (await new MongoStorageAdapter(mongo.db).loadRange([DOC, "incremental"])).map((c) => c.key[2]).sort();
    expect(left).toEqual(Array.from({ length: 20 }, (_, i) => `i${i * 2 + 1}`).sort());
    expect(await mongo.db.collection(CHUNKS_COLLECTION).countDocuments({ doc: DOC })).toBe(20);
  });
});

async function ensureDir(file: string): Promise<string> {
  await mkdir(path.dirname(file), { recursive: true });
  return file;
}
