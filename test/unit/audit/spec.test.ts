/**
 * docs/AUDIT.md is enough to reimplement the checks: its test vectors hold under a second
 * implementation written from the document (test/helpers/independent-audit.ts), and the
 * service's own code gives the same values, so the document and the service cannot drift apart.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { checkpointMessage as serviceMessage, type Checkpoint } from "../../../shared/checkpoint.js";
import { canonicalJson, sha256Hex } from "../../../shared/domain/hash.js";
import { checkpointSignatureValid } from "../../../server/audit/signer.js";
import type { JournalRecord } from "../../../server/materializer/collections.js";
import { recordHashOf } from "../../../server/materializer/journal.js";
import * as independent from "../../helpers/independent-audit.js";

const doc = readFileSync(path.resolve(import.meta.dirname, "../../../docs/AUDIT.md"), "utf8");

function vector(name: string): string {
  const m = new RegExp("```\\w+ test-vector=" + name + "\\n([\\s\\S]*?)\\n```").exec(doc);
  if (!m) throw new Error(`docs/AUDIT.md has no test vector ${name}`);
  return m[1]!;
}

describe("docs/AUDIT.md test vectors", () => {
  it("canonical form and SHA-256", () => {
    const input = JSON.parse(vector("canonical-input")) as unknown;
    expect(independent.canonical(input)).toBe(vector("canonical-output"));
    expect(independent.sha256(vector("canonical-output"))).toBe(vector("canonical-sha256"));
    expect(canonicalJson(input)).toBe(vector("canonical-output"));
  });

  it("the three-record chain verifies, and the service computes the same hashes", () => {
    const rows = JSON.parse(vector("chain")) as Record<string, unknown>[];
    expect(rows).toHaveLength(3);
    expect(independent.checkChain(rows)).toEqual([]);
    for (const row of rows) {
      const { recordHash, ...rest } = row as unknown as JournalRecord;
      expect(recordHashOf(rest)).toBe(recordHash);
    }
    expect(sha256Hex(`invalid\n${String(rows[2]!.reason)}`)).toBe(rows[2]!.hash);
    // One changed character anywhere is seen.
    const changed = rows.map((r, i) => (i === 1 ? { ...r, decidedAt: "2026-11-20T11:00:02.000Z" } : r));
    expect(independent.checkChain(changed)).toEqual(["seq 2: recordHash does not match"]);
  });

  it("the checkpoint's message and signature", () => {
    const pub = vector("checkpoint-public-key");
    const cp = JSON.parse(vector("checkpoint")) as Checkpoint;
    const rows = JSON.parse(vector("chain")) as { seq: number; recordHash: string }[];
    expect(cp.head).toBe(rows.find((r) => r.seq === cp.seq)!.recordHash);
    expect(independent.keyId(pub)).toBe(cp.keyId);
    expect(independent.checkpointMessage(cp)).toBe(vector("checkpoint-message"));
    expect(serviceMessage(cp)).toBe(vector("checkpoint-message"));
    expect(independent.checkpointValid(cp, pub)).toBe(true);
    expect(checkpointSignatureValid(cp, pub)).toBe(true);
    expect(independent.checkpointValid({ ...cp, seq: cp.seq + 1 }, pub)).toBe(false);
    expect(checkpointSignatureValid({ ...cp, head: cp.head.replace(/^./, (c) => (c === "0" ? "1" : "0")) }, pub)).toBe(false);
  });
});
