/**
 * The small pure parts of anchoring and of keeping what was submitted: when a checkpoint is due,
 * what a device accepts as one and keeps, and how a hostile submitted value is bounded.
 */
import { generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { keepCheckpoint, MAX_KEPT_CHECKPOINTS, readKeptCheckpoints } from "../../../client/checkpoints.js";
import { parseCheckpoint, type Checkpoint } from "../../../shared/checkpoint.js";
import { checkpointSignatureValid, createCheckpointSigner } from "../../../server/audit/signer.js";
import { checkpointDue } from "../../../server/materializer/anchor.js";
import { submittedText } from "../../../server/materializer/submitted.js";

const pem = (): { privateKeyPem: string; publicKeyPem: string } => {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  return { privateKeyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(), publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString() };
};
const HEAD = "a".repeat(64);

describe("checkpointDue", () => {
  const policy = { everyRecords: 100, everyMs: 60_000 };
  const at = "2026-11-20T10:00:00.000Z";
  const t = Date.parse(at);
  it("anchors a team's first records at once, and nothing for an empty journal", () => {
    expect(checkpointDue(null, { seq: 1, recordHash: HEAD }, t, policy)).toBe(true);
    expect(checkpointDue(null, { seq: 0, recordHash: "" }, t, policy)).toBe(false);
  });
  it("after N records, or M ms once the head moved; never for an unchanged head", () => {
    const last = { seq: 10, at };
    expect(checkpointDue(last, { seq: 109, recordHash: HEAD }, t + 1000, policy)).toBe(false);
    expect(checkpointDue(last, { seq: 110, recordHash: HEAD }, t + 1000, policy)).toBe(true);
    expect(checkpointDue(last, { seq: 11, recordHash: HEAD }, t + 60_000, policy)).toBe(true);
    expect(checkpointDue(last, { seq: 10, recordHash: HEAD }, t + 3_600_000, policy)).toBe(false);
  });
});

describe("signed checkpoints", () => {
  const keys = pem();
  const cp = createCheckpointSigner(keys).sign({ team: "corner", seq: 7, head: HEAD, at: "2026-11-20T10:00:00.000Z" });
  it("verify with the signing key only, and not once any field changed", () => {
    expect(checkpointSignatureValid(cp, keys.publicKeyPem)).toBe(true);
    expect(checkpointSignatureValid(cp, pem().publicKeyPem)).toBe(false);
    for (const changed of [{ seq: 8 }, { team: "other" }, { head: "b".repeat(64) }, { at: "2026-11-20T10:00:01.000Z" }]) {
      expect(checkpointSignatureValid({ ...cp, ...changed }, keys.publicKeyPem)).toBe(false);
    }
  });
  it("parse from untrusted input, with the reason for what is not one", () => {
    expect(parseCheckpoint(JSON.parse(JSON.stringify(cp)))).toEqual(cp);
    expect(parseCheckpoint({ ...cp, seq: 0 })).toBe("checkpoint: seq must be a positive integer");
    expect(parseCheckpoint({ ...cp, head: "xyz" })).toBe("checkpoint: head must be 64 hex digits");
    expect(parseCheckpoint("nope")).toBe("checkpoint: team must be a non-empty string");
  });
  it("a device keeps each new one once, the latest 64, and drops malformed stored ones", () => {
    const sign = createCheckpointSigner(keys);
    let kept: Checkpoint[] = [];
    for (let seq = 1; seq <= 70; seq++) {
      const next = sign.sign({ team: "corner", seq, head: HEAD, at: "2026-11-20T10:00:00.000Z" });
      kept = keepCheckpoint(kept, { checkpoint: next });
      expect(keepCheckpoint(kept, { checkpoint: next })).toBe(kept);
    }
    expect(kept).toHaveLength(MAX_KEPT_CHECKPOINTS);
    expect(kept.at(-1)!.seq).toBe(70);
    expect(keepCheckpoint(kept, { checkpoint: { seq: "bad" } })).toBe(kept);
    expect(readKeptCheckpoints([...kept.slice(0, 2), { junk: true }])).toEqual(kept.slice(0, 2));
  });
});

describe("submittedText", () => {
  it("keeps what was submitted as JSON text, bounded, and never throws", () => {
    expect(submittedText({ kind: "refund", $where: "1", "a.b": [1, 2] })).toBe('{"kind":"refund","$where":"1","a.b":[1,2]}');
    const big = submittedText({ lines: "x".repeat(50_000) });
    expect(big.length).toBeLessThan(4200);
    expect(big).toMatch(/…\(truncated from 50012 characters\)$/);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(submittedText(cyclic)).toMatch(/^<unreadable: /);
    const hostile = { get boom(): never { throw new Error("no"); } };
    expect(submittedText(hostile)).toBe("<unreadable: no>");
    expect(submittedText({ n: 10n, f: () => 1, nan: Number.NaN, b: new Uint8Array(3) })).toBe('{"n":"10n","f":"<function>","nan":"NaN","b":"<3 bytes>"}');
  });
});
