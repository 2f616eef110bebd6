/**
 * Atomic groups (`batch`/`batchSize`): the classic gateway's all-or-nothing batches decided by
 * the materializer as one unit, whatever else the batch holds and whatever order it arrives in.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DEFAULT_SETTINGS, decideBatch, entryHash, parseEntry, type BatchInput, type LedgerState } from "../../../shared/domain/index.js";
import { AT, NOW, item, payment, sale, stateWith, stock } from "./fixtures.js";

const RUNS = { numRuns: 500 };
const LATER = "2025-01-12T10:00:01.000Z";

function grouped(raw: Record<string, unknown>, batch: string, size: number, scope = "gw-seg"): BatchInput {
  return { key: String(raw.id), raw: { ...raw, batch, batchSize: size }, scope };
}

function plain(raw: Record<string, unknown>, scope = "dev-seg"): BatchInput {
  return { key: String(raw.id), raw, scope };
}

function statusOf(r: ReturnType<typeof decideBatch>): Record<string, string> {
  return Object.fromEntries(r.verdicts.map((v) => [v.id, v.status]));
}

/** An older open invoice (total 100) and one unit of `last` in stock. */
function shop(): LedgerState {
  const s = decideBatch(stateWith([item("last"), item("bulk")], { last: 1, bulk: 10 }), [plain(sale("old-inv", [{ item: "bulk", quantity: 1, price: 100 }]))], DEFAULT_SETTINGS, NOW).state;
  expect(s.invoices["old-inv"]?.status).toBe("open");
  return s;
}

