/**
 * What the classic API carries that ledger entries do not (invoice numbers, dates, notes,
 * payment methods): kept beside the projections in `gateway_invoices` / `gateway_payments`,
 * keyed like them (`<team>:<entry id>`), so `data` can answer in the classic shape.
 */
import type { Collection, Db } from "mongodb";

export interface InvoiceMetaDoc {
  _id: string;
  team: string;
  id: string;
  invoiceNumber: string;
  invoiceDate: string | null;
  dueDate: string | null;
  notes: string | null;
  clientCustomerName: string | null;
  clientCustomerPhone: string | null;
  products: { productId: string; itemName: string | null; costPerUnit: number; quantity: number }[];
  subtotal: number;
  totalTax: number;
  totalDiscount: number;
  createdAt: string;
}

export interface PaymentMetaDoc {
  _id: string;
  team: string;
  id: string;
  invoiceId: string;
  method: string;
  note: string | null;
  paidAt: string;
}

export interface GatewayCollections {
  invoiceMeta: Collection<InvoiceMetaDoc>;
  paymentMeta: Collection<PaymentMetaDoc>;
}

export function gatewayCollections(db: Db): GatewayCollections {
  return { invoiceMeta: db.collection("gateway_invoices"), paymentMeta: db.collection("gateway_payments") };
}

export async function ensureGatewayIndexes(g: GatewayCollections): Promise<void> {
  await g.invoiceMeta.createIndex({ team: 1, invoiceNumber: 1 }, { unique: true, name: "team_invoice_number" });
  await g.paymentMeta.createIndex({ team: 1, invoiceId: 1 }, { name: "team_invoice" });
}
