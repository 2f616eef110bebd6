/**
 * Provisional figures count every undecided entry a device holds, whoever wrote it: two linked
 * tablets holding the same entries show the same stock (issue 22: 8 and 9 where 7 is right).
 */
import { describe, expect, it } from "vitest";
import { computeProvisional, undecidedEntries } from "../../../client/provisional.js";
import type { StatusView } from "../../../client/read-docs.js";
import type { PublishedVerdict } from "../../../shared/docs.js";
import { DEFAULT_SETTINGS, parseEntry, type LedgerEntry } from "../../../shared/domain/index.js";
import { item, NOW, sale } from "../domain/fixtures.js";

function entry(raw: Record<string, unknown>, device: string): LedgerEntry {
  const r = parseEntry(String(raw.id), { ...raw, device });
  if (!r.ok) throw new Error(r.reason);
  return r.entry;
}

const status: StatusView = { seq: 1, stock: new Map([["tea", 10]]), invoices: new Map(), verdicts: new Map(), activity: new Map() };
const entries = [
  entry(sale("s-a", [{ item: "tea", quantity: 2, price: 300 }]), "tab-a"),
  entry(sale("s-b", [{ item: "tea", quantity: 1, price: 300 }]), "tab-b"),
  // Decided and already in the status document's 10: not counted again.
  entry(sale("s-old", [{ item: "tea", quantity: 4, price: 300 }]), "tab-b"),
];
const verdicts = new Map<string, PublishedVerdict>([["s-old", { status: "accepted", seq: 1, decidedAt: NOW }]]);

function stockSeenBy(): number | undefined {
  const undecided = undecidedEntries(entries, (id) => verdicts.get(id));
  const p = computeProvisional({ status, items: [item("tea")], sales: new Map(), undecided, settings: DEFAULT_SETTINGS, now: NOW });
  return p.projection.stock.tea;
}

describe("provisional figures", () => {
  it("subtract every undecided sale, from any device, and no decided one", () => {
    expect(undecidedEntries(entries, (id) => verdicts.get(id)).map((e) => e.key).sort()).toEqual(["s-a", "s-b"]);
    expect(stockSeenBy()).toBe(7);
  });

  it("keep a deferred entry in the count", () => {
    const deferred = new Map<string, PublishedVerdict>([["s-a", { status: "deferred", decidedAt: NOW }]]);
    expect(undecidedEntries(entries, (id) => deferred.get(id)).map((e) => e.key).sort()).toEqual(["s-a", "s-b", "s-old"]);
  });

  it("count an entry decided after the status the device holds, until the status catches up", () => {
    // The verdict of s-a arrived (seq 2) before the status that includes it (still at seq 1).
    const early = new Map<string, PublishedVerdict>([...verdicts, ["s-a", { status: "accepted", seq: 2, decidedAt: NOW }]]);
    expect(undecidedEntries(entries, (id) => early.get(id), status.seq).map((e) => e.key).sort()).toEqual(["s-a", "s-b"]);
    expect(undecidedEntries(entries, (id) => early.get(id), 2).map((e) => e.key).sort()).toEqual(["s-b"]);
  });
});
