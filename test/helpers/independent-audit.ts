/**
 * A second implementation of docs/AUDIT.md's canonical form, hashes and checkpoint signatures,
 * written from the document alone: it must not import shared/domain/hash.ts, server/ or client/
 * code, so that a test passing with it shows the document is enough to reimplement the checks.
 */
import { createHash, createPublicKey, verify } from "node:crypto";

/** AUDIT.md "Canonical form": strings escaped by hand, character by character. */
function canonicalString(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const u = s.charCodeAt(i);
    if (u === 0x22) out += '\\"';
    else if (u === 0x5c) out += "\\\\";
    else if (u === 0x08) out += "\\b";
    else if (u === 0x0c) out += "\\f";
    else if (u === 0x0a) out += "\\n";
    else if (u === 0x0d) out += "\\r";
    else if (u === 0x09) out += "\\t";
    else if (u < 0x20) out += `\\u${u.toString(16).padStart(4, "0")}`;
    else if (u >= 0xd800 && u <= 0xdbff && i + 1 < s.length && s.charCodeAt(i + 1) >= 0xdc00 && s.charCodeAt(i + 1) <= 0xdfff) {
      out += s[i]! + s[i + 1]!;
      i++;
    } else if (u >= 0xd800 && u <= 0xdfff) out += `\\u${u.toString(16).padStart(4, "0")}`;
    else out += s[i]!;
  }
  return `${out}"`;
}

/** Keys compared by UTF-16 code units, as the document says (not by code points). */
function byCodeUnits(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = a.charCodeAt(i) - b.charCodeAt(i);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

export function canonical(v: unknown): string {
  if (v === null) return "null";
  if (v === true) return "true";
  if (v === false) return "false";
  if (typeof v === "number") {
    if (!Number.isSafeInteger(v)) throw new Error(`AUDIT.md allows safe integers only, got ${v}`);
    return Object.is(v, -0) ? "0" : String(v);
  }
  if (typeof v === "string") return canonicalString(v);
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (typeof v === "object") {
    const keys = Object.keys(v).sort(byCodeUnits);
    return `{${keys.map((k) => `${canonicalString(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(",")}}`;
  }
  throw new Error(`not a JSON value: ${typeof v}`);
}

export function sha256(text: string): string {
  return createHash("sha256").update(Buffer.from(text, "utf8")).digest("hex");
}

/** AUDIT.md "Record hash": SHA-256 of the canonical form of the record without `recordHash`. */
export function recordHash(row: Record<string, unknown>): string {
  const rest: Record<string, unknown> = {};
  for (const [k, val] of Object.entries(row)) if (k !== "recordHash") rest[k] = val;
  return sha256(canonical(rest));
}

/** AUDIT.md "Entry hash". */
export function entryHash(row: { status: string; reason: string | null; entry: unknown }): string {
  return row.status === "invalid" ? sha256(`invalid\n${row.reason ?? ""}`) : sha256(canonical(row.entry));
}

/** Checks a team's rows in seq order: seq from 1 without gaps, links, record and entry hashes. */
export function checkChain(rows: readonly Record<string, unknown>[]): string[] {
  const problems: string[] = [];
  let prev = "";
  rows.forEach((row, i) => {
    if (row.seq !== i + 1) problems.push(`row ${i}: seq ${String(row.seq)}, expected ${i + 1}`);
    if (row.prevHash !== prev) problems.push(`seq ${String(row.seq)}: prevHash does not link`);
    if (recordHash(row) !== row.recordHash) problems.push(`seq ${String(row.seq)}: recordHash does not match`);
    if (entryHash(row as never) !== row.hash) problems.push(`seq ${String(row.seq)}: hash does not match the entry`);
    prev = String(row.recordHash);
  });
  return problems;
}

/** AUDIT.md "Checkpoints": the signed message, and an ES256 (P-256, SHA-256, r‖s) check. */
export function checkpointMessage(cp: { team: string; seq: number; head: string; at: string; keyId: string }): string {
  return canonical({ at: cp.at, head: cp.head, keyId: cp.keyId, seq: cp.seq, team: cp.team, type: "ledger-sync/journal-checkpoint/v1" });
}

export function keyId(publicKeyPem: string): string {
  return createHash("sha256").update(createPublicKey(publicKeyPem).export({ type: "spki", format: "der" })).digest("hex");
}

export function checkpointValid(cp: { team: string; seq: number; head: string; at: string; keyId: string; sig: string }, publicKeyPem: string): boolean {
  if (cp.keyId !== keyId(publicKeyPem)) return false;
  const sig = Buffer.from(cp.sig.replace(/-/g, "+").replace(/_/g, "/"), "base64");
  return sig.length === 64 && verify("sha256", Buffer.from(checkpointMessage(cp), "utf8"), { key: publicKeyPem, dsaEncoding: "ieee-p1363" }, sig);
}
