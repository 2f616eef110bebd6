// What a decision produces. Effects carry resulting absolute values (stock level, the full
// invoice record) so projections are written as idempotent upserts by key, never increments.
import type { AllowanceState } from "./allowances.js";
import type { Booking } from "./periods.js";
import type { LedgerEntry } from "./types.js";

export type VerdictStatus = "accepted" | "rejected" | "deferred" | "invalid";

/** An invoice as projections and auditors see it (rejected sales never become one). */
export interface InvoiceRecord {
  id: string;
  total: number;
  /** Everything received: initial payment plus payments. */
  paid: number;
  /** total − paid while open; 0 once finalized or void. */
  outstanding: number;
  initialPaid: number;
  /** Money received on an invoice that was then voided, owed back to the customer. */
  refundDue: number;
  status: "open" | "finalized" | "void";
  customer: string | null;
  at: string;
  /** UTC day of `at` (YYYY-MM-DD), the key of daily summaries unless `bookedOn` is set. */
  day: string;
  device: string;
  user: string;
  /** Late: the sale's day was closed when it was decided, and it is counted in this day instead. */
  bookedOn?: string;
}

export interface PaymentRecord {
  id: string;
  invoice: string;
  amount: number;
  at: string;
  day: string;
  device: string;
  user: string;
  /** Late: the payment's day was closed when it was decided, and it is counted in this day instead. */
  bookedOn?: string;
}

export interface PurchaseRecord {
  customer: string;
  invoice: string;
  total: number;
  /** When the invoice was recorded. */
  at: string;
  /** Set when the invoice was voided after it had been finalized. */
  void: boolean;
}

export interface CreatedItem {
  id: string;
  name: string;
  price: number;
  active: boolean;
}

export type Effect =
  | { type: "stock"; entry: string; item: string; delta: number; level: number }
  | { type: "invoice"; entry: string; invoice: InvoiceRecord }
  | { type: "payment"; entry: string; payment: PaymentRecord }
  | { type: "item"; entry: string; item: CreatedItem }
  | { type: "purchase"; entry: string; purchase: PurchaseRecord }
  /** A device's allowance of an item after a grant or a sale within it (whole, not a change). */
  | { type: "allowance"; entry: string; allowance: AllowanceState };

export interface Verdict {
  id: string;
  status: VerdictStatus;
  reason?: string;
  /** Accepted despite a relaxed rule, e.g. `negative-stock:<item>` under `allow-negative`. */
  flags?: string[];
  /** The parsed entry; absent when invalid. */
  entry?: LedgerEntry;
  hash: string;
  effects: Effect[];
  /** Accepted entries decided while a close changed where their figures go (periods.ts). */
  booking?: Booking;
}

export interface Tamper {
  id: string;
  decidedHash: string;
  newHash: string;
}
