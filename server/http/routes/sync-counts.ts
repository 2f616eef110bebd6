/**
 * Sync-status figures per device, from the rows the materializer keeps per segment
 * (`segment_counts`, server/materializer/segment-counts.ts) instead of a scan of the journal and
 * of every segment. Only what the materializer has not counted yet is looked at here: a segment
 * the relay holds at other heads than its row (the entries since are read with `A.diff`), and a
 * segment without a row (loaded, within MAX_SEGMENTS_LOADED).
 */
import * as A from "@automerge/automerge";
import { parseAutomergeUrl, type AutomergeUrl, type DocumentId, type Repo } from "@automerge/automerge-repo";
import type { LedgerSegmentDoc } from "../../../shared/docs.js";
import { teamKey, type Collections, type SegmentCountsDoc } from "../../materializer/collections.js";
import { segmentDelta } from "../../materializer/segment-changes.js";
import { findByIds } from "../../materializer/write-set.js";
import type { DocumentRegistry } from "../../relay/registry.js";

/** Segments without a row loaded per request; a bigger team shows `entries: null` beyond it. */
const MAX_SEGMENTS_LOADED = 200;
/**
 * Entries not counted yet whose decided copy is looked up (to tell duplicates from undecided);
 * beyond, while the materializer catches up, they count as undecided until it has read them.
 */
const MAX_FRESH_LOOKUPS = 1000;
/** Duplicate entries named per device in the answer; the count covers them all. */
const MAX_DUPLICATES_LISTED = 100;

export interface DeviceRow {
  device: string;
  segments: number;
  entries: number | null;
  decided: number;
  deferred: number;
  rejected: number;
  quarantined: number;
  duplicates: number;
  duplicateEntries: { id: string; segments: string[] }[];
}

export interface CountSources {
  c: Collections;
  /** The service's Repo: segments it holds are compared with their rows without loading anything. */
  repo: Repo;
  registry: DocumentRegistry;
  /** Look journal records up one `_id` at a time (FerretDB scans for `$in`). */
  pointLookups: boolean;
}

/** A segment of the registry with what is known of it. */
interface Seen {
  key: string;
  documentId: string;
  row: DeviceRow;
  counted: SegmentCountsDoc | undefined;
  /** Entry ids listed since the row (or all, without a row); `null`: too many to look up. */
  fresh: string[] | null;
}

function sameHeads(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const set = new Set(a);
  return b.every((h) => set.has(h));
}

/** A segment's document if this process holds it ready, without loading it. */
function heldDoc(repo: Repo, documentId: string): A.Doc<LedgerSegmentDoc> | undefined {
  const handle = repo.handles[documentId as DocumentId];
  return handle?.isReady() ? (handle.doc() as A.Doc<LedgerSegmentDoc>) : undefined;
}

