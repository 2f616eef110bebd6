/**
 * The relay's document storage on real files: the StorageAdapter contract on real Automerge
 * chunks, the nodefs layout (old data folders still load), and damage: an empty, truncated or
 * altered chunk is reported with its document id and never loaded as an empty document.
 */
import * as A from "@automerge/automerge";
import { Repo, type AutomergeUrl, type PeerId } from "@automerge/automerge-repo";
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs";
import { mkdir, mkdtemp, readdir, readFile, rm, truncate, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { chunkProblem } from "../../../server/relay/chunk-check.js";
import { CorruptDocumentError, FileStorageAdapter, type CorruptChunk } from "../../../server/relay/file-storage.js";
import { createFileStorage } from "../../../server/relay/storage.js";

const DOC = "3XYZabcdefghijklmnopqrstuvw1";
let dir: string;
let reports: CorruptChunk[];
let adapter: FileStorageAdapter;

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "file-storage-"));
  reports = [];
  adapter = new FileStorageAdapter(dir, { onCorrupt: (c) => reports.push(c) });
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

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

describe("file storage adapter: the StorageAdapter contract", () => {
  it("saves, loads, lists, removes", async () => {
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
    // No temporary file is left beside the chunks.
    const left = await readdir(path.join(dir, "4o", "ther0000000000000000000000", "snapshot"));
    expect(left).toEqual(["s9"]);
    expect(reports).toEqual([]);
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

describe("file storage adapter: damage", () => {
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

  it("a document whose only snapshot is 0 bytes fails to load, loudly, with its id; it is never an empty document", async () => {
    const repo = new Repo({ network: [], storage: new FileStorageAdapter(dir), peerId: "w" as PeerId });
    const handle = repo.create<{ items: Record<string, number> }>({ items: { tea: 3 } });
    await repo.flush();
    await repo.shutdown();
    const snapshots = await readdir(fileOf(handle.documentId, "snapshot"));
    expect(snapshots).toHaveLength(1);
    await truncate(fileOf(handle.documentId, "snapshot", snapshots[0]!), 0);

    await expect(adapter.loadRange([handle.documentId, "snapshot"])).rejects.toThrow(CorruptDocumentError);
    expect(reports).toEqual([expect.objectContaining({ documentId: handle.documentId, reason: "empty (0 bytes)" })]);

    const reader = new Repo({ network: [], storage: new FileStorageAdapter(dir), peerId: "r" as PeerId });
    await expect(reader.find(handle.url as AutomergeUrl)).rejects.toThrow(`document ${handle.documentId} cannot be loaded from storage: snapshot/${snapshots[0]}: empty (0 bytes)`);
    // A handle that failed to load is never ready, and automerge-repo's shutdown flushes every handle.
    await reader.shutdown().catch(() => undefined);
  });

  it("a truncated incremental is skipped with a report; the rest of the document loads", async () => {
    const { snapshot, incremental } = chunks();
    let doc = A.load<{ items: Record<string, number> }>(snapshot);
    doc = A.loadIncremental(doc, incremental);
    const later = A.saveSince(A.change(doc, (d) => void (d.items.c = 3)), A.getHeads(doc));
    await adapter.save([DOC, "snapshot", "s1"], snapshot);
    await adapter.save([DOC, "incremental", "i1"], incremental);
    await writeFile(fileOf(DOC, "incremental", "i2"), later.subarray(0, later.length - 5));

    const incs = await adapter.loadRange([DOC, "incremental"]);
    expect(incs.map((c) => c.key[2])).toEqual(["i1"]);
    expect(reports).toEqual([expect.objectContaining({ documentId: DOC, key: [DOC, "incremental", "i2"], reason: expect.stringMatching(/truncated/) })]);
    const loaded = A.loadIncremental(A.load<{ items: Record<string, number> }>(snapshot), incs[0]!.data!);
    expect(loaded.items).toEqual({ a: 1, b: 2 });
    // A single load of a damaged chunk names it too.
    await expect(adapter.load([DOC, "incremental", "i2"])).rejects.toThrow(new RegExp(`^document ${DOC} cannot be loaded from storage: incremental/i2: chunk 0 at byte 0: truncated`));
  });

  it("nothing but damaged incrementals, and no snapshot, fails the document", async () => {
    const { incremental } = chunks();
    await writeFile(await ensureDir(fileOf(DOC, "incremental", "i1")), incremental.subarray(0, 20));
    await expect(adapter.loadRange([DOC, "snapshot"])).resolves.toEqual([]);
    await expect(adapter.loadRange([DOC, "incremental"])).rejects.toThrow(CorruptDocumentError);
  });

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

  it("the relay's storage lists a document that cannot load, with since and reason, and counts the chunk", async () => {
    const base = path.join(dir, "relay-data");
    const storage = createFileStorage(base);
    await storage.save([DOC, "snapshot", "s1"], new Uint8Array(0));
    await expect(storage.loadRange([DOC, "snapshot"])).rejects.toThrow(CorruptDocumentError);
    expect(storage.damaged()).toEqual([{ documentId: DOC, since: expect.any(Date), reason: "snapshot/s1: empty (0 bytes)" }]);
    expect(storage.corruptChunks()).toBe(1);
    await storage.save([DOC, "snapshot", "s1"], chunks().snapshot);
    expect(await storage.loadRange([DOC, "snapshot"])).toHaveLength(1);
    expect(storage.damaged()).toEqual([]);
  });
});

async function ensureDir(file: string): Promise<string> {
  await mkdir(path.dirname(file), { recursive: true });
  return file;
}
