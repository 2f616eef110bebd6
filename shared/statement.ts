/**
 * Server statements: the service's signature over the content of a server-owned document (root,
 * status, verdicts), so a device can carry them between peers and still tell the server's word
 * from a team mate's forgery. Automerge changes are not signed, and the relay's read-only rule
 * protects only what passes through the relay; this protects what passes between devices.
 *
 * The signature covers a canonical serialization of the document's content (every field except
 * `statement`), the document id (content cannot be moved to another document) and a version that
 * only grows (an old signed state cannot be replayed over a newer one).
 */
import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from "node:crypto";
import { isImmutableString } from "@automerge/automerge";

export const STATEMENT_FIELD = "statement";
const DOMAIN = "ledger-sync/statement/v1";

export interface Statement {
  version: number;
  /** ES256 signature (IEEE P1363, r‖s), base64. */
  signature: string;
}

export type StatementCheck =
  | { ok: true; version: number }
  | { ok: false; reason: "unsigned" | "malformed" | "bad-signature" };

function own(raw: unknown, key: string): unknown {
  if (typeof raw !== "object" || raw === null) return undefined;
  const desc = Object.getOwnPropertyDescriptor(raw, key);
  return desc && "value" in desc ? desc.value : undefined;
}

/**
 * Sorted keys, no whitespace, strings stored either as text or as immutable scalars written the
 * same (readers accept both forms, so the signature must not depend on which one is stored).
 * Works on Automerge proxies, which are not plain objects.
 */
export function canonicalJson(value: unknown, skipTopLevel?: string): string {
  if (value === null) return "null";
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new Error("statement content holds a non-finite number");
    return JSON.stringify(value);
  }
  if (isImmutableString(value)) return JSON.stringify(value.val);
  if (Array.isArray(value)) return `[${value.map((v: unknown) => canonicalJson(v)).join(",")}]`;
  if (typeof value === "object") {
    const keys = Object.keys(value).filter((k) => k !== skipTopLevel).sort();
    const parts: string[] = [];
    for (const k of keys) {
      const v = own(value, k);
      if (v === undefined) continue;
      parts.push(`${JSON.stringify(k)}:${canonicalJson(v)}`);
    }
    return `{${parts.join(",")}}`;
  }
  throw new Error(`statement content holds a ${typeof value}`);
}

/** What is signed: the domain, the document id, the version and the content without `statement`. */
export function statementPayload(documentId: string, version: number, content: unknown): string {
  return statementPayloadOf(documentId, version, canonicalJson(content, STATEMENT_FIELD));
}

function statementPayloadOf(documentId: string, version: number, canonicalContent: string): string {
  return `${JSON.stringify([DOMAIN, documentId, version])}\n${canonicalContent}`;
}

export function readStatement(doc: unknown): Statement | "malformed" | undefined {
  const raw = own(doc, STATEMENT_FIELD);
  if (raw === undefined) return undefined;
  const version = own(raw, "version");
  const sig = own(raw, "signature");
  const signature = typeof sig === "string" ? sig : isImmutableString(sig) ? sig.val : undefined;
  if (typeof version !== "number" || !Number.isSafeInteger(version) || version < 1 || signature === undefined || signature.length > 200) return "malformed";
  return { version, signature };
}

export type KeyInput = string | KeyObject;

function publicKey(key: KeyInput): KeyObject {
  return typeof key === "string" ? createPublicKey(key) : key;
}

/** Signs `content` (already canonical) as version `version` of `documentId`. */
export function signCanonical(privateKey: KeyInput, documentId: string, version: number, canonicalContent: string): string {
  const key = typeof privateKey === "string" ? createPrivateKey(privateKey) : privateKey;
  return sign("sha256", Buffer.from(statementPayloadOf(documentId, version, canonicalContent)), { key, dsaEncoding: "ieee-p1363" }).toString("base64");
}

export function verifyCanonical(key: KeyInput, documentId: string, statement: Statement, canonicalContent: string): boolean {
  try {
    // Plain bytes, no Buffer: the browser build verifies with the same code (client/browser/node-crypto.ts).
    return verify(
      "sha256",
      new TextEncoder().encode(statementPayloadOf(documentId, statement.version, canonicalContent)),
      { key: publicKey(key), dsaEncoding: "ieee-p1363" },
      Uint8Array.from(atob(statement.signature), (c) => c.charCodeAt(0)),
    );
  } catch {
    return false;
  }
}

/** Whether `doc` carries a valid service statement for `documentId`. */
export function checkStatement(key: KeyInput, documentId: string, doc: unknown): StatementCheck {
  const st = readStatement(doc);
  if (st === undefined) return { ok: false, reason: "unsigned" };
  if (st === "malformed") return { ok: false, reason: "malformed" };
  let canonical: string;
  try {
    canonical = canonicalJson(doc, STATEMENT_FIELD);
  } catch {
    return { ok: false, reason: "malformed" };
  }
  return verifyCanonical(key, documentId, st, canonical) ? { ok: true, version: st.version } : { ok: false, reason: "bad-signature" };
}
