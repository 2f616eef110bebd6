import { describe, expect, it } from "vitest";
import {
  DEFAULT_SETTINGS,
  decideBatch,
  emptyState,
  entryHash,
  keysTouched,
  parseEntry,
  type LedgerEntry,
  type TeamSettings,
  type Verdict,
} from "../../../shared/domain/index.js";
import { AT, NOW, decide, item, payment, sale, stateWith, stock, voidEntry } from "./fixtures.js";

const ALLOW: TeamSettings = { ...DEFAULT_SETTINGS, oversell: "allow-negative" };

function only(verdicts: Verdict[], id: string): Verdict {
  const v = verdicts.find((x) => x.id === id);
  if (!v) throw new Error(`no verdict for ${id}`);
  return v;
}

function rejection(raws: Record<string, unknown>[], id: string, state = stateWith([item("i1"), item("i2")], { i1: 5, i2: 5 }), settings = DEFAULT_SETTINGS): string | undefined {
  const v = only(decide(state, raws, settings).verdicts, id);
  expect(v.status).toBe("rejected");
  return v.reason;
}

describe("sale", () => {
  it("is accepted, takes stock and opens an invoice", () => {
    const r = decide(stateWith([item("i1")], { i1: 5 }), [sale("s1", [{ item: "i1", quantity: 3, price: 100 }], { paid: 100 })]);
    const v = only(r.verdicts, "s1");
    expect(v.status).toBe("accepted");
    expect(v.flags).toBeUndefined();
    expect(r.state.stock.i1).toBe(2);
    expect(v.effects).toEqual([
      { type: "stock", entry: "s1", item: "i1", delta: -3, level: 2 },
      {
        type: "invoice", entry: "s1",
        invoice: { id: "s1", total: 300, paid: 100, outstanding: 200, initialPaid: 100, refundDue: 0, status: "open", customer: null, at: AT, day: "2025-01-12", device: "dev-1", user: "user-1" },
      },
    ]);
    expect(v.hash).toBe(entryHash(v.entry));
  });

  it("fully paid with a customer is finalized and yields a purchase record", () => {
    const r = decide(stateWith([item("i1")], { i1: 5 }), [sale("s1", [{ item: "i1", quantity: 1, price: 100 }], { paid: 100, customer: "c1" })]);
    const v = only(r.verdicts, "s1");
    expect(r.state.invoices.s1?.status).toBe("finalized");
    expect(v.effects.at(-1)).toEqual({ type: "purchase", entry: "s1", purchase: { customer: "c1", invoice: "s1", total: 100, at: AT, void: false } });
  });

  it("with tax and discount checks total = subtotal + tax - discount", () => {
    const r = decide(stateWith([item("i1")], { i1: 5 }), [sale("s1", [{ item: "i1", quantity: 2, price: 100 }], { tax: 30, discount: 10 })]);
    expect(r.state.invoices.s1?.total).toBe(220);
  });

  it("sums quantities of the same item over lines for the stock check", () => {
    expect(rejection([sale("s1", [{ item: "i1", quantity: 3, price: 1 }, { item: "i1", quantity: 3, price: 1 }])], "s1"))
      .toBe("insufficient stock for item i1: requested 6, available 5");
  });

  it("rejects insufficient stock with the whole sale", () => {
    const r = decide(stateWith([item("i1"), item("i2")], { i1: 5, i2: 1 }), [sale("s1", [{ item: "i1", quantity: 2, price: 1 }, { item: "i2", quantity: 3, price: 1 }])]);
    expect(only(r.verdicts, "s1")).toMatchObject({ status: "rejected", reason: "insufficient stock for item i2: requested 3, available 1", effects: [] });
    expect(r.state.stock).toEqual({ i1: 5, i2: 1 });
    expect(r.state.invoices.s1?.status).toBe("rejected");
  });

  it("treats an item with no stock record as having none", () => {
    expect(rejection([sale("s1", [{ item: "i1", quantity: 1, price: 1 }])], "s1", stateWith([item("i1")])))
      .toBe("insufficient stock for item i1: requested 1, available 0");
  });

  it("under allow-negative accepts an oversell and flags it", () => {
    const r = decide(stateWith([item("i1")], { i1: 1 }), [sale("s1", [{ item: "i1", quantity: 3, price: 1 }])], ALLOW);
    expect(only(r.verdicts, "s1")).toMatchObject({ status: "accepted", flags: ["negative-stock:i1"] });
    expect(r.state.stock.i1).toBe(-2);
  });

  it("rejects a stated subtotal that does not match the lines", () => {
    expect(rejection([sale("s1", [{ item: "i1", quantity: 2, price: 100 }], { subtotal: 150, total: 150 })], "s1"))
      .toBe("subtotal does not match lines: stated 150, computed 200");
  });

  it("rejects a stated total that does not match", () => {
    expect(rejection([sale("s1", [{ item: "i1", quantity: 2, price: 100 }], { tax: 10, total: 200 })], "s1"))
      .toBe("total does not match subtotal + tax - discount: stated 200, computed 210");
  });

  it("rejects a discount larger than subtotal plus tax", () => {
    expect(rejection([sale("s1", [{ item: "i1", quantity: 1, price: 100 }], { discount: 150, total: 0 })], "s1"))
      .toBe("discount cannot exceed subtotal plus tax: computed total -50");
  });

  it("rejects a negative initial payment (classic wording)", () => {
    expect(rejection([sale("s1", [{ item: "i1", quantity: 1, price: 100 }], { paid: -1 })], "s1")).toBe("Paid amount cannot be negative");
  });

  it("rejects an initial payment above the total (classic wording)", () => {
    expect(rejection([sale("s1", [{ item: "i1", quantity: 1, price: 100 }], { paid: 101 })], "s1")).toBe("Paid amount cannot exceed total amount");
  });

  it("rejects an inactive item", () => {
    expect(rejection([sale("s1", [{ item: "i1", quantity: 1, price: 1 }])], "s1", stateWith([item("i1", { active: false })], { i1: 5 })))
      .toBe("item i1 is not active");
  });

  it("rejects an unknown item on a line without a name", () => {
    expect(rejection([sale("s1", [{ item: "ghost", quantity: 1, price: 1 }])], "s1")).toBe("Item not found for sale: ghost");
  });

  it("creates an unknown item from a named line, without moving stock", () => {
    const r = decide(emptyState(), [sale("s1", [{ item: "new-1", quantity: 2, price: 70, name: "Tea" }, { item: "new-1", quantity: 1, price: 70 }])]);
    const v = only(r.verdicts, "s1");
    expect(v.status).toBe("accepted");
    expect(v.effects[0]).toEqual({ type: "item", entry: "s1", item: { id: "new-1", name: "Tea", price: 70, active: true } });
    expect(v.effects.filter((e) => e.type === "stock")).toEqual([]);
    expect(r.state.items["new-1"]).toEqual({ name: "Tea", price: 70, active: true });
  });

  it("a zero total with nothing paid is finalized at once", () => {
    const r = decide(stateWith([item("i1")], { i1: 1 }), [sale("s1", [{ item: "i1", quantity: 1, price: 0 }])]);
    expect(r.state.invoices.s1?.status).toBe("finalized");
  });
});