describe("atomic groups", () => {
  it("a device's earlier sale of the last unit refuses the whole gateway batch, the payment on an older invoice included", () => {
    const r = decideBatch(shop(), [
      plain(sale("dev-sale", [{ item: "last", quantity: 1, price: 100 }])),
      grouped({ ...sale("gw-sale", [{ item: "last", quantity: 1, price: 100 }]), at: LATER }, "b1", 2),
      grouped(payment("gw-pay", "old-inv", 10, LATER), "b1", 2),
    ], DEFAULT_SETTINGS, NOW);
    expect(statusOf(r)).toEqual({ "dev-sale": "accepted", "gw-sale": "rejected", "gw-pay": "rejected" });
    const reasons = Object.fromEntries(r.verdicts.map((v) => [v.id, v.reason]));
    expect(reasons["gw-sale"]).toBe("insufficient stock for item last: requested 1, available 0");
    expect(reasons["gw-pay"]).toBe("batch b1 refused: entry gw-sale: insufficient stock for item last: requested 1, available 0");
    expect(r.state.invoices["old-inv"]?.paid).toBe(0);
    expect(r.verdicts.find((v) => v.id === "gw-pay")?.effects).toEqual([]);
  });

  it("a failing later member undoes the earlier accepted ones: stock, invoices, payments", () => {
    const r = decideBatch(shop(), [
      grouped(sale("gw-a", [{ item: "bulk", quantity: 3, price: 100 }]), "b2", 3),
      grouped(payment("gw-pay", "old-inv", 40, LATER), "b2", 3),
      grouped(payment("gw-over", "gw-a", 301, "2025-01-12T10:00:02.000Z"), "b2", 3),
    ], DEFAULT_SETTINGS, NOW);
    expect(statusOf(r)).toEqual({ "gw-a": "rejected", "gw-pay": "rejected", "gw-over": "rejected" });
    expect(r.verdicts.find((v) => v.id === "gw-over")?.reason).toBe("Payment exceeds outstanding balance");
    expect(r.state.stock.bulk).toBe(9);
    expect(r.state.invoices["old-inv"]?.paid).toBe(0);
    expect(r.state.invoices["gw-a"]?.status).toBe("rejected");
  });

  it("accepted as a whole, later members decided against the state earlier ones leave", () => {
    const r = decideBatch(shop(), [
      grouped(stock("gw-in", "last", 4), "b3", 3),
      grouped({ ...sale("gw-s", [{ item: "last", quantity: 5, price: 10 }]), at: LATER }, "b3", 3),
      grouped(payment("gw-p", "gw-s", 50, "2025-01-12T10:00:02.000Z"), "b3", 3),
    ], DEFAULT_SETTINGS, NOW);
    expect(statusOf(r)).toEqual({ "gw-in": "accepted", "gw-s": "accepted", "gw-p": "accepted" });
    expect(r.state.stock.last).toBe(0);
    expect(r.state.invoices["gw-s"]?.status).toBe("finalized");
  });

  it("a payment whose invoice is unknown refuses its group instead of waiting", () => {
    const r = decideBatch(shop(), [
      grouped(stock("gw-in", "last", 4), "b4", 2),
      grouped(payment("gw-p", "nowhere", 5), "b4", 2),
    ], DEFAULT_SETTINGS, NOW);
    expect(statusOf(r)).toEqual({ "gw-in": "rejected", "gw-p": "rejected" });
    expect(r.verdicts.find((v) => v.id === "gw-p")?.reason).toBe("Invoice not found for payment: nowhere");
    expect(r.state.stock.last).toBe(1);
    expect(Object.keys(r.state.deferred)).toEqual([]);
  });

  it("a group that did not arrive whole is refused whole", () => {
    const r = decideBatch(shop(), [grouped(stock("gw-in", "last", 4), "b5", 2)], DEFAULT_SETTINGS, NOW);
    expect(statusOf(r)).toEqual({ "gw-in": "rejected" });
    expect(r.verdicts[0]?.reason).toBe("batch b5 refused: 1 of 2 entries arrived together");
    // Its other member arriving later is refused too: the group stays all or nothing.
    const later = decideBatch(r.state, [grouped(payment("gw-p", "old-inv", 5), "b5", 2)], DEFAULT_SETTINGS, NOW);
    expect(statusOf(later)).toEqual({ "gw-p": "rejected" });
    expect(later.state.invoices["old-inv"]?.paid).toBe(0);
  });

  it("groups are scoped to where entries were read from: another writer naming the same batch cannot sink it", () => {
    const r = decideBatch(shop(), [
      grouped(stock("gw-in", "last", 4), "b6", 1, "gw-seg"),
      grouped(stock("dev-bad", "last", -100), "b6", 1, "dev-seg"),
    ], DEFAULT_SETTINGS, NOW);
    expect(statusOf(r)).toEqual({ "gw-in": "accepted", "dev-bad": "rejected" });
  });

  it("a group member decided earlier (a crash between journal writes) leads the rest", () => {
    const members = [grouped(stock("gw-in", "last", 4), "b7", 2), grouped(payment("gw-p", "old-inv", 5), "b7", 2)];
    const parsed = parseEntry("gw-in", members[0]!.raw);
    if (!parsed.ok) throw new Error(parsed.reason);
    // Only gw-in reached the journal before the crash; the segment's delta comes again whole.
    const journaled = (status: "accepted" | "rejected"): LedgerState => {
      const s = structuredClone(shop());
      s.decided["gw-in"] = { hash: entryHash(parsed.entry), status };
      if (status === "accepted") s.stock.last = 5;
      return s;
    };
    const accepted = decideBatch(journaled("accepted"), members, DEFAULT_SETTINGS, NOW);
    expect(statusOf(accepted)).toEqual({ "gw-p": "accepted" });
    expect(accepted.tampered).toEqual([]);
    const refused = decideBatch(journaled("rejected"), members, DEFAULT_SETTINGS, NOW);
    expect(statusOf(refused)).toEqual({ "gw-p": "rejected" });
    expect(refused.verdicts[0]?.reason).toBe("batch b7 refused: part of it was refused before");
    expect(refused.state.invoices["old-inv"]?.paid).toBe(0);
  });

  it("validates the fields strictly", () => {
    const raw = payment("p1", "inv", 5);
    expect(parseEntry("p1", { ...raw, batch: "b" })).toEqual({ ok: false, reason: "entry p1: batchSize is required" });
    expect(parseEntry("p1", { ...raw, batchSize: 2 })).toMatchObject({ ok: false, reason: expect.stringContaining("batch is required") });
    expect(parseEntry("p1", { ...raw, batch: "b", batchSize: 0 })).toMatchObject({ ok: false });
    expect(parseEntry("p1", { ...raw, batch: "b", batchSize: 1.5 })).toMatchObject({ ok: false });
    expect(parseEntry("p1", { ...raw, batch: "../x", batchSize: 2 })).toMatchObject({ ok: false });
    expect(parseEntry("p1", { ...raw, batch: "b", batchSize: 2 })).toMatchObject({ ok: true, entry: { batch: "b", batchSize: 2 } });
  });
});

// Properties over random batches: a random subset of entries forms one gateway group.
const ITEMS = ["i1", "i2"];
type Spec =
  | { kind: "sale"; item: number; quantity: number; paid: boolean }
  | { kind: "payment"; invoice: number; amount: number }
  | { kind: "stock"; item: number; delta: number };
