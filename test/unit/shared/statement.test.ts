/**
 * Server statements: the canonical form does not depend on key order or on how a string is
 * stored, and a signature holds only for the same content, document and version.
 */
import { generateKeyPairSync } from "node:crypto";
import * as A from "@automerge/automerge";
import { describe, expect, it } from "vitest";
import { canonicalJson, checkStatement, signCanonical, STATEMENT_FIELD } from "../../../shared/statement.js";

const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
const other = generateKeyPairSync("ec", { namedCurve: "P-256" });

function signed(docId: string, version: number, content: Record<string, unknown>, key = privateKey): Record<string, unknown> {
  return { ...content, [STATEMENT_FIELD]: { version, signature: signCanonical(key, docId, version, canonicalJson(content)) } };
}

describe("canonicalJson", () => {
  it("sorts keys at every depth and skips the statement at the top only", () => {
    expect(canonicalJson({ b: 1, a: { d: [2, "x"], c: null } })).toBe('{"a":{"c":null,"d":[2,"x"]},"b":1}');
    expect(canonicalJson({ statement: 1, a: { statement: 2 } }, STATEMENT_FIELD)).toBe('{"a":{"statement":2}}');
  });

  it("writes an immutable string like text, on an Automerge document as on plain values", () => {
    const doc = A.from<Record<string, unknown>>({ v: { status: new A.ImmutableString("accepted"), seq: 3 } });
    expect(canonicalJson(doc)).toBe(canonicalJson({ v: { seq: 3, status: "accepted" } }));
  });

  it("refuses values JSON cannot carry", () => {
    expect(() => canonicalJson({ n: Number.NaN })).toThrow(/non-finite/);
  });
});

describe("checkStatement", () => {
  const content = { type: "status", team: "t", seq: 4, stock: { tea: 7 } };

  it("accepts the signed content and reports its version", () => {
    expect(checkStatement(publicKey, "doc1", signed("doc1", 4, content))).toEqual({ ok: true, version: 4 });
  });

  it("refuses changed content, another document, another version, another key", () => {
    const good = signed("doc1", 4, content);
    expect(checkStatement(publicKey, "doc1", { ...good, stock: { tea: 70 } })).toEqual({ ok: false, reason: "bad-signature" });
    expect(checkStatement(publicKey, "doc2", good)).toEqual({ ok: false, reason: "bad-signature" });
    const st = good[STATEMENT_FIELD] as { version: number; signature: string };
    expect(checkStatement(publicKey, "doc1", { ...good, [STATEMENT_FIELD]: { ...st, version: 5 } })).toEqual({ ok: false, reason: "bad-signature" });
    expect(checkStatement(publicKey, "doc1", signed("doc1", 4, content, other.privateKey))).toEqual({ ok: false, reason: "bad-signature" });
  });

  it("tells unsigned from malformed", () => {
    expect(checkStatement(publicKey, "doc1", content)).toEqual({ ok: false, reason: "unsigned" });
    expect(checkStatement(publicKey, "doc1", { ...content, [STATEMENT_FIELD]: { version: "1", signature: "x" } })).toEqual({ ok: false, reason: "malformed" });
    expect(checkStatement(publicKey, "doc1", { ...content, [STATEMENT_FIELD]: { version: 1, signature: "!!" } })).toEqual({ ok: false, reason: "bad-signature" });
  });
});
