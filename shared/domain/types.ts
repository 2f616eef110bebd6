// Catalog and ledger entry shapes shared by devices and the server.
// Money is integer minor units (cents); quantities are positive integers of the item's unit.

export interface Item {
  id: string;
  name: string;
  price: number;
  unit: string;
  group: string | null;
  description: string;
  active: boolean;
}

export interface Group {
  id: string;
  name: string;
}

export interface Customer {
  id: string;
  name: string;
  phone: string | null;
}

interface EntryBase {
  id: string;
  /** Device clock, ISO 8601 in UTC (`Z`), as `Date.prototype.toISOString` writes it. */
  at: string;
  device: string;
  user: string;
  /**
   * An atomic group: entries of one segment with the same `batch` are decided as one unit, all
   * accepted or all rejected (the classic gateway's all-or-nothing batches). `batchSize` is how
   * many entries the group has, so a group that did not arrive whole is refused, not half done.
   */
  batch?: string;
  batchSize?: number;
}

export interface SaleLine {
  item: string;
  quantity: number;
  /** Unit price. */
  price: number;
  /** Present when the line may create the item if the ledger does not know it yet. */
  name?: string;
  /**
   * The first of the `quantity` units this line takes from the device's offline allowance of the
   * item (shared/domain/allowances.ts); absent for a sale outside any allowance.
   */
  claim?: number;
}

export interface SaleEntry extends EntryBase {
  kind: "sale";
  lines: SaleLine[];
  subtotal: number;
  tax: number;
  discount: number;
  total: number;
  customer: string | null;
  /** Initial payment, 0 if none. */
  paid: number;
}

export interface PaymentEntry extends EntryBase {
  kind: "payment";
  /** Id of a sale entry, possibly recorded on another device. */
  invoice: string;
  amount: number;
}

export interface StockEntry extends EntryBase {
  kind: "stock";
  item: string;
  /** Signed, non-zero. */
  delta: number;
  reason: string;
}

export interface VoidEntry extends EntryBase {
  kind: "void";
  invoice: string;
  reason: string;
}

/** A grant of offline allowance, written by the materializer only (shared/domain/allowances.ts). */
export interface AllowanceEntry extends EntryBase {
  kind: "allowance";
  item: string;
  /** The device the units are granted to. */
  holder: string;
  /** The device's new cumulative allowance of the item. */
  granted: number;
}

export type LedgerEntry = SaleEntry | PaymentEntry | StockEntry | VoidEntry | AllowanceEntry;
export type EntryKind = LedgerEntry["kind"];

/** Entries that refer to an invoice and must wait for it when it has not arrived yet. */
export type InvoiceReferenceEntry = PaymentEntry | VoidEntry;
