/**
 * Daily summaries and customer balances from their parts: however the journal is cut into ranges,
 * and whatever ranges a crash makes the materializer apply again, the figures are those of the
 * final invoices, payments and purchases.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { AggregateParts, InvoiceDoc, PaymentDoc, PurchaseDoc } from "../../../server/materializer/collections.js";
import { customerBalance, daySummary, mergeParts, partsUpdates, type Touched } from "../../../server/materializer/aggregates.js";

const TEAM = "t";
const DAYS = ["2026-01-05", "2026-01-06"];
const dayOf = (id: number): string => DAYS[id % 2]!;
const customerOf = (id: number): string | null => (id % 3 === 0 ? null : `c${id % 3}`);

type Event =
  | { type: "invoice"; id: number; status: InvoiceDoc["status"]; total: number; outstanding: number; initialPaid: number }
  | { type: "payment"; id: number; amount: number }
  | { type: "purchase"; id: number; void: boolean };

const eventArb: fc.Arbitrary<Event> = fc.oneof(
  fc.record({
    type: fc.constant("invoice" as const), id: fc.nat(5), status: fc.constantFrom("open", "finalized", "void") as fc.Arbitrary<InvoiceDoc["status"]>,
    total: fc.nat(10_000), outstanding: fc.nat(10_000), initialPaid: fc.nat(10_000),
  }),
  fc.record({ type: fc.constant("payment" as const), id: fc.nat(5), amount: fc.integer({ min: 1, max: 10_000 }) }),
  fc.record({ type: fc.constant("purchase" as const), id: fc.nat(5), void: fc.boolean() }).filter((e) => customerOf(e.id) !== null),
);

function touchedBy(events: readonly Event[]): Touched {
  const invoices = new Map<string, InvoiceDoc>();
  const payments = new Map<string, PaymentDoc>();
  const purchases = new Map<string, PurchaseDoc>();
  for (const e of events) {
    const id = `i${e.id}`;
    if (e.type === "invoice") {
      invoices.set(id, {
        _id: `${TEAM}:${id}`, team: TEAM, id, total: e.total, paid: 0, outstanding: e.outstanding, initialPaid: e.initialPaid, refundDue: 0,
        status: e.status, customer: customerOf(e.id), at: `${dayOf(e.id)}T10:00:00.000Z`, day: dayOf(e.id), device: "d", user: "u", lines: [], seq: 0,
      });
    } else if (e.type === "payment") {
      payments.set(`p${e.id}`, { _id: `${TEAM}:p${e.id}`, team: TEAM, id: `p${e.id}`, invoice: id, amount: e.amount, at: "", day: dayOf(e.id + 1), device: "d", user: "u", seq: 0 });
    } else {
      purchases.set(id, { _id: `${TEAM}:${id}`, team: TEAM, customer: customerOf(e.id)!, invoice: id, total: 1, at: "", void: e.void, seq: 0 });
    }
  }
  return { invoices, payments, purchases };
}

/** Applies one range to the stored parts, as recomputeAggregates does. */
function apply(store: Map<string, AggregateParts>, touched: Touched): void {
  const { days, customers } = partsUpdates(touched);
  for (const [day, u] of days) store.set(`day:${day}`, mergeParts(store.get(`day:${day}`), u, "day"));
  for (const [c, u] of customers) store.set(`customer:${c}`, mergeParts(store.get(`customer:${c}`), u, "customer"));
}

function figures(store: Map<string, AggregateParts>): unknown {
  const out: Record<string, unknown> = {};
  for (const [key, parts] of [...store].sort(([a], [b]) => a.localeCompare(b))) {
    const [kind, name] = key.split(":") as [string, string];
    const { _id: _ignored, ...figure } = kind === "day" ? daySummary(TEAM, name, parts) : customerBalance(TEAM, name, parts);
    out[key] = figure;
  }
  return out;
}