describe("payment", () => {
  const opened = () => decide(stateWith([item("i1")], { i1: 5 }), [sale("s1", [{ item: "i1", quantity: 1, price: 100 }], { customer: "c1" })]).state;

  it("is accepted and records the payment and the invoice", () => {
    const r = decide(opened(), [payment("p1", "s1", 40)]);
    const v = only(r.verdicts, "p1");
    expect(v.status).toBe("accepted");
    expect(v.effects[0]).toEqual({ type: "payment", entry: "p1", payment: { id: "p1", invoice: "s1", amount: 40, at: AT, day: "2025-01-12", device: "dev-1", user: "user-1" } });
    expect(v.effects[1]).toMatchObject({ type: "invoice", invoice: { paid: 40, outstanding: 60, status: "open" } });
  });

  it("that pays the balance finalizes the invoice with a purchase record", () => {
    const r = decide(opened(), [payment("p1", "s1", 40), payment("p2", "s1", 60, "2025-01-12T11:00:00.000Z")]);
    expect(r.state.invoices.s1).toMatchObject({ paid: 100, status: "finalized" });
    expect(only(r.verdicts, "p2").effects.at(-1)).toEqual({ type: "purchase", entry: "p2", purchase: { customer: "c1", invoice: "s1", total: 100, at: AT, void: false } });
  });

  it("rejects more than the outstanding balance (classic wording)", () => {
    expect(rejection([payment("p1", "s1", 101)], "p1", opened())).toBe("Payment exceeds outstanding balance");
  });

  it("rejects any payment on a finalized invoice", () => {
    const s = decide(opened(), [payment("p1", "s1", 100)]).state;
    expect(rejection([payment("p2", "s1", 1)], "p2", s)).toBe("Payment exceeds outstanding balance");
  });

  it("rejects a zero or negative amount", () => {
    expect(rejection([payment("p1", "s1", 0)], "p1", opened())).toBe("Payment must have amount > 0");
    expect(rejection([payment("p1", "s1", -5)], "p1", opened())).toBe("Payment must have amount > 0");
    expect(rejection([payment("p1", "unknown", 0)], "p1", opened())).toBe("Payment must have amount > 0");
  });

  it("rejects a payment on a rejected sale", () => {
    const s = decide(stateWith([item("i1")]), [sale("s1", [{ item: "i1", quantity: 1, price: 1 }])]).state;
    expect(rejection([payment("p1", "s1", 1)], "p1", s)).toBe("Invoice s1 was rejected and cannot take payments");
  });

  it("rejects a payment on a void invoice", () => {
    const s = decide(opened(), [voidEntry("v1", "s1")]).state;
    expect(rejection([payment("p1", "s1", 1)], "p1", s)).toBe("Invoice s1 is void");
  });
});

