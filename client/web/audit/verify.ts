/**
 * The journal's verification, done in the auditor's browser from what the API served: every
 * record's hash recomputed, the chain of `prevHash` links and the gapless `seq` checked (as
 * `npm run verify-journal` does, server/materializer/journal.ts), and every signed checkpoint
 * checked against the service's public key and against the record it anchors. Trusts nothing
 * the server says about itself beyond the key.
 */
import { sha256 } from "@noble/hashes/sha256";
import { bytesToHex } from "@noble/hashes/utils";
import { checkpointMessage, parseCheckpoint } from "../../../shared/checkpoint.js";
import { canonicalJson, sha256Hex } from "../../../shared/domain/index.js";
import { createPublicKey, verify } from "../../browser/node-crypto.js";

export interface JournalRecordView {
  _id: string;
  seq: number;
  entryId: string;
  kind: string | null;
  status: string;
  reason: string | null;
  entry: Record<string, unknown> | null;
  provenance?: Record<string, unknown>;
  decidedAt?: string;
  prevHash: string;
  recordHash: string;
  [k: string]: unknown;
}

export interface Verification {
  records: number;
  breaks: Array<{ seq: number; reason: string }>;
  checkpoints: Array<{ seq: number; at: string; ok: boolean; reason?: string }>;
}

function base64UrlBytes(s: string): Uint8Array {
  const b64 = s.replace(/-/g, "+").replace(/_/g, "/");
  return Uint8Array.from(atob(b64.padEnd(Math.ceil(b64.length / 4) * 4, "=")), (c) => c.charCodeAt(0));
}

export function verifyJournal(records: readonly JournalRecordView[], rawCheckpoints: readonly unknown[], publicKeyPem: string): Verification {
  const breaks: Verification["breaks"] = [];
  const hashAt = new Map<number, string>();
  let expected = 1;
  let prev = "";
  for (const r of records) {
    const { recordHash, ...rest } = r;
    if (r.seq !== expected) breaks.push({ seq: r.seq, reason: `expected seq ${expected}, found ${r.seq}` });
    if (r.prevHash !== prev) breaks.push({ seq: r.seq, reason: "prevHash does not match the previous record's hash" });
    if (sha256Hex(canonicalJson(rest)) !== recordHash) breaks.push({ seq: r.seq, reason: "content does not match recordHash (record changed)" });
    hashAt.set(r.seq, recordHash);
    prev = recordHash;
    expected = r.seq + 1;
  }
  const key = createPublicKey(publicKeyPem);
  const keyId = bytesToHex(sha256(key.spki));
  const checkpoints = rawCheckpoints.map((raw): Verification["checkpoints"][number] => {
    const cp = parseCheckpoint(raw);
    if (typeof cp === "string") return { seq: 0, at: "", ok: false, reason: cp };
    const base = { seq: cp.seq, at: cp.at };
    if (cp.keyId !== keyId) return { ...base, ok: false, reason: "signed by another key" };
    const signed = verify("sha256", new TextEncoder().encode(checkpointMessage(cp)), { key, dsaEncoding: "ieee-p1363" }, base64UrlBytes(cp.sig));
    if (!signed) return { ...base, ok: false, reason: "bad signature" };
    const head = hashAt.get(cp.seq);
    if (head === undefined) return { ...base, ok: false, reason: `record ${cp.seq} is missing from the journal` };
    if (head !== cp.head) return { ...base, ok: false, reason: `record ${cp.seq} differs from what was signed` };
    return { ...base, ok: true };
  });
  return { records: records.length, breaks, checkpoints };
}