const specArb: fc.Arbitrary<Spec> = fc.oneof(
  fc.record({ kind: fc.constant("sale" as const), item: fc.nat(1), quantity: fc.integer({ min: 1, max: 4 }), paid: fc.boolean() }),
  fc.record({ kind: fc.constant("payment" as const), invoice: fc.nat(12), amount: fc.integer({ min: 1, max: 150 }) }),
  fc.record({ kind: fc.constant("stock" as const), item: fc.nat(1), delta: fc.integer({ min: -4, max: 5 }).filter((d) => d !== 0) }),
);
const caseArb = fc.array(fc.record({ spec: specArb, at: fc.nat(5), member: fc.boolean() }), { minLength: 1, maxLength: 16 }).map((specs) => {
  const ids = specs.map((_, i) => `e${String(i).padStart(2, "0")}`);
  const saleIds = ids.filter((_, i) => specs[i]!.spec.kind === "sale");
  const members = new Set(ids.filter((_, i) => specs[i]!.member));
  const raws = specs.map(({ spec, at }, i) => {
    const base = { id: ids[i]!, at: `2025-01-12T10:00:0${at}.000Z`, device: "d", user: "u" };
    switch (spec.kind) {
      case "sale": {
        const total = spec.quantity * 30;
        return { ...base, kind: "sale", lines: [{ item: ITEMS[spec.item]!, quantity: spec.quantity, price: 30 }], subtotal: total, tax: 0, discount: 0, total, customer: null, paid: spec.paid ? 30 : 0 };
      }
      case "payment":
        return { ...base, kind: "payment", invoice: saleIds[spec.invoice % Math.max(1, saleIds.length)] ?? "old", amount: spec.amount };
      case "stock":
        return { ...base, kind: "stock", item: ITEMS[spec.item]!, delta: spec.delta, reason: "count" };
    }
  });
  const inputs: BatchInput[] = raws.map((raw) => (members.has(raw.id) ? grouped(raw, "g", members.size) : plain(raw)));
  return { inputs, members };
});
const levelsArb = fc.record({ i1: fc.nat(6), i2: fc.nat(6) });
const start = (levels: Record<string, number>): LedgerState => {
  const s = stateWith(ITEMS.map((id) => item(id)), levels);
  return decideBatch(s, [plain({ ...sale("old", [{ item: "i1", quantity: 0 + 1, price: 100 }]), at: AT })], DEFAULT_SETTINGS, NOW).state;
};

describe("atomic group properties", () => {
  it("every member gets the same verdict: all accepted or all rejected", () => {
    fc.assert(fc.property(levelsArb, caseArb, (levels, { inputs, members }) => {
      const r = decideBatch(start(levels), inputs, DEFAULT_SETTINGS, NOW);
      const statuses = new Set(r.verdicts.filter((v) => members.has(v.id)).map((v) => v.status));
      expect(statuses.size).toBeLessThanOrEqual(1);
      expect([...statuses].every((s) => s === "accepted" || s === "rejected")).toBe(true);
    }), RUNS);
  });

  it("gives the same verdicts and state whatever order the batch arrives in", () => {
    const arb = caseArb.chain((c) => fc.tuple(fc.constant(c), fc.shuffledSubarray(c.inputs, { minLength: c.inputs.length, maxLength: c.inputs.length })));
    fc.assert(fc.property(levelsArb, arb, (levels, [{ inputs }, shuffled]) => {
      expect(decideBatch(start(levels), shuffled, DEFAULT_SETTINGS, NOW)).toEqual(decideBatch(start(levels), inputs, DEFAULT_SETTINGS, NOW));
    }), RUNS);
  });

  it("a refused group leaves stock and every other invoice as if it had never been sent", () => {
    fc.assert(fc.property(levelsArb, caseArb, (levels, { inputs, members }) => {
      // Entries outside the group that refer to the group's sales would wait for them when the group is left out.
      const memberSales = new Set(inputs.filter((b) => members.has(b.key) && (b.raw as { kind: string }).kind === "sale").map((b) => b.key));
      const others = inputs.filter((b) => !members.has(b.key) && !memberSales.has(String((b.raw as { invoice?: string }).invoice)));
      const kept = inputs.filter((b) => members.has(b.key) || others.includes(b));
      const withGroup = decideBatch(start(levels), kept, DEFAULT_SETTINGS, NOW);
      if (withGroup.verdicts.every((v) => !members.has(v.id) || v.status === "accepted")) return;
      const without = decideBatch(start(levels), others, DEFAULT_SETTINGS, NOW);
      expect(withGroup.state.stock).toEqual(without.state.stock);
      const open = (s: LedgerState): Record<string, unknown> => Object.fromEntries(Object.entries(s.invoices).filter(([id]) => !memberSales.has(id)));
      expect(open(withGroup.state)).toEqual(open(without.state));
      expect(withGroup.verdicts.filter((v) => !members.has(v.id))).toEqual(without.verdicts);
    }), RUNS);
  });
});
