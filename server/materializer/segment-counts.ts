/**
 * The sync-status figures per ledger segment (SegmentCountsDoc): what the journal and the
 * waiting entries say about each segment, kept in memory by the team's worker (loaded from the
 * journal at start, advanced by each batch's outcome) and combined with the segment's document
 * into whole rows. Nothing is incremented in MongoDB: a row is always recomputed, so writing it
 * again gives the same row, and a row a kill left behind is rewritten at the next start.
 */
import type { Collections, JournalRecord, SegmentCountsDoc } from "./collections.js";
import { teamKey } from "./collections.js";

/** Duplicates named per row; the count covers them all. */
export const MAX_DUPLICATES_KEPT = 100;

interface Decided {
  accepted: number;
  rejected: number;
  invalid: number;
}

/** Where each entry id of a team was decided (or is waiting), and per segment how. */
export class SegmentTally {
  /** Entry id → the segment its journal record (or its waiting copy) came from. */
  private readonly home = new Map<string, string>();
  /** Entry ids that have a journal record. */
  private readonly final = new Set<string>();
  private readonly decided = new Map<string, Decided>();
  /** Waiting entry id → its segment (a small set: entries waiting for their invoice). */
  private readonly waiting = new Map<string, string>();

  /** One journal record: records are unique per entry id, so each counts once. */
  record(entryId: string, status: JournalRecord["status"], segment: string): void {
    if (this.final.has(entryId)) return;
    this.final.add(entryId);
    this.waiting.delete(entryId);
    this.home.set(entryId, segment);
    let d = this.decided.get(segment);
    if (!d) this.decided.set(segment, (d = { accepted: 0, rejected: 0, invalid: 0 }));
    d[status] += 1;
  }

  /** An entry now waiting for its invoice (from this segment's copy, as the deferred record says); ignored once the journal has it. */
  defer(entryId: string, segment: string): void {
    if (this.final.has(entryId)) return;
    this.waiting.set(entryId, segment);
    this.home.set(entryId, segment);
  }

  /** The segment holding the decided or waiting copy of an entry id, if any. */
  homeOf(entryId: string): string | undefined {
    return this.home.get(entryId);
  }

  /**
   * A segment's row from the entry ids its document lists (at `heads`). An id whose copy was
   * decided from another segment is a duplicate here, never undecided.
   */
  row(team: string, segment: string, device: string | null, listed: readonly string[], heads: readonly string[], now: string): SegmentCountsDoc {
    const d = this.decided.get(segment) ?? { accepted: 0, rejected: 0, invalid: 0 };
    let deferred = 0;
    for (const s of this.waiting.values()) if (s === segment) deferred += 1;
    let duplicates = 0;
    const duplicateEntries: SegmentCountsDoc["duplicateEntries"] = [];
    for (const id of listed) {
      const home = this.home.get(id);
      if (home === undefined || home === segment) continue;
      duplicates += 1;
      if (duplicateEntries.length < MAX_DUPLICATES_KEPT) duplicateEntries.push({ id, home });
    }
    const undecided = Math.max(0, listed.length - d.accepted - d.rejected - d.invalid - deferred - duplicates);
    return {
      _id: teamKey(team, segment), team, segment, device, heads: [...heads], listed: listed.length,
      accepted: d.accepted, rejected: d.rejected, invalid: d.invalid, deferred, duplicates, undecided, duplicateEntries, updatedAt: now,
    };
  }

  /** The team's journal and waiting entries, read once (a scan on FerretDB: at start, after a failed batch, and in the self-check). */
  static async load(c: Collections, team: string): Promise<SegmentTally> {
    const tally = new SegmentTally();
    const journal = c.journal.find({ team }, { projection: { entryId: 1, status: 1, "provenance.segment": 1 } });
    for await (const r of journal) tally.record(r.entryId, r.status, r.provenance.segment);
    for await (const d of c.deferred.find({ team }, { projection: { entryId: 1, "provenance.segment": 1 } })) tally.defer(d.entryId, d.provenance.segment);
    return tally;
  }
}

/** The figures of a row that sync-status shows (not its heads, time or examples): what a self-check compares. */
export function sameFigures(a: SegmentCountsDoc, b: SegmentCountsDoc): boolean {
  return (
    a.listed === b.listed && a.accepted === b.accepted && a.rejected === b.rejected && a.invalid === b.invalid &&
    a.deferred === b.deferred && a.duplicates === b.duplicates && a.undecided === b.undecided
  );
}

/** The figures of a row, for a log line. */
export function figuresOf(r: SegmentCountsDoc | undefined): Record<string, number> | null {
  if (!r) return null;
  const { listed, accepted, rejected, invalid, deferred, duplicates, undecided } = r;
  return { listed, accepted, rejected, invalid, deferred, duplicates, undecided };
}
