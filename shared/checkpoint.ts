/**
 * Signed checkpoints of a team's journal (docs/AUDIT.md, "Checkpoints"): the service's witness
 * that the journal's record `seq` had hash `head` at time `at`. Published in the team's status
 * document, so every device holds one outside the database. Shared by the server (which signs
 * and verifies) and devices (which keep what they see and export it); only parsing and the
 * signed message live here, since signing needs the platform's crypto.
 */
import { canonicalJson } from "./domain/hash.js";

export interface CheckpointBody {
  team: string;
  /** Journal sequence number of the record anchored. */
  seq: number;
  /** That record's `recordHash`. */
  head: string;
  /** When the service signed it (ISO 8601, UTC). */
  at: string;
  /** Hex SHA-256 of the signing key's public key (DER SubjectPublicKeyInfo). */
  keyId: string;
}

export interface Checkpoint extends CheckpointBody {
  /** ES256 signature of `checkpointMessage(body)`: base64url of r ‖ s (64 bytes), as in JWS. */
  sig: string;
}

/** Version tag inside the signed message, so a signature can never be read as another kind of statement. */
export const CHECKPOINT_TYPE = "ledger-sync/journal-checkpoint/v1";

/** The exact UTF-8 text that is signed: canonical JSON of the body and the type tag. */
export function checkpointMessage(b: CheckpointBody): string {
  return canonicalJson({ at: b.at, head: b.head, keyId: b.keyId, seq: b.seq, team: b.team, type: CHECKPOINT_TYPE });
}

const HEX64 = /^[0-9a-f]{64}$/;
const B64URL = /^[A-Za-z0-9_-]{80,100}$/;
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z$/;

function own(raw: unknown, key: string): unknown {
  if (typeof raw !== "object" || raw === null) return undefined;
  const desc = Object.getOwnPropertyDescriptor(raw, key);
  const v: unknown = desc && "value" in desc ? desc.value : undefined;
  // Automerge immutable strings (how the status document stores them) carry the text in `val`.
  if (typeof v === "object" && v !== null && typeof (v as { val?: unknown }).val === "string") return (v as { val: string }).val;
  return v;
}

/** A checkpoint from an untrusted source (a status document, a file), or the reason it is not one. */
export function parseCheckpoint(raw: unknown): Checkpoint | string {
  const team = own(raw, "team");
  const seq = own(raw, "seq");
  const head = own(raw, "head");
  const at = own(raw, "at");
  const keyId = own(raw, "keyId");
  const sig = own(raw, "sig");
  if (typeof team !== "string" || team === "" || team.length > 200) return "checkpoint: team must be a non-empty string";
  if (typeof seq !== "number" || !Number.isSafeInteger(seq) || seq < 1) return "checkpoint: seq must be a positive integer";
  if (typeof head !== "string" || !HEX64.test(head)) return "checkpoint: head must be 64 hex digits";
  if (typeof at !== "string" || !ISO.test(at) || Number.isNaN(Date.parse(at))) return "checkpoint: at must be an ISO 8601 UTC time";
  if (typeof keyId !== "string" || !HEX64.test(keyId)) return "checkpoint: keyId must be 64 hex digits";
  if (typeof sig !== "string" || !B64URL.test(sig)) return "checkpoint: sig must be base64url";
  return { team, seq, head, at, keyId, sig };
}