describe("deferred payments and voids", () => {
  const s0 = () => stateWith([item("i1")], { i1: 5 });

  it("a payment before its invoice is deferred, then decided right after the invoice arrives", () => {
    const r1 = decide(s0(), [payment("p1", "s1", 40)]);
    expect(only(r1.verdicts, "p1")).toMatchObject({ status: "deferred", reason: "waiting for invoice s1" });
    expect(r1.state.deferred.p1?.since).toBe(NOW);
    const r2 = decide(r1.state, [sale("s1", [{ item: "i1", quantity: 1, price: 100 }]), stock("k1", "i1", 1, "2025-01-12T10:30:00.000Z")]);
    expect(r2.verdicts.map((v) => [v.id, v.status])).toEqual([["s1", "accepted"], ["p1", "accepted"], ["k1", "accepted"]]);
    expect(r2.state.deferred).toEqual({});
    expect(r2.state.decided.p1?.status).toBe("accepted");
  });

  it("within one batch, an earlier payment waits for a later sale and reports only its final verdict", () => {
    const r = decide(s0(), [payment("p1", "s1", 40, "2025-01-12T09:00:00.000Z"), sale("s1", [{ item: "i1", quantity: 1, price: 100 }])]);
    expect(r.verdicts.map((v) => [v.id, v.status])).toEqual([["s1", "accepted"], ["p1", "accepted"]]);
  });

  it("a deferred payment whose sale is rejected is rejected", () => {
    const r1 = decide(s0(), [payment("p1", "s1", 40)]);
    const r2 = decide(r1.state, [sale("s1", [{ item: "i1", quantity: 9, price: 100 }])]);
    expect(only(r2.verdicts, "p1")).toMatchObject({ status: "rejected", reason: "Invoice s1 was rejected and cannot take payments" });
  });

  it("expires once now is past since + deferWaitSeconds (classic wording)", () => {
    const settings = { ...DEFAULT_SETTINGS, deferWaitSeconds: 60 };
    const r1 = decide(s0(), [payment("p1", "s1", 40), voidEntry("v1", "s2")], settings, "2025-01-13T00:00:00.000Z");
    const r2 = decide(r1.state, [], settings, "2025-01-13T00:01:00.000Z");
    expect(r2.verdicts).toEqual([]);
    const r3 = decide(r2.state, [], settings, "2025-01-13T00:01:00.001Z");
    expect(r3.verdicts.map((v) => [v.id, v.status, v.reason])).toEqual([
      ["p1", "rejected", "Invoice not found for payment: s1"],
      ["v1", "rejected", "Invoice not found for void: s2"],
    ]);
    expect(r3.state.deferred).toEqual({});
  });

  it("an invoice arriving in the batch that would expire its payment still rescues it", () => {
    const settings = { ...DEFAULT_SETTINGS, deferWaitSeconds: 0 };
    const r1 = decide(s0(), [payment("p1", "s1", 40)], settings, "2025-01-13T00:00:00.000Z");
    const r2 = decide(r1.state, [sale("s1", [{ item: "i1", quantity: 1, price: 100 }])], settings, "2025-01-14T00:00:00.000Z");
    expect(only(r2.verdicts, "p1").status).toBe("accepted");
  });
});

