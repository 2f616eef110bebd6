/**
 * Daily summaries and customer balances as pure functions of their parts (AggregatePartsDoc):
 * the latest figures of each invoice, payment and purchase by id. Merging replaces by id, so
 * merging the same records twice is the same as once.
 */
import type {
  AggregateParts, BookedAdjustment, CustomerBalanceDoc, DailySummaryDoc, InvoiceDoc, InvoicePart, JournalRecord, PaymentDoc, PurchaseDoc,
} from "./collections.js";
import { teamKey } from "./collections.js";

/** What one range of journal records changed, by `_id`, with its final values in the range. */
export interface Touched {
  invoices: ReadonlyMap<string, InvoiceDoc>;
  payments: ReadonlyMap<string, PaymentDoc>;
  purchases: ReadonlyMap<string, PurchaseDoc>;
  /**
   * For daily summaries: each invoice as the last record that was not an adjustment of it left
   * it (a change to an invoice booked in a closed day never reaches that day). `invoices` when absent.
   */
  dayInvoices?: ReadonlyMap<string, InvoiceDoc>;
  /** Adjustments (periods.ts) by entry id, with the day they are booked in. */
  adjustments?: ReadonlyMap<string, { day: string; adjustment: BookedAdjustment }>;
}

export interface PartsUpdate {
  invoices: Map<string, InvoicePart>;
  payments: Map<string, number>;
  /** Invoice id → whether its purchase is now void. */
  purchases: Map<string, boolean>;
  adjustments?: Map<string, BookedAdjustment>;
}

/**
 * The invoice, payment and purchase figures that journal records (in seq order) leave, by `_id`
 * (latest wins), and what closed periods moved. The one reading of records for aggregates: the
 * materializer, the self-check and the deep verification all use it.
 */
export function touchedBy(team: string, records: Iterable<Pick<JournalRecord, "entryId" | "effects" | "seq" | "booking">>): Touched {
  const invoices = new Map<string, InvoiceDoc>();
  const dayInvoices = new Map<string, InvoiceDoc>();
  const payments = new Map<string, PaymentDoc>();
  const purchases = new Map<string, PurchaseDoc>();
  const adjustments = new Map<string, { day: string; adjustment: BookedAdjustment }>();
  for (const r of records) {
    const adjusted = new Set(r.booking?.adjustments.map((a) => a.invoice) ?? []);
    for (const a of r.booking?.adjustments ?? []) adjustments.set(`${r.entryId}:${a.invoice}`, { day: r.booking!.day, adjustment: { id: r.entryId, ...a } });
    for (const e of r.effects) {
      if (e.type === "invoice") {
        const doc: InvoiceDoc = { _id: teamKey(team, e.invoice.id), team, ...e.invoice, lines: [], seq: r.seq };
        invoices.set(doc._id, doc);
        if (!adjusted.has(e.invoice.id)) dayInvoices.set(doc._id, doc);
      } else if (e.type === "payment") payments.set(teamKey(team, e.payment.id), { _id: teamKey(team, e.payment.id), team, ...e.payment, seq: r.seq });
      else if (e.type === "purchase") purchases.set(teamKey(team, e.purchase.invoice), { _id: teamKey(team, e.purchase.invoice), team, ...e.purchase, seq: r.seq });
    }
  }
  return { invoices, payments, purchases, dayInvoices, adjustments };
}

export const dayPartsId = (team: string, day: string): string => teamKey(team, `day:${day}`);
export const customerPartsId = (team: string, customer: string): string => teamKey(team, `customer:${customer}`);

