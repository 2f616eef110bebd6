// The authoritative state decisions are made against. Plain JSON so the server can store it in
// MongoDB piecewise and load only the keys a batch touches (see keysTouched).
import type { AllowanceState } from "./allowances.js";
import type { InvoiceRecord, VerdictStatus } from "./effects.js";
import { getOwn, putOwn, type IdRecord } from "./records.js";
import type { Item, LedgerEntry, PaymentEntry, VoidEntry } from "./types.js";

export interface ItemState {
  name: string;
  price: number;
  active: boolean;
}

export type InvoiceStatus = "open" | "finalized" | "void" | "rejected";

export interface InvoiceState {
  total: number;
  paid: number;
  initialPaid: number;
  refundDue: number;
  status: InvoiceStatus;
  customer: string | null;
  at: string;
  day: string;
  device: string;
  user: string;
  /** Quantities taken from stock, per item; a void puts them back. */
  lines: { item: string; quantity: number }[];
  /** The day whose summary counts it, when not its own (a late sale, periods.ts). */
  bookedOn?: string;
}

export interface DecidedState {
  hash: string;
  /** `deferred` until the entry's invoice arrives or its wait expires. */
  status: VerdictStatus;
}

export interface DeferredState {
  entry: PaymentEntry | VoidEntry;
  hash: string;
  /** `now` of the batch that deferred it. */
  since: string;
}

export interface LedgerState {
  items: IdRecord<ItemState>;
  stock: IdRecord<number>;
  invoices: IdRecord<InvoiceState>;
  decided: IdRecord<DecidedState>;
  deferred: IdRecord<DeferredState>;
  /**
   * Offline allowances by `${item}/${device}` (allowances.ts), every device's for each item the
   * batch touches: the reservation of an item is their sum. Absent: none.
   */
  allowances?: IdRecord<AllowanceState>;
}

export function emptyState(): LedgerState {
  return { items: {}, stock: {}, invoices: {}, decided: {}, deferred: {} };
}

/** Catalog items are edited in the catalog document; the ledger needs their price and flag. */
export function withCatalogItems(state: LedgerState, items: readonly Item[]): LedgerState {
  const next: LedgerState = { ...state, items: { ...state.items } };
  for (const item of items) putOwn(next.items, item.id, { name: item.name, price: item.price, active: item.active });
  return next;
}

export interface TouchedKeys {
  /** Entry ids: their `decided` records are needed to skip or detect tampering. */
  entries: string[];
  /** Items whose catalog record and stock level are needed. */
  items: string[];
  /** Invoices referred to, and sales that may resolve deferred entries. */
  invoices: string[];
  /** Customers whose balances the batch may change. */
  customers: string[];
}

/**
 * The state keys a batch can read or write, so the server loads only those. Voids restore the
 * stock of the items in their invoice's lines, which are known only once the invoice is loaded:
 * pass the loaded invoices to widen items and customers accordingly. `deferred` is read whole:
 * it holds only entries still waiting, a small set.
 */
export function keysTouched(
  entries: readonly LedgerEntry[],
  invoices: Readonly<IdRecord<InvoiceState>> = {},
): TouchedKeys {
  const ids = new Set<string>();
  const items = new Set<string>();
  const invoiceIds = new Set<string>();
  const customers = new Set<string>();
  for (const e of entries) {
    ids.add(e.id);
    switch (e.kind) {
      case "sale":
        invoiceIds.add(e.id);
        for (const line of e.lines) items.add(line.item);
        if (e.customer !== null) customers.add(e.customer);
        break;
      case "payment":
      case "void":
        invoiceIds.add(e.invoice);
        break;
      case "stock":
      case "allowance":
        items.add(e.item);
        break;
    }
  }
  for (const id of invoiceIds) {
    const inv = getOwn(invoices, id);
    if (inv === undefined) continue;
    for (const line of inv.lines) items.add(line.item);
    if (inv.customer !== null) customers.add(inv.customer);
  }
  const sorted = (s: Set<string>): string[] => [...s].sort();
  return { entries: sorted(ids), items: sorted(items), invoices: sorted(invoiceIds), customers: sorted(customers) };
}

/** The projection view of an invoice; undefined for rejected sales, which are not invoices. */
export function invoiceRecord(id: string, inv: InvoiceState): InvoiceRecord | undefined {
  if (inv.status === "rejected") return undefined;
  const record: InvoiceRecord = {
    id,
    total: inv.total,
    paid: inv.paid,
    outstanding: inv.status === "open" ? inv.total - inv.paid : 0,
    initialPaid: inv.initialPaid,
    refundDue: inv.refundDue,
    status: inv.status,
    customer: inv.customer,
    at: inv.at,
    day: inv.day,
    device: inv.device,
    user: inv.user,
  };
  if (inv.bookedOn !== undefined) record.bookedOn = inv.bookedOn;
  return record;
}
