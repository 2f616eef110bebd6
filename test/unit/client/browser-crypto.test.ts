/**
 * The browser's ES256 verifier (client/browser/node-crypto.ts, what the till's bundle uses in
 * place of node:crypto) agrees with Node's on the service's own statements: same answers for
 * genuine, altered, high-S and malformed signatures, and the same PEM keys.
 */
import { generateKeyPairSync, sign as nodeSign } from "node:crypto";
import fc from "fast-check";
import { p256 } from "@noble/curves/nist";
import { describe, expect, it } from "vitest";
import { createPublicKey, verify } from "../../../client/browser/node-crypto.js";
import { canonicalJson, signCanonical } from "../../../shared/statement.js";

const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
const pem = publicKey.export({ type: "spki", format: "pem" }).toString();
const key = createPublicKey(pem);
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const sig = (data: string): Uint8Array => new Uint8Array(nodeSign("sha256", bytes(data), { key: privateKey, dsaEncoding: "ieee-p1363" }));

describe("browser ES256 verification", () => {
  it("accepts what Node signs and refuses any other message or key", () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), (a, b) => {
        const s = sig(a);
        expect(verify("sha256", bytes(a), { key, dsaEncoding: "ieee-p1363" }, s)).toBe(true);
        if (a !== b) expect(verify("sha256", bytes(b), { key, dsaEncoding: "ieee-p1363" }, s)).toBe(false);
      }),
      { numRuns: 50 },
    );
    const other = createPublicKey(generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({ type: "spki", format: "pem" }).toString());
    expect(verify("sha256", bytes("x"), { key: other, dsaEncoding: "ieee-p1363" }, sig("x"))).toBe(false);
  });

  it("accepts the high-S twin of a signature, as Node does", () => {
    const s = sig("status v7");
    const parsed = p256.Signature.fromCompact(s);
    const twin = new p256.Signature(parsed.r, p256.CURVE.n - parsed.s).toCompactRawBytes();
    const both = [s, twin].map((x) => verify("sha256", bytes("status v7"), { key, dsaEncoding: "ieee-p1363" }, x));
    expect(both).toEqual([true, true]);
  });

  it("refuses truncated, empty and garbage signatures without throwing", () => {
    const s = sig("m");
    for (const bad of [s.slice(0, 63), new Uint8Array(0), new Uint8Array(64), new Uint8Array(64).fill(255)]) {
      expect(verify("sha256", bytes("m"), { key, dsaEncoding: "ieee-p1363" }, bad)).toBe(false);
    }
  });

  it("refuses keys that are not P-256 SPKI PEMs", () => {
    const rsa = generateKeyPairSync("rsa", { modulusLength: 1024 }).publicKey.export({ type: "spki", format: "pem" }).toString();
    expect(() => createPublicKey(rsa)).toThrow(/P-256/);
    expect(() => createPublicKey("-----BEGIN PUBLIC KEY-----\n!!!\n-----END PUBLIC KEY-----")).toThrow(/PEM/);
  });

  it("checks a server statement signed by shared/statement.ts", () => {
    const content = canonicalJson({ type: "status", seq: 3 });
    const signature = signCanonical(privateKey, "doc1", 3, content);
    const payload = `${JSON.stringify(["ledger-sync/statement/v1", "doc1", 3])}\n${content}`;
    const raw = Uint8Array.from(atob(signature), (c) => c.charCodeAt(0));
    expect(verify("sha256", bytes(payload), { key, dsaEncoding: "ieee-p1363" }, raw)).toBe(true);
  });
});