export async function deviceRows(
  src: CountSources,
  team: string,
  segments: readonly [string, AutomergeUrl][],
  counted: readonly SegmentCountsDoc[],
): Promise<Map<string, DeviceRow>> {
  const countsOf = new Map(counted.map((r) => [r.segment, r]));
  const rows = new Map<string, DeviceRow>();
  const order = new Map<string, number>();
  const keyOf = new Map<string, string>();
  const seen: Seen[] = [];
  let loaded = 0;
  let freshTotal = 0;
  for (const [key, url] of segments) {
    const device = key.slice(0, key.lastIndexOf("/")) || key;
    let row = rows.get(device);
    if (!row) rows.set(device, (row = { device, segments: 0, entries: 0, decided: 0, deferred: 0, rejected: 0, quarantined: 0, duplicates: 0, duplicateEntries: [] }));
    row.segments += 1;
    order.set(key, order.size);
    let documentId: string;
    try {
      documentId = parseAutomergeUrl(url).documentId;
    } catch {
      continue;
    }
    if (!keyOf.has(documentId)) keyOf.set(documentId, key);
    const c = countsOf.get(documentId);
    let doc: A.Doc<LedgerSegmentDoc> | undefined;
    if (c) doc = heldDoc(src.repo, documentId);
    else if (row.entries !== null && loaded < MAX_SEGMENTS_LOADED && (await src.registry.lookup(documentId))?.team === team) {
      // Not counted by the materializer yet (new, or counts cleared by a rebuild).
      loaded += 1;
      doc = heldDoc(src.repo, documentId) ?? (await src.repo.find<LedgerSegmentDoc>(url)).doc();
    } else {
      row.entries = null;
      continue;
    }
    let fresh: string[] | null = [];
    let listed = c?.listed ?? 0;
    if (doc && !(c && sameHeads(c.heads, A.getHeads(doc)))) {
      listed = Object.keys(doc.entries ?? {}).length;
      try {
        fresh = segmentDelta(doc, c?.heads).keys;
      } catch {
        fresh = Object.keys(doc.entries ?? {});
      }
      freshTotal += fresh.length;
    }
    if (row.entries !== null) row.entries += listed;
    if (c) {
      row.decided += c.accepted + c.rejected + c.invalid;
      row.deferred += c.deferred;
      row.rejected += c.rejected;
      row.quarantined += c.invalid;
      row.duplicates += c.duplicates;
    }
    seen.push({ key, documentId, row, counted: c, fresh });
  }
  if (freshTotal > MAX_FRESH_LOOKUPS) for (const s of seen) s.fresh = null;
  await countDuplicates(src, team, seen, order, keyOf);
  return rows;
}

/**
 * An entry id listed in several segments is decided once, where the journal says (its
 * provenance); every other copy is a duplicate of the row holding it, not an undecided entry.
 * Before its decision the first holder in registry order counts it.
 */
async function countDuplicates(src: CountSources, team: string, seen: readonly Seen[], order: ReadonlyMap<string, number>, keyOf: ReadonlyMap<string, string>): Promise<void> {
  const freshIds = [...new Set(seen.flatMap((s) => s.fresh ?? []))];
  const home = new Map<string, string>();
  if (freshIds.length > 0) {
    const keys = freshIds.map((id) => teamKey(team, id));
    const read = { pointLookups: src.pointLookups };
    for (const r of await findByIds(src.c.journal, keys, read)) home.set(r.entryId, r.provenance.segment);
    for (const d of await findByIds(src.c.deferred, keys, read)) if (!home.has(d.entryId)) home.set(d.entryId, d.provenance.segment);
  }
  // Entry id → the segments holding a copy, for the answer's `duplicateEntries`.
  const holders = new Map<string, Set<string>>();
  const duplicated: { row: DeviceRow; id: string }[] = [];
  const note = (row: DeviceRow, id: string, at: string, homeSegment: string): void => {
    let set = holders.get(id);
    if (!set) holders.set(id, (set = new Set()));
    set.add(homeSegment).add(at);
    duplicated.push({ row, id });
  };
  for (const s of seen) {
    for (const d of s.counted?.duplicateEntries ?? []) note(s.row, d.id, s.documentId, d.home);
    for (const id of s.fresh ?? []) {
      const h = home.get(id);
      if (h === undefined) {
        // Undecided everywhere so far: this is its first holder.
        home.set(id, s.documentId);
        continue;
      }
      if (h === s.documentId) continue;
      s.row.duplicates += 1;
      note(s.row, id, s.documentId, h);
    }
  }
  const rank = (k: string): number => order.get(k) ?? Number.MAX_SAFE_INTEGER;
  const listed = new Set<string>();
  for (const { row, id } of duplicated) {
    if (listed.has(`${row.device}\u0000${id}`) || row.duplicateEntries.length >= MAX_DUPLICATES_LISTED) continue;
    listed.add(`${row.device}\u0000${id}`);
    const keys = [...(holders.get(id) ?? [])].flatMap((doc) => keyOf.get(doc) ?? []).sort((a, b) => rank(a) - rank(b));
    row.duplicateEntries.push({ id, segments: keys });
  }
}
