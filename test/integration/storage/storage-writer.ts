/**
 * Child process for the crash test: writes documents through the relay's storage module the way
 * automerge-repo does (incrementals, then a compaction: new snapshot saved, old chunks removed),
 * as fast as it can, until it is killed. On start it loads what the last (killed) run stored;
 * a document that does not load whole is reported and the process exits 1.
 *
 * Env: DATA_DIR, DOCS (how many documents), ENTRY_BYTES (size of each entry's text).
 */
import { createHash, randomBytes } from "node:crypto";
import * as A from "@automerge/automerge";
import type { StorageKey } from "@automerge/automerge-repo";
import { createFileStorage } from "../../../server/relay/storage.js";

interface CrashDoc {
  /** Entry number -> text of ENTRY_BYTES; the count is the highest number + 1. */
  entries: Record<string, string>;
  count: number;
}

const dataDir = process.env.DATA_DIR!;
const docs = Number(process.env.DOCS ?? 3);
const entryBytes = Number(process.env.ENTRY_BYTES ?? 2048);
const storage = createFileStorage(dataDir);
const say = (o: Record<string, unknown>): void => void process.stdout.write(`${JSON.stringify(o)}\n`);
const hash = (data: Uint8Array | string): string => createHash("sha256").update(data).digest("hex");

async function load(id: string): Promise<{ doc: A.Doc<CrashDoc>; keys: StorageKey[] }> {
  const chunks = [...(await storage.loadRange([id, "snapshot"])), ...(await storage.loadRange([id, "incremental"]))];
  let doc = A.init<CrashDoc>();
  for (const c of chunks) if (c.data) doc = A.loadIncremental(doc, c.data);
  if (chunks.length === 0) doc = A.change(doc, (d) => Object.assign(d, { entries: {}, count: 0 }));
  return { doc, keys: chunks.map((c) => c.key) };
}

async function main(): Promise<void> {
  const state = [];
  for (let i = 0; i < docs; i++) {
    const id = `crashdoc${i}`;
    try {
      const { doc, keys } = await load(id);
      // A new document's first change is saved with the first incremental.
      state.push({ id, doc, keys, saved: keys.length === 0 ? [] : A.getHeads(doc) });
    } catch (err) {
      say({ msg: "load failed", id, err: String(err) });
      process.exit(1);
    }
  }
  say({ msg: "loaded", counts: state.map((s) => s.doc.count) });
  for (let round = 0; ; round++) {
    for (const s of state) {
      s.doc = A.change(s.doc, (d) => {
        d.entries[String(d.count)] = randomBytes(entryBytes / 2).toString("hex");
        d.count += 1;
      });
      if (round % 4 === 3) {
        // Compaction as automerge-repo does it: the new snapshot first, then the old chunks go.
        const key: StorageKey = [s.id, "snapshot", hash(A.getHeads(s.doc).join(","))];
        await storage.save(key, A.save(s.doc));
        for (const old of s.keys) if (old.join("/") !== key.join("/")) await storage.remove(old);
        s.keys = [key];
      } else {
        const data = A.saveSince(s.doc, s.saved);
        const key: StorageKey = [s.id, "incremental", hash(data)];
        await storage.save(key, data);
        s.keys.push(key);
      }
      s.saved = A.getHeads(s.doc);
    }
    if (round === 0) say({ msg: "writing" });
  }
}

void main();