describe("stock entries", () => {
  it("a receipt adds stock", () => {
    const r = decide(emptyState(), [stock("k1", "i9", 7)]);
    expect(only(r.verdicts, "k1").effects).toEqual([{ type: "stock", entry: "k1", item: "i9", delta: 7, level: 7 }]);
  });

  it("a negative adjustment beyond stock is rejected under reject", () => {
    expect(rejection([stock("k1", "i1", -6)], "k1")).toBe("insufficient stock for item i1: requested 6, available 5");
  });

  it("a negative adjustment beyond stock is accepted and flagged under allow-negative", () => {
    const r = decide(stateWith([item("i1")], { i1: 5 }), [stock("k1", "i1", -6)], ALLOW);
    expect(only(r.verdicts, "k1")).toMatchObject({ status: "accepted", flags: ["negative-stock:i1"] });
    expect(r.state.stock.i1).toBe(-1);
  });
});

describe("void", () => {
  const sold = (paid: number) =>
    decide(stateWith([item("i1")], { i1: 5 }), [sale("s1", [{ item: "i1", quantity: 2, price: 50 }], { paid, customer: "c1" })]).state;

  it("cancels an open invoice and restores its stock", () => {
    const r = decide(sold(0), [voidEntry("v1", "s1")]);
    const v = only(r.verdicts, "v1");
    expect(v.status).toBe("accepted");
    expect(r.state.stock.i1).toBe(5);
    expect(v.effects).toEqual([
      { type: "stock", entry: "v1", item: "i1", delta: 2, level: 5 },
      { type: "invoice", entry: "v1", invoice: expect.objectContaining({ id: "s1", status: "void", outstanding: 0, refundDue: 0 }) },
    ]);
  });

  it("of a paid (finalized) invoice is accepted, records the refund due and voids the purchase record", () => {
    const r = decide(sold(100), [voidEntry("v1", "s1")]);
    const v = only(r.verdicts, "v1");
    expect(v.effects[1]).toMatchObject({ type: "invoice", invoice: { status: "void", paid: 100, refundDue: 100, outstanding: 0 } });
    expect(v.effects[2]).toEqual({ type: "purchase", entry: "v1", purchase: { customer: "c1", invoice: "s1", total: 100, at: AT, void: true } });
  });

  it("twice is rejected", () => {
    const s = decide(sold(0), [voidEntry("v1", "s1")]).state;
    expect(rejection([voidEntry("v2", "s1")], "v2", s)).toBe("Invoice s1 is already void");
  });

  it("of a rejected sale is rejected", () => {
    const s = decide(stateWith([item("i1")]), [sale("s1", [{ item: "i1", quantity: 1, price: 1 }])]).state;
    expect(rejection([voidEntry("v1", "s1")], "v1", s)).toBe("Invoice s1 was rejected and cannot be voided");
  });

  it("of an unknown invoice is deferred", () => {
    expect(only(decide(emptyState(), [voidEntry("v1", "s1")]).verdicts, "v1")).toMatchObject({ status: "deferred", reason: "waiting for invoice s1" });
  });
});

