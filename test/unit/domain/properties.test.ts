import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  DEFAULT_SETTINGS,
  atMillis,
  decideBatch,
  effectsOf,
  emptyProjection,
  foldEffects,
  type BatchInput,
  type Effect,
  type LedgerState,
  type Projection,
  type Verdict,
} from "../../../shared/domain/index.js";
import { NOW, item, stateWith } from "./fixtures.js";

const RUNS = { numRuns: 1000 };
const ITEMS = ["i1", "i2", "i3"];
const TIMES = ["2025-01-12T10:00:00.000Z", "2025-01-12T10:00:00Z", "2025-01-12T11:30:00.250Z", "2025-01-13T08:00:00.000Z"];

type Spec =
  | { kind: "sale"; lines: { item: number; quantity: number; price: number; named: boolean }[]; tax: number; discount: number; paidShare: number; customer: number | null; wrongTotal: boolean }
  | { kind: "payment"; invoice: number; amount: number }
  | { kind: "stock"; item: number; delta: number }
  | { kind: "void"; invoice: number }
  | { kind: "junk" };

const specArb: fc.Arbitrary<Spec> = fc.oneof(
  { weight: 4, arbitrary: fc.record({
    kind: fc.constant("sale" as const),
    lines: fc.array(fc.record({ item: fc.nat(3), quantity: fc.integer({ min: 1, max: 5 }), price: fc.integer({ min: 0, max: 100 }), named: fc.boolean() }), { minLength: 1, maxLength: 3 }),
    tax: fc.integer({ min: 0, max: 20 }),
    discount: fc.integer({ min: 0, max: 20 }),
    paidShare: fc.integer({ min: 0, max: 4 }),
    customer: fc.option(fc.nat(2)),
    wrongTotal: fc.boolean(),
  }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("payment" as const), invoice: fc.nat(30), amount: fc.integer({ min: -5, max: 400 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("stock" as const), item: fc.nat(2), delta: fc.integer({ min: -8, max: 10 }).filter((d) => d !== 0) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("void" as const), invoice: fc.nat(30) }) },
  { weight: 1, arbitrary: fc.constant({ kind: "junk" as const }) },
);

/** Turns specs into raw entries with ids fixed before any shuffling. */
function build(specs: { spec: Spec; at: number }[]): BatchInput[] {
  const saleIds = specs.flatMap(({ spec }, i) => (spec.kind === "sale" ? [`e${String(i).padStart(2, "0")}`] : []));
  // Mostly a sale of the batch (wherever it sorts), sometimes an invoice that never arrives.
  const invoiceRef = (n: number): string => (n < 24 && saleIds.length > 0 ? saleIds[n % saleIds.length] ?? "x" : `missing-${n}`);
  return specs.map(({ spec, at }, i) => {
    const id = `e${String(i).padStart(2, "0")}`;
    const base = { id, at: TIMES[at] ?? TIMES[0], device: "d", user: "u" };
    switch (spec.kind) {
      case "sale": {
        const lines = spec.lines.map((l) => {
          const itemId = l.item < ITEMS.length ? ITEMS[l.item] ?? "i1" : `n-${id}`;
          return l.named ? { item: itemId, quantity: l.quantity, price: l.price, name: "Thing" } : { item: itemId, quantity: l.quantity, price: l.price };
        });
        const subtotal = lines.reduce((s, l) => s + l.quantity * l.price, 0);
        const total = subtotal + spec.tax - spec.discount + (spec.wrongTotal && subtotal % 7 === 0 ? 1 : 0);
        const paid = Math.max(0, Math.floor((total * spec.paidShare) / 3));
        return { key: id, raw: { ...base, kind: "sale", lines, subtotal, tax: spec.tax, discount: spec.discount, total, customer: spec.customer === null ? null : `c${spec.customer}`, paid } };
      }
      case "payment":
        return { key: id, raw: { ...base, kind: "payment", invoice: invoiceRef(spec.invoice), amount: spec.amount } };
      case "stock":
        return { key: id, raw: { ...base, kind: "stock", item: ITEMS[spec.item], delta: spec.delta, reason: "count" } };
      case "void":
        return { key: id, raw: { ...base, kind: "void", invoice: invoiceRef(spec.invoice), reason: "oops" } };
      case "junk":
        return { key: id, raw: { ...base, kind: "stock", item: "i1", delta: 0.5, reason: "bad" } };
    }
  });
}

const batchArb = fc.array(fc.record({ spec: specArb, at: fc.nat(TIMES.length - 1) }), { maxLength: 25 }).map(build);
const levelsArb = fc.tuple(fc.nat(15), fc.nat(15), fc.nat(15)).map(([a, b, c]) => ({ i1: a, i2: b, i3: c }));

function start(levels: Record<string, number>): LedgerState {
  return stateWith(ITEMS.map((id, i) => item(id, { active: i !== 2 || levels.i3 !== 0 })), levels);
}

function finalVerdicts(verdicts: readonly Verdict[]): Map<string, Verdict> {
  return new Map(verdicts.map((v) => [v.id, v]));
}

describe("decision properties", () => {
  it("stock never goes below zero under the default policy", () => {
    fc.assert(fc.property(levelsArb, batchArb, (levels, batch) => {
      const r = decideBatch(start(levels), batch, DEFAULT_SETTINGS, NOW);
      for (const level of Object.values(r.state.stock)) expect(level).toBeGreaterThanOrEqual(0);
      for (const e of effectsOf(r.verdicts)) if (e.type === "stock") expect(e.level).toBeGreaterThanOrEqual(0);
    }), RUNS);
  });

  it("no invoice's payments exceed its total", () => {
    fc.assert(fc.property(levelsArb, batchArb, (levels, batch) => {
      const r = decideBatch(start(levels), batch, DEFAULT_SETTINGS, NOW);
      const received = new Map<string, number>();
      for (const [id, inv] of Object.entries(r.state.invoices)) {
        // A rejected sale keeps its stated figures only to explain later rejections.
        if (inv.status === "rejected") continue;
        expect(inv.paid).toBeLessThanOrEqual(inv.total);
        expect(inv.paid).toBeGreaterThanOrEqual(0);
        received.set(id, inv.initialPaid);
      }
      for (const e of effectsOf(r.verdicts)) {
        if (e.type !== "payment") continue;
        received.set(e.payment.invoice, (received.get(e.payment.invoice) ?? 0) + e.payment.amount);
      }
      for (const [id, sum] of received) expect(sum).toBeLessThanOrEqual(r.state.invoices[id]?.total ?? -1);
    }), RUNS);
  });

  it("gives the same verdicts and state whatever order the batch arrives in", () => {
    const arb = batchArb.chain((batch) => fc.tuple(fc.constant(batch), fc.shuffledSubarray(batch, { minLength: batch.length, maxLength: batch.length })));
    fc.assert(fc.property(levelsArb, arb, (levels, [batch, shuffled]) => {
      const a = decideBatch(start(levels), batch, DEFAULT_SETTINGS, NOW);
      const b = decideBatch(start(levels), shuffled, DEFAULT_SETTINGS, NOW);
      expect(b).toEqual(a);
    }), RUNS);
  });

  it("deciding an already-decided batch again changes nothing", () => {
    fc.assert(fc.property(levelsArb, batchArb, (levels, batch) => {
      const first = decideBatch(start(levels), batch, DEFAULT_SETTINGS, NOW);
      const again = decideBatch(first.state, batch, DEFAULT_SETTINGS, NOW);
      expect(again.verdicts).toEqual([]);
      expect(again.tampered).toEqual([]);
      expect(again.state).toEqual(first.state);
    }), RUNS);
  });

  it("splitting a batch in sorted order into two consecutive batches gives the same final verdicts", () => {
    fc.assert(fc.property(levelsArb, batchArb, fc.nat(25), (levels, batch, cut) => {
      const sorted = [...batch].sort((x, y) => {
        const ax = x.raw as { at: string }, ay = y.raw as { at: string };
        return atMillis(ax.at) - atMillis(ay.at) || (x.key < y.key ? -1 : x.key > y.key ? 1 : 0);
      });
      // Invalid entries are decided first in canonical order but touch no state, so a cut
      // that leaves some in the second part changes no other verdict.
      const k = Math.min(cut, sorted.length);
      const whole = decideBatch(start(levels), sorted, DEFAULT_SETTINGS, NOW);
      const one = decideBatch(start(levels), sorted.slice(0, k), DEFAULT_SETTINGS, NOW);
      const two = decideBatch(one.state, sorted.slice(k), DEFAULT_SETTINGS, NOW);
      expect(finalVerdicts([...one.verdicts, ...two.verdicts])).toEqual(finalVerdicts(whole.verdicts));
      expect(two.state).toEqual(whole.state);
    }), RUNS);
  });
});

describe("projection properties", () => {
  function rebuild(effects: readonly Effect[]): Projection {
    // Oracle: keep the last record per key, then derive balances and summaries from records.
    const p = emptyProjection();
    for (const e of effects) {
      if (e.type === "stock") p.stock[e.item] = e.level;
      if (e.type === "invoice") p.invoices[e.invoice.id] = e.invoice;
      if (e.type === "payment") p.payments[e.payment.id] = e.payment;
      if (e.type === "purchase") p.purchases[e.purchase.invoice] = e.purchase;
      if (e.type === "item") p.items[e.item.id] = e.item;
    }
    const day = (d: string) => (p.daily[d] ??= { salesCount: 0, revenue: 0, paymentsReceived: 0, outstanding: 0 });
    for (const inv of Object.values(p.invoices)) {
      const d = day(inv.day);
      if (inv.status !== "void") { d.salesCount += 1; d.revenue += inv.total; }
      if (inv.status === "open") d.outstanding += inv.outstanding;
      d.paymentsReceived += inv.initialPaid;
      if (inv.customer !== null) p.customerBalances[inv.customer] = (p.customerBalances[inv.customer] ?? 0) + (inv.status === "open" ? inv.outstanding : 0);
    }
    for (const pay of Object.values(p.payments)) day(pay.day).paymentsReceived += pay.amount;
    return p;
  }

  it("folding effects one by one equals folding them all at once, equals a rebuild from records", () => {
    fc.assert(fc.property(levelsArb, batchArb, fc.nat(25), (levels, batch, cut) => {
      const r1 = decideBatch(start(levels), batch.slice(0, cut), DEFAULT_SETTINGS, NOW);
      const r2 = decideBatch(r1.state, batch.slice(cut), DEFAULT_SETTINGS, NOW);
      const effects = [...effectsOf(r1.verdicts), ...effectsOf(r2.verdicts)];
      const all = foldEffects(emptyProjection(), effects);
      const stepwise = effects.reduce((p, e) => foldEffects(p, [e]), emptyProjection());
      expect(stepwise).toEqual(all);
      expect(foldEffects(all, effects)).toEqual(all);
      const oracle = rebuild(effects);
      expect(all.stock).toEqual(oracle.stock);
      expect(all.invoices).toEqual(oracle.invoices);
      expect(all.customerBalances).toEqual(oracle.customerBalances);
      for (const [d, summary] of Object.entries(oracle.daily)) expect(all.daily[d]).toEqual(summary);
    }), RUNS);
  });
});
