/**
 * The baseline of the status bench: how `/api/sync-status` counted before the materializer kept
 * counts per segment (server/http/routes/status.ts up to issue 21), its counting part only: one
 * `$group` per collection over the team, every segment loaded and its entry ids gathered, and the
 * duplicates' decided copies looked up in the journal.
 */
import { parseAutomergeUrl, type AutomergeUrl, type Repo } from "@automerge/automerge-repo";
import type { Collection, Document } from "mongodb";
import type { LedgerSegmentDoc } from "../../shared/docs.js";
import { teamKey, type Collections } from "../../server/materializer/collections.js";

async function countBy(col: Collection<Document>, team: string, field: string): Promise<Map<string, number>> {
  const rows = await col.aggregate<{ _id: string; n: number }>([{ $match: { team } }, { $group: { _id: `$${field}`, n: { $sum: 1 } } }]).toArray();
  return new Map(rows.map((r) => [String(r._id), r.n]));
}

/** Entries, decided and duplicates per device, as the scan found them. */
export async function scanSyncStatus(c: Collections, repo: Repo, team: string, segments: readonly [string, AutomergeUrl][]): Promise<Map<string, { entries: number; decided: number; duplicates: number }>> {
  const [decided, deferred, rejected, quarantined, head] = await Promise.all([
    countBy(c.journal as unknown as Collection<Document>, team, "provenance.segment"),
    countBy(c.deferred as unknown as Collection<Document>, team, "provenance.segment"),
    countBy(c.rejections as unknown as Collection<Document>, team, "segment"),
    countBy(c.quarantine as unknown as Collection<Document>, team, "segment"),
    c.journal.find({ team }).sort({ seq: -1 }).limit(1).project({ seq: 1 }).next(),
  ]);
  void [deferred, rejected, quarantined, head];
  const rows = new Map<string, { entries: number; decided: number; duplicates: number }>();
  const holders = new Map<string, string[]>();
  const documentOf = new Map<string, string>();
  for (const [key, url] of segments) {
    const device = key.slice(0, key.lastIndexOf("/"));
    const row = rows.get(device) ?? { entries: 0, decided: 0, duplicates: 0 };
    rows.set(device, row);
    const documentId = parseAutomergeUrl(url).documentId;
    documentOf.set(key, documentId);
    row.decided += decided.get(documentId) ?? 0;
    const ids = Object.keys((await repo.find<LedgerSegmentDoc>(url)).doc().entries ?? {});
    row.entries += ids.length;
    for (const id of ids) {
      const held = holders.get(id);
      if (held) held.push(key);
      else holders.set(id, [key]);
    }
  }
  const repeated = [...holders].filter(([, keys]) => keys.length > 1);
  const home = new Map<string, string>();
  if (repeated.length > 0) {
    const records = await c.journal.find({ _id: { $in: repeated.map(([id]) => teamKey(team, id)) } }, { projection: { entryId: 1, provenance: 1 } }).toArray();
    for (const r of records) home.set(r.entryId, r.provenance.segment);
  }
  for (const [id, keys] of repeated) {
    const counted = keys.find((k) => documentOf.get(k) === home.get(id)) ?? keys[0];
    for (const key of keys) if (key !== counted) rows.get(key.slice(0, key.lastIndexOf("/")))!.duplicates += 1;
  }
  return rows;
}