/** The changes per day and per customer that a range of records makes. */
export function partsUpdates(touched: Touched): { days: Map<string, PartsUpdate>; customers: Map<string, PartsUpdate> } {
  const days = new Map<string, PartsUpdate>();
  const customers = new Map<string, PartsUpdate>();
  const of = (m: Map<string, PartsUpdate>, key: string): PartsUpdate => {
    let u = m.get(key);
    if (!u) m.set(key, (u = { invoices: new Map(), payments: new Map(), purchases: new Map() }));
    return u;
  };
  const part = (inv: InvoiceDoc): InvoicePart => ({ id: inv.id, status: inv.status, total: inv.total, outstanding: inv.outstanding, initialPaid: inv.initialPaid });
  // A late invoice or payment counts in the day it was booked in, not its own.
  for (const inv of (touched.dayInvoices ?? touched.invoices).values()) of(days, inv.bookedOn ?? inv.day).invoices.set(inv.id, part(inv));
  for (const inv of touched.invoices.values()) if (inv.customer !== null) of(customers, inv.customer).invoices.set(inv.id, part(inv));
  for (const p of touched.payments.values()) of(days, p.bookedOn ?? p.day).payments.set(p.id, p.amount);
  for (const [key, { day, adjustment }] of touched.adjustments ?? []) {
    const u = of(days, day);
    (u.adjustments ??= new Map()).set(key, adjustment);
  }
  for (const p of touched.purchases.values()) of(customers, p.customer).purchases.set(p.invoice, p.void);
  return { days, customers };
}

/**
 * Applies an update to a parts document. A customer's parts keep only what its balance counts
 * (open invoices, purchases not void), so they stay as small as the customer's open business.
 */
export function mergeParts(old: AggregateParts | undefined, u: PartsUpdate, kind: "day" | "customer"): AggregateParts {
  const invoices = new Map((old?.invoices ?? []).map((p) => [p.id, p]));
  for (const [id, p] of u.invoices) invoices.set(id, p);
  const payments = new Map((old?.payments ?? []).map((p) => [p.id, p.amount]));
  for (const [id, amount] of u.payments) payments.set(id, amount);
  const purchases = new Set(old?.purchases ?? []);
  for (const [invoice, isVoid] of u.purchases) {
    if (isVoid) purchases.delete(invoice);
    else purchases.add(invoice);
  }
  const keep = kind === "customer" ? [...invoices.values()].filter((p) => p.status === "open") : [...invoices.values()];
  // Sorted by id, so the stored document is the same whatever order the updates came in (a
  // restart after a crash may cut the journal into other batches).
  const byId = (a: { id: string }, b: { id: string }): number => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
  const merged: AggregateParts = {
    invoices: keep.sort(byId),
    payments: [...payments].map(([id, amount]) => ({ id, amount })).sort(byId),
    purchases: [...purchases].sort(),
  };
  // Absent rather than empty, so the parts of teams that never closed a day stay as they were.
  const adjustments = new Map((old?.adjustments ?? []).map((a) => [`${a.id}:${a.invoice}`, a]));
  for (const [key, a] of u.adjustments ?? []) adjustments.set(key, a);
  if (adjustments.size > 0) {
    merged.adjustments = [...adjustments].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, a]) => a);
  }
  return merged;
}

export function daySummary(team: string, day: string, parts: AggregateParts): DailySummaryDoc {
  const s: DailySummaryDoc = { _id: teamKey(team, day), team, day, salesCount: 0, voidCount: 0, revenue: 0, paymentsReceived: 0, outstanding: 0 };
  for (const inv of parts.invoices) {
    s.paymentsReceived += inv.initialPaid;
    if (inv.status === "void") {
      s.voidCount += 1;
      continue;
    }
    s.salesCount += 1;
    s.revenue += inv.total;
    s.outstanding += inv.outstanding;
  }
  for (const p of parts.payments) s.paymentsReceived += p.amount;
  for (const a of parts.adjustments ?? []) {
    s.salesCount += a.salesCount;
    s.voidCount += a.voidCount;
    s.revenue += a.revenue;
    s.paymentsReceived += a.paymentsReceived;
    s.outstanding += a.outstanding;
  }
  return s;
}

export function customerBalance(team: string, customer: string, parts: AggregateParts): CustomerBalanceDoc {
  const b: CustomerBalanceDoc = { _id: teamKey(team, customer), team, customer, outstanding: 0, openInvoices: 0, purchases: parts.purchases.length };
  for (const inv of parts.invoices) {
    if (inv.status !== "open") continue;
    b.outstanding += inv.outstanding;
    b.openInvoices += 1;
  }
  return b;
}
