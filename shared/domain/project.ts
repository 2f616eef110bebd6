// Folding verdict effects into read models: the server's MongoDB projections and a device's
// provisional view share this code so both show the same figures.
import { decideBatch, type BatchInput } from "./decide.js";
import type { CreatedItem, Effect, InvoiceRecord, PaymentRecord, PurchaseRecord, Verdict } from "./effects.js";
import { getOwn, putOwn, type IdRecord } from "./records.js";
import type { TeamSettings } from "./settings.js";
import type { LedgerState } from "./state.js";

export interface DailySummary {
  /** Invoices of the day that are not void. */
  salesCount: number;
  /** Σ total of those invoices. */
  revenue: number;
  /** Money received on the day: initial payments of its invoices (void or not) plus payments. */
  paymentsReceived: number;
  /** Σ outstanding of the day's open invoices. */
  outstanding: number;
}

export interface Projection {
  items: IdRecord<CreatedItem>;
  stock: IdRecord<number>;
  invoices: IdRecord<InvoiceRecord>;
  payments: IdRecord<PaymentRecord>;
  /** Keyed by invoice id: one purchase-history record per finalized invoice with a customer. */
  purchases: IdRecord<PurchaseRecord>;
  /** Σ outstanding of the customer's open invoices. */
  customerBalances: IdRecord<number>;
  /** Keyed by UTC day (YYYY-MM-DD) of the entry's `at`. */
  daily: IdRecord<DailySummary>;
}

export function emptyProjection(): Projection {
  return { items: {}, stock: {}, invoices: {}, payments: {}, purchases: {}, customerBalances: {}, daily: {} };
}

function daily(p: Projection, day: string): DailySummary {
  let d = getOwn(p.daily, day);
  if (d === undefined) {
    d = { salesCount: 0, revenue: 0, paymentsReceived: 0, outstanding: 0 };
    putOwn(p.daily, day, d);
  }
  return d;
}

/**
 * Derived figures move by the difference between an invoice's old and new record, so applying
 * the same record twice changes nothing: replays after a crash are harmless.
 */
function applyInvoice(p: Projection, inv: InvoiceRecord, sign: 1 | -1): void {
  const d = daily(p, inv.day);
  const open = inv.status === "open" ? inv.outstanding : 0;
  if (inv.status !== "void") {
    d.salesCount += sign;
    d.revenue += sign * inv.total;
  }
  d.outstanding += sign * open;
  d.paymentsReceived += sign * inv.initialPaid;
  if (inv.customer !== null) {
    putOwn(p.customerBalances, inv.customer, (getOwn(p.customerBalances, inv.customer) ?? 0) + sign * open);
  }
}

/** Applies one effect in place. */
function applyEffect(p: Projection, e: Effect): void {
  switch (e.type) {
    case "stock":
      putOwn(p.stock, e.item, e.level);
      break;
    case "item":
      putOwn(p.items, e.item.id, { ...e.item });
      break;
    case "invoice": {
      const old = getOwn(p.invoices, e.invoice.id);
      if (old !== undefined) applyInvoice(p, old, -1);
      putOwn(p.invoices, e.invoice.id, { ...e.invoice });
      applyInvoice(p, e.invoice, 1);
      break;
    }
    case "payment": {
      const old = getOwn(p.payments, e.payment.id);
      if (old !== undefined) daily(p, old.day).paymentsReceived -= old.amount;
      putOwn(p.payments, e.payment.id, { ...e.payment });
      daily(p, e.payment.day).paymentsReceived += e.payment.amount;
      break;
    }
    case "purchase":
      putOwn(p.purchases, e.purchase.invoice, { ...e.purchase });
      break;
  }
}

/** A new projection with `effects` applied in order; the input is not changed. */
export function foldEffects(projection: Projection, effects: readonly Effect[]): Projection {
  const p = structuredClone(projection);
  for (const e of effects) applyEffect(p, e);
  return p;
}

/** All effects of verdicts, in verdict order. */
export function effectsOf(verdicts: readonly Verdict[]): Effect[] {
  return verdicts.flatMap((v) => v.effects);
}

export interface ProvisionalView {
  projection: Projection;
  /** Tentative verdicts: the server may still decide otherwise. */
  verdicts: Verdict[];
  state: LedgerState;
}

/**
 * What a device shows until the server has decided its entries: the authoritative figures plus
 * its own undecided entries decided tentatively against the authoritative state.
 */
export function provisionalView(
  authoritative: { state: LedgerState; projection: Projection },
  ownUndecided: readonly BatchInput[],
  settings: TeamSettings,
  now: string,
): ProvisionalView {
  const result = decideBatch(authoritative.state, ownUndecided, settings, now);
  return {
    projection: foldEffects(authoritative.projection, effectsOf(result.verdicts)),
    verdicts: result.verdicts,
    state: result.state,
  };
}
