/**
 * Daily summaries and customer balances as pure functions of their parts (AggregatePartsDoc):
 * the latest figures of each invoice, payment and purchase by id. Merging replaces by id, so
 * merging the same records twice is the same as once.
 */
import type {
  AggregateParts, CustomerBalanceDoc, DailySummaryDoc, InvoiceDoc, InvoicePart, PaymentDoc, PurchaseDoc,
} from "./collections.js";
import { teamKey } from "./collections.js";

/** What one range of journal records changed, by `_id`, with its final values in the range. */
export interface Touched {
  invoices: ReadonlyMap<string, InvoiceDoc>;
  payments: ReadonlyMap<string, PaymentDoc>;
  purchases: ReadonlyMap<string, PurchaseDoc>;
}

export interface PartsUpdate {
  invoices: Map<string, InvoicePart>;
  payments: Map<string, number>;
  /** Invoice id → whether its purchase is now void. */
  purchases: Map<string, boolean>;
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
  for (const inv of touched.invoices.values()) {
    const part: InvoicePart = { id: inv.id, status: inv.status, total: inv.total, outstanding: inv.outstanding, initialPaid: inv.initialPaid };
    of(days, inv.day).invoices.set(inv.id, part);
    if (inv.customer !== null) of(customers, inv.customer).invoices.set(inv.id, part);
  }
  for (const p of touched.payments.values()) of(days, p.day).payments.set(p.id, p.amount);
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
  return {
    invoices: keep.sort(byId),
    payments: [...payments].map(([id, amount]) => ({ id, amount })).sort(byId),
    purchases: [...purchases].sort(),
  };
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