describe("decided entries, tampering and invalid entries", () => {
  const s0 = () => stateWith([item("i1")], { i1: 5 });

  it("an invalid entry gets an invalid verdict with its reason and no entry", () => {
    const r = decide(s0(), [{ ...stock("k1", "i1", 1), delta: "1" }]);
    const v = only(r.verdicts, "k1");
    expect(v).toMatchObject({ status: "invalid", reason: "entry k1: delta must be a non-zero integer between -1000000000 and 1000000000", effects: [] });
    expect(v.entry).toBeUndefined();
    expect(r.state.decided.k1?.status).toBe("invalid");
  });

  it("deciding the same batch again changes nothing", () => {
    const batch = [stock("k1", "i1", 1), sale("s1", [{ item: "i1", quantity: 1, price: 1 }]), { id: "bad" }];
    const r1 = decide(s0(), batch);
    const r2 = decide(r1.state, batch);
    expect(r2.verdicts).toEqual([]);
    expect(r2.tampered).toEqual([]);
    expect(r2.state).toEqual(r1.state);
  });

  it("a decided entry that comes back changed is a tamper and keeps the decided content", () => {
    const r1 = decide(s0(), [sale("s1", [{ item: "i1", quantity: 1, price: 100 }])]);
    const changed = sale("s1", [{ item: "i1", quantity: 1, price: 1 }]);
    const r2 = decide(r1.state, [changed]);
    const parsed = parseEntry("s1", changed);
    expect(r2.verdicts).toEqual([]);
    expect(r2.tampered).toEqual([{ id: "s1", decidedHash: r1.state.decided.s1?.hash, newHash: parsed.ok ? entryHash(parsed.entry) : "" }]);
    expect(r2.state).toEqual(r1.state);
  });

  it("a deferred entry changed while it waits is a tamper too", () => {
    const r1 = decide(s0(), [payment("p1", "s1", 40)]);
    const r2 = decide(r1.state, [payment("p1", "s1", 4000)]);
    expect(r2.tampered.map((t) => t.id)).toEqual(["p1"]);
    expect(r2.state.deferred.p1?.entry).toMatchObject({ amount: 40 });
  });

  it("two versions of one id in a batch: the first in canonical order wins, the other is a tamper", () => {
    const a = stock("k1", "i1", 1);
    const b = stock("k1", "i1", 2);
    const r1 = decide(s0(), [a, b]);
    const r2 = decide(s0(), [b, a]);
    expect(r1).toEqual(r2);
    expect(r1.verdicts).toHaveLength(1);
    expect(r1.tampered).toHaveLength(1);
  });

  it("does not mutate the input state", () => {
    const s = s0();
    const copy = structuredClone(s);
    decide(s, [sale("s1", [{ item: "i1", quantity: 1, price: 1 }]), payment("p9", "x", 1)]);
    expect(s).toEqual(copy);
  });

  it("keeps a hostile key such as __proto__ as an own record", () => {
    const r = decideBatch(emptyState(), [{ key: "__proto__", raw: {} }, { key: "constructor", raw: {} }], DEFAULT_SETTINGS, NOW);
    expect(r.verdicts.map((v) => v.status)).toEqual(["invalid", "invalid"]);
    expect(Object.getPrototypeOf(r.state.decided)).toBe(Object.prototype);
    expect(Object.keys(r.state.decided).sort()).toEqual(["__proto__", "constructor"]);
    const again = decideBatch(r.state, [{ key: "__proto__", raw: {} }, { key: "constructor", raw: {} }], DEFAULT_SETTINGS, NOW);
    expect(again.verdicts).toEqual([]);
  });

  it("ids such as 'constructor' never resolve to inherited properties", () => {
    const r = decide(emptyState(), [sale("s1", [{ item: "constructor", quantity: 1, price: 1 }]), payment("p1", "toString", 1)]);
    expect(only(r.verdicts, "s1").reason).toBe("Item not found for sale: constructor");
    expect(only(r.verdicts, "p1").status).toBe("deferred");
  });

  it("invalid entries are decided first, valid ones by (at, id)", () => {
    const r = decide(s0(), [
      stock("b", "i1", 1, "2025-01-12T10:00:00Z"),
      stock("a", "i1", 1, "2025-01-12T10:00:00.500Z"),
      stock("c", "i1", 1, "2025-01-12T09:00:00.000Z"),
      { id: "z", kind: "nope" },
    ]);
    expect(r.verdicts.map((v) => v.id)).toEqual(["z", "c", "b", "a"]);
  });
});

describe("keysTouched", () => {
  it("lists entries, items, invoices and customers a batch may read or write", () => {
    const entries = [
      sale("s1", [{ item: "i1", quantity: 1, price: 1 }, { item: "i2", quantity: 1, price: 1 }], { customer: "c1" }),
      payment("p1", "s0", 1),
      stock("k1", "i3", 1),
      voidEntry("v1", "s9"),
    ].map((raw) => {
      const p = parseEntry(String(raw.id), raw);
      if (!p.ok) throw new Error(p.reason);
      return p.entry;
    }) satisfies LedgerEntry[];
    expect(keysTouched(entries)).toEqual({ entries: ["k1", "p1", "s1", "v1"], items: ["i1", "i2", "i3"], invoices: ["s0", "s1", "s9"], customers: ["c1"] });
    const loaded = decide(stateWith([item("i7")], { i7: 3 }), [sale("s9", [{ item: "i7", quantity: 1, price: 1 }], { customer: "c2" })]).state.invoices;
    expect(keysTouched(entries, loaded)).toEqual({ entries: ["k1", "p1", "s1", "v1"], items: ["i1", "i2", "i3", "i7"], invoices: ["s0", "s1", "s9"], customers: ["c1", "c2"] });
  });
});
