/**
 * The journal's hash chain: each record holds the hash of the previous record of its team, so
 * an auditor can tell whether any record was changed, removed or inserted after the fact.
 */
import { canonicalJson, sha256Hex } from "../../shared/domain/index.js";
import type { Collections, JournalRecord } from "./collections.js";

export type UnsealedRecord = Omit<JournalRecord, "recordHash" | "prevHash" | "seq">;

export interface ChainHead {
  seq: number;
  recordHash: string;
}

export function recordHashOf(record: Omit<JournalRecord, "recordHash">): string {
  return sha256Hex(canonicalJson(record));
}

/** Numbers records from `head` on and links each to the one before. */
export function seal(head: ChainHead, records: readonly UnsealedRecord[]): JournalRecord[] {
  let { seq, recordHash: prev } = head;
  return records.map((r) => {
    seq += 1;
    // Through JSON so what is hashed is exactly what MongoDB stores and gives back (no
    // `undefined` fields, which the driver would turn into null).
    const unsealed = JSON.parse(JSON.stringify({ ...r, seq, prevHash: prev })) as Omit<JournalRecord, "recordHash">;
    const recordHash = recordHashOf(unsealed);
    prev = recordHash;
    return { ...unsealed, recordHash };
  });
}

export async function chainHead(c: Collections, team: string): Promise<ChainHead> {
  const last = await c.journal.find({ team }).sort({ seq: -1 }).limit(1).next();
  return last ? { seq: last.seq, recordHash: last.recordHash } : { seq: 0, recordHash: "" };
}

export interface ChainBreak {
  seq: number;
  id: string;
  reason: string;
}

export interface VerifyResult {
  team: string;
  records: number;
  head: ChainHead;
  breaks: ChainBreak[];
  /** recordHash of the records at the seqs asked for (`wantSeqs`) that exist. */
  hashAt: Map<number, string>;
}

/**
 * Walks a team's journal in seq order. Reports a record whose content no longer matches its
 * hash, a link to a previous record that does not match, and gaps in the sequence.
 */
export async function verifyJournal(
  c: Collections,
  team: string,
  onProgress?: (checked: number) => void,
  wantSeqs: ReadonlySet<number> = new Set(),
): Promise<VerifyResult> {
  const breaks: ChainBreak[] = [];
  const hashAt = new Map<number, string>();
  let expectedSeq = 1;
  let prev = "";
  let count = 0;
  const cursor = c.journal.find({ team }).sort({ seq: 1 });
  for await (const doc of cursor) {
    count += 1;
    const { recordHash, ...rest } = doc;
    if (doc.seq !== expectedSeq) {
      breaks.push({ seq: doc.seq, id: doc._id, reason: `expected seq ${expectedSeq}, found ${doc.seq}` });
    }
    if (doc.prevHash !== prev) {
      breaks.push({ seq: doc.seq, id: doc._id, reason: "prevHash does not match the previous record's hash" });
    }
    if (recordHashOf(rest) !== recordHash) {
      breaks.push({ seq: doc.seq, id: doc._id, reason: "content does not match recordHash (record changed)" });
    }
    if (wantSeqs.has(doc.seq)) hashAt.set(doc.seq, recordHash);
    prev = recordHash;
    expectedSeq = doc.seq + 1;
    if (onProgress && count % 1000 === 0) onProgress(count);
  }
  return { team, records: count, head: { seq: expectedSeq - 1, recordHash: prev }, breaks, hashAt };
}
