/**
 * Anchoring the journal outside the database: at least every `everyRecords` records or
 * `everyMs` milliseconds, the materializer signs a checkpoint of a team's chain head, stores it
 * in `journal_checkpoints` and publishes it in the team's status document (team-worker.ts), so
 * every device holds a signed witness that someone with write access to MongoDB cannot forge.
 */
import type { Checkpoint } from "../../shared/checkpoint.js";
import type { CheckpointSigner } from "../audit/signer.js";
import { teamKey, type Collections, type JournalCheckpointDoc } from "./collections.js";
import type { ChainHead } from "./journal.js";

export interface CheckpointPolicy {
  /** A checkpoint once the head is this many records past the last one... */
  everyRecords: number;
  /** ...or once the head has moved and the last one is this old. */
  everyMs: number;
}

export const DEFAULT_CHECKPOINT_POLICY: Readonly<CheckpointPolicy> = Object.freeze({ everyRecords: 1000, everyMs: 60_000 });

export interface Anchoring {
  signer: CheckpointSigner;
  /** To check a checkpoint found in the status document before keeping it as a witness. */
  publicKeyPem: string;
  policy: CheckpointPolicy;
}

/** Pure: whether the head needs a new checkpoint. A team without one gets its first right away. */
export function checkpointDue(last: Pick<Checkpoint, "seq" | "at"> | null, head: ChainHead, nowMs: number, policy: CheckpointPolicy): boolean {
  if (head.seq === 0) return false;
  if (last === null) return true;
  if (head.seq <= last.seq) return false;
  return head.seq - last.seq >= policy.everyRecords || nowMs - Date.parse(last.at) >= policy.everyMs;
}

/**
 * Sequence zero-padded so one team's checkpoints sort by seq within its `_id` range; the head's
 * prefix keeps two checkpoints of one seq apart (a rewritten journal signed again after a
 * rollback must not overwrite the witness of the original).
 */
export function checkpointId(cp: Pick<Checkpoint, "team" | "seq" | "head">): string {
  return teamKey(cp.team, `${String(cp.seq).padStart(12, "0")}:${cp.head.slice(0, 16)}`);
}

export async function storeCheckpoint(c: Collections, cp: Checkpoint, source: JournalCheckpointDoc["source"]): Promise<void> {
  try {
    await c.journalCheckpoints.insertOne({ _id: checkpointId(cp), ...cp, source });
  } catch (err) {
    // The same checkpoint stored before (a retry after a crash) is the same fact.
    if ((err as { code?: number }).code !== 11000) throw err;
  }
}

/** The latest checkpoint this service signed for the team, or null. */
export async function latestSignedCheckpoint(c: Collections, team: string): Promise<Checkpoint | null> {
  const doc = await c.journalCheckpoints.find({ team, source: "signed" }).sort({ seq: -1 }).limit(1).next();
  return doc ? withoutStorage(doc) : null;
}

export function withoutStorage(doc: JournalCheckpointDoc): Checkpoint {
  return { team: doc.team, seq: doc.seq, head: doc.head, at: doc.at, keyId: doc.keyId, sig: doc.sig };
}
