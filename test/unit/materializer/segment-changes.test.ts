/**
 * The journal's provenance names the Automerge change that wrote each entry. segmentDelta finds it
 * from op ids and change metadata; the reference below decodes every change, as the first version
 * did, and the two must agree for any history: several actors (a segment carried by two tablets),
 * entries overwritten, nested edits, and any decided heads.
 */
import * as A from "@automerge/automerge";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { segmentDelta } from "../../../server/materializer/segment-changes.js";

type Seg = { entries: Record<string, { n: number; note?: string }> };

/**
 * Entry key → the change that wrote the value the document shows, found the slow way: the winner
 * among the key's conflicting op ids is the greatest (counter, then actor), and its change is the
 * decoded change holding that op.
 */
function referenceOrigin(doc: A.Doc<Seg>, since: string[]): Map<string, { change: string; actor: string }> {
  const opAt = new Map<string, { change: string; actor: string }>();
  for (const raw of A.getChangesSince(doc, since)) {
    const change = A.decodeChange(raw);
    change.ops.forEach((_, i) => opAt.set(`${change.startOp + i}@${change.actor}`, { change: change.hash, actor: change.actor }));
  }
  const out = new Map<string, { change: string; actor: string }>();
  for (const key of Object.keys(doc.entries)) {
    // One value: no conflicts object; the value (a map here) is named by the op that made it.
    const conflicts = A.getConflicts(doc.entries as unknown as A.Doc<unknown>, key);
    const ids = conflicts ? Object.keys(conflicts) : [A.getObjectId(doc.entries[key])!];
    const lamport = (id: string): [number, string] => [Number(id.split("@")[0]), id.split("@")[1]!];
    const winner = ids.sort((x, y) => {
      const [a, aa] = lamport(x);
      const [b, bb] = lamport(y);
      return a - b || aa.localeCompare(bb);
    }).at(-1);
    const found = winner === undefined ? undefined : opAt.get(winner);
    if (found) out.set(key, found);
  }
  return out;
}

type Step = { actor: number; op: "put" | "overwrite" | "nested"; key: number } | { sync: true };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ actor: fc.nat(1), op: fc.constantFrom("put" as const, "overwrite" as const, "nested" as const), key: fc.nat(6) }) },
  { weight: 1, arbitrary: fc.constant({ sync: true as const }) },
);

/** Two replicas of one segment, each writing and now and then merging; returns them merged. */
function play(steps: readonly Step[], cut: number): { doc: A.Doc<Seg>; decided: string[] } {
  const base = A.from<Seg>({ entries: {} }, { actor: "aa".repeat(16) });
  let replicas = [base, A.clone(base, { actor: "bb".repeat(16) })];
  let decided: string[] = [];
  steps.forEach((s, i) => {
    if (i === cut) decided = A.getHeads(A.merge(A.clone(replicas[0]!), replicas[1]!));
    if ("sync" in s) {
      replicas = [A.merge(replicas[0]!, replicas[1]!), A.merge(replicas[1]!, replicas[0]!)];
      return;
    }
    const key = `e${s.key}`;
    replicas[s.actor] = A.change(replicas[s.actor]!, (d) => {
      const cur = d.entries[key];
      if (s.op === "nested" && cur) cur.note = `edit ${i}`;
      else if (s.op === "put" && cur) return;
      else d.entries[key] = { n: i };
    });
  });
  return { doc: A.merge(replicas[0]!, replicas[1]!), decided };
}

describe("segmentDelta", () => {
  it("names the change and actor that wrote each entry, and only entries changed since the decided heads", () => {
    let doc = A.from<Seg>({ entries: {} }, { actor: "01".repeat(16) });
    doc = A.change(doc, (d) => { d.entries.a = { n: 1 }; });
    doc = A.change(doc, (d) => { d.entries.b = { n: 2 }; });
    const decided = A.getHeads(doc);
    doc = A.change(doc, (d) => { d.entries.c = { n: 3 }; });
    doc = A.change(doc, (d) => { d.entries.a!.note = "fixed"; });
    const hashes = A.getAllChanges(doc).map((c) => A.decodeChange(c).hash);

    const all = segmentDelta(doc, undefined);
    expect(all.keys.sort()).toEqual(["a", "b", "c"]);
    expect(all.origin.get("b")).toEqual({ change: hashes[2], actor: "01".repeat(16) });
    expect(all.heads).toEqual(A.getHeads(doc));

    const since = segmentDelta(doc, decided);
    expect(since.keys.sort()).toEqual(["a", "c"]);
    expect(since.origin.get("c")).toEqual({ change: hashes[3], actor: "01".repeat(16) });
    // Entry a's value was written before the decided heads; the later change only edits inside it.
    expect(since.origin.has("a")).toBe(false);
  });

  it("looks at every entry when the decided heads are unknown to the document", () => {
    let doc = A.from<Seg>({ entries: {} });
    doc = A.change(doc, (d) => { d.entries.x = { n: 1 }; });
    const delta = segmentDelta(doc, ["ab".repeat(32)]);
    expect(delta.keys).toEqual(["x"]);
    expect(delta.origin.get("x")?.change).toBe(A.getHeads(doc)[0]);
  });

  it("agrees with decoding every change, for any history of two writers and any decided heads", () => {
    fc.assert(
      fc.property(fc.array(stepArb, { minLength: 1, maxLength: 25 }), fc.nat(25), (steps, cut) => {
        const { doc, decided } = play(steps, Math.min(cut, steps.length));
        const delta = segmentDelta(doc, decided);
        const reference = referenceOrigin(doc, decided);
        for (const key of delta.keys) expect(delta.origin.get(key), key).toEqual(reference.get(key));
        // Every entry written since the decided heads is looked at.
        for (const key of reference.keys()) expect(delta.keys).toContain(key);
      }),
      { numRuns: 200 },
    );
  });
});