/** The figures computed straight from each invoice's, payment's and purchase's last version. */
function expected(events: readonly Event[]): unknown {
  const all = touchedBy(events);
  const out: Record<string, Record<string, number | string>> = {};
  const day = (d: string): Record<string, number | string> =>
    (out[`day:${d}`] ??= { team: TEAM, day: d, salesCount: 0, voidCount: 0, revenue: 0, paymentsReceived: 0, outstanding: 0 });
  const cust = (c: string): Record<string, number | string> =>
    (out[`customer:${c}`] ??= { team: TEAM, customer: c, outstanding: 0, openInvoices: 0, purchases: 0 });
  const add = (o: Record<string, number | string>, k: string, v: number): void => void (o[k] = (o[k] as number) + v);
  for (const inv of all.invoices.values()) {
    const d = day(inv.day);
    add(d, "paymentsReceived", inv.initialPaid);
    if (inv.status === "void") add(d, "voidCount", 1);
    else {
      add(d, "salesCount", 1);
      add(d, "revenue", inv.total);
      add(d, "outstanding", inv.outstanding);
    }
    if (inv.customer !== null) {
      const c = cust(inv.customer);
      if (inv.status === "open") {
        add(c, "outstanding", inv.outstanding);
        add(c, "openInvoices", 1);
      }
    }
  }
  for (const p of all.payments.values()) add(day(p.day), "paymentsReceived", p.amount);
  for (const p of all.purchases.values()) add(cust(p.customer), "purchases", p.void ? 0 : 1);
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
}

describe("aggregate parts", () => {
  it("give the figures of the final records, and the same stored parts, for any cut into ranges and any ranges applied again", () => {
    fc.assert(
      fc.property(
        fc.array(eventArb, { minLength: 1, maxLength: 40 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        fc.array(fc.tuple(fc.nat(), fc.nat()), { maxLength: 4 }),
        (events, cutSeeds, replaySeeds) => {
          const cuts = [...new Set(cutSeeds.map((s) => s % events.length))].sort((a, b) => a - b);
          const ranges: Event[][] = [];
          let from = 0;
          for (const cut of [...cuts, events.length]) {
            if (cut > from) ranges.push(events.slice(from, cut));
            from = Math.max(from, cut);
          }
          const store = new Map<string, AggregateParts>();
          for (let k = 0; k < ranges.length; k++) {
            apply(store, touchedBy(ranges[k]!));
            // A crash after range k: the materializer applies ranges j..k again, in order.
            for (const [a, b] of replaySeeds) {
              if (a % ranges.length !== k) continue;
              for (let j = b % (k + 1); j <= k; j++) apply(store, touchedBy(ranges[j]!));
            }
          }
          expect(figures(store)).toEqual(expected(events));
          // And the stored parts themselves, byte for byte, whatever the cut: a crash must not
          // leave a document that differs from an uninterrupted run's.
          const once = new Map<string, AggregateParts>();
          apply(once, touchedBy(events));
          const stored = (m: Map<string, AggregateParts>): string => JSON.stringify([...m].sort(([a], [b]) => a.localeCompare(b)));
          expect(stored(store)).toBe(stored(once));
        },
      ),
      { numRuns: 500 },
    );
  });

  it("keep only a customer's open invoices and purchases that are not void", () => {
    const store = new Map<string, AggregateParts>();
    apply(store, touchedBy([
      { type: "invoice", id: 1, status: "open", total: 500, outstanding: 500, initialPaid: 0 },
      { type: "purchase", id: 1, void: false },
    ]));
    expect(store.get("customer:c1")).toMatchObject({ invoices: [{ id: "i1", outstanding: 500 }], purchases: ["i1"] });
    apply(store, touchedBy([
      { type: "invoice", id: 1, status: "void", total: 500, outstanding: 0, initialPaid: 0 },
      { type: "purchase", id: 1, void: true },
    ]));
    expect(store.get("customer:c1")).toMatchObject({ invoices: [], purchases: [] });
    expect(customerBalance(TEAM, "c1", store.get("customer:c1")!)).toMatchObject({ outstanding: 0, openInvoices: 0, purchases: 0 });
  });
});
