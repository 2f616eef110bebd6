/**
 * The classic `/api/sync` payload, decoded and checked before anything else happens. Shape
 * errors answer with the reference document's messages (`Item create at index 0 is missing
 * name/price`); money is integer minor units, as everywhere in this service.
 */
import { MAX_MONEY, MAX_NAME_LENGTH, MAX_PHONE_LENGTH, MAX_QUANTITY, MAX_TEXT_LENGTH, MAX_UNIT_LENGTH, isId } from "../../shared/domain/index.js";
import { isObject } from "../http/route.js";
import { invalid } from "./errors.js";

/** Operations in one request; a bigger offline queue is sent in several requests. */
export const MAX_OPERATIONS = 1000;

export interface ItemCreateOp {
  name: string;
  price: number;
  stock: number;
  unit: string;
  groupId: string | null;
  description: string;
}

export interface ItemUpdateOp {
  id: string;
  name?: string;
  price?: number;
  unit?: string;
  groupId?: string | null;
  description?: string;
  /** Absolute stock wanted; the gateway records the difference as a stock entry. */
  stock?: number;
}

export interface ProductOp {
  productId?: string;
  itemName?: string;
  costPerUnit?: number;
  quantity: number;
  itemGroup?: string;
}

export interface InvoiceCreateOp {
  products: ProductOp[];
  clientCustomerId?: string;
  clientCustomerName?: string;
  clientCustomerPhone?: string;
  invoiceNumber?: string;
  invoiceDate?: string;
  dueDate?: string;
  subtotal?: number;
  totalTax: number;
  totalDiscount: number;
  totalAmount?: number;
  paidAmount: number;
  notes?: string;
}

export interface PaymentCreateOp {
  invoiceId: string;
  amount: number;
  method: string;
  note?: string;
  paidAt?: string;
}

export interface SyncPayload {
  itemCreate: ItemCreateOp[];
  itemUpdate: ItemUpdateOp[];
  itemDelete: string[];
  invoiceCreate: InvoiceCreateOp[];
  paymentCreate: PaymentCreateOp[];
}

function section(body: Record<string, unknown>, name: string, ops: readonly string[]): Record<string, unknown[]> {
  const raw = body[name];
  const out: Record<string, unknown[]> = {};
  for (const op of ops) out[op] = [];
  if (raw === undefined || raw === null) return out;
  if (!isObject(raw)) throw invalid(`${name} must be an object`);
  for (const key of Object.keys(raw)) {
    if (!ops.includes(key)) throw invalid(`${name}.${key.slice(0, 40)} is not a supported operation`);
    const list = raw[key];
    if (list === undefined || list === null) continue;
    if (!Array.isArray(list)) throw invalid(`${name}.${key} must be an array`);
    out[key] = list;
  }
  return out;
}

function has(o: Record<string, unknown>, k: string): boolean {
  return o[k] !== undefined && o[k] !== null;
}

function money(v: unknown, what: string): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || Math.abs(v) > MAX_MONEY) {
    throw invalid(`${what} must be an integer of minor units (at most ${MAX_MONEY})`);
  }
  return v === 0 ? 0 : v;
}

function text(v: unknown, what: string, max: number, allowEmpty = true): string {
  if (typeof v !== "string" || v.length > max || (!allowEmpty && v.length === 0)) {
    throw invalid(`${what} must be a ${allowEmpty ? "" : "non-empty "}string of at most ${max} characters`);
  }
  return v;
}

function id(v: unknown, what: string): string {
  if (!isId(v)) throw invalid(`${what} must be an id`);
  return v as string;
}

function optional<T>(o: Record<string, unknown>, k: string, read: (v: unknown) => T): T | undefined {
  return has(o, k) ? read(o[k]) : undefined;
}

function stockLevel(v: unknown, what: string): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0 || v > 1_000_000_000) throw invalid(`${what} must be a non-negative integer`);
  return v;
}

function itemCreate(raw: unknown, i: number): ItemCreateOp {
  if (!isObject(raw) || !has(raw, "name") || !has(raw, "price")) throw invalid(`Item create at index ${i} is missing name/price`);
  const at = `Item create at index ${i}:`;
  const price = money(raw.price, `${at} price`);
  if (price < 0) throw invalid(`${at} price must not be negative`);
  return {
    name: text(raw.name, `${at} name`, MAX_NAME_LENGTH, false),
    price,
    stock: optional(raw, "stock", (v) => stockLevel(v, `${at} stock`)) ?? 0,
    unit: optional(raw, "unit", (v) => text(v, `${at} unit`, MAX_UNIT_LENGTH, false)) ?? "nos",
    groupId: optional(raw, "groupId", (v) => id(v, `${at} groupId`)) ?? null,
    description: optional(raw, "description", (v) => text(v, `${at} description`, MAX_TEXT_LENGTH)) ?? "",
  };
}

function itemUpdate(raw: unknown, i: number): ItemUpdateOp {
  if (!isObject(raw) || !has(raw, "_id")) throw invalid(`Item update at index ${i} is missing _id`);
  const at = `Item update at index ${i}:`;
  const op: ItemUpdateOp = { id: id(raw._id, `${at} _id`) };
  if (has(raw, "name")) op.name = text(raw.name, `${at} name`, MAX_NAME_LENGTH, false);
  if (has(raw, "price")) {
    op.price = money(raw.price, `${at} price`);
    if (op.price < 0) throw invalid(`${at} price must not be negative`);
  }
  if (has(raw, "unit")) op.unit = text(raw.unit, `${at} unit`, MAX_UNIT_LENGTH, false);
  if (raw.groupId === null) op.groupId = null;
  else if (has(raw, "groupId")) op.groupId = id(raw.groupId, `${at} groupId`);
  if (has(raw, "description")) op.description = text(raw.description, `${at} description`, MAX_TEXT_LENGTH);
  if (has(raw, "stock")) op.stock = stockLevel(raw.stock, `${at} stock`);
  return op;
}

function product(raw: unknown, j: number): ProductOp {
  if (!isObject(raw)) throw invalid(`Invoice product at index ${j} must be an object`);
  const q = raw.quantity;
  if (typeof q !== "number" || !Number.isFinite(q) || q <= 0) throw invalid(`Invoice product at index ${j} must have quantity > 0`);
  if (!Number.isSafeInteger(q) || q > MAX_QUANTITY) throw invalid(`Invoice product at index ${j} quantity must be a whole number of at most ${MAX_QUANTITY}`);
  const p: ProductOp = { quantity: q };
  if (has(raw, "productId")) p.productId = id(raw.productId, `Invoice product at index ${j} productId`);
  else if (!has(raw, "itemName") || !has(raw, "costPerUnit")) {
    throw invalid(`Invoice product at index ${j} needs productId, or itemName and costPerUnit`);
  }
  if (has(raw, "itemName")) p.itemName = text(raw.itemName, `Invoice product at index ${j} itemName`, MAX_NAME_LENGTH, false);
  if (has(raw, "costPerUnit")) {
    p.costPerUnit = money(raw.costPerUnit, `Invoice product at index ${j} costPerUnit`);
    if (p.costPerUnit < 0) throw invalid(`Invoice product at index ${j} costPerUnit must not be negative`);
  }
  if (has(raw, "itemGroup")) p.itemGroup = text(raw.itemGroup, `Invoice product at index ${j} itemGroup`, MAX_NAME_LENGTH, false);
  return p;
}

const DATE = /^\d{4}-\d{2}-\d{2}(T[0-9:.]+(Z|[+-]\d{2}:\d{2})?)?$/;

function date(v: unknown, what: string): string {
  if (typeof v !== "string" || !DATE.test(v) || Number.isNaN(Date.parse(v))) throw invalid(`${what} must be a date such as 2025-01-12`);
  return v;
}

function invoiceCreate(raw: unknown, i: number): InvoiceCreateOp {
  if (!isObject(raw) || !Array.isArray(raw.products) || raw.products.length === 0) throw invalid(`Invoice create at index ${i} missing products`);
  if (raw.products.length > 500) throw invalid(`Invoice create at index ${i} has more than 500 products`);
  const at = `Invoice create at index ${i}:`;
  const paid = has(raw, "paidAmount") ? money(raw.paidAmount, "paidAmount") : 0;
  if (paid < 0) throw invalid("Paid amount cannot be negative");
  const op: InvoiceCreateOp = {
    products: raw.products.map(product),
    totalTax: has(raw, "totalTax") ? money(raw.totalTax, `${at} totalTax`) : 0,
    totalDiscount: has(raw, "totalDiscount") ? money(raw.totalDiscount, `${at} totalDiscount`) : 0,
    paidAmount: paid,
  };
  if (op.totalTax < 0 || op.totalDiscount < 0) throw invalid(`${at} totalTax and totalDiscount must not be negative`);
  if (has(raw, "subtotal")) op.subtotal = money(raw.subtotal, `${at} subtotal`);
  if (has(raw, "totalAmount")) op.totalAmount = money(raw.totalAmount, `${at} totalAmount`);
  if (has(raw, "clientCustomerId")) op.clientCustomerId = id(raw.clientCustomerId, `${at} clientCustomerId`);
  if (has(raw, "clientCustomerName")) op.clientCustomerName = text(raw.clientCustomerName, `${at} clientCustomerName`, MAX_NAME_LENGTH, false);
  if (has(raw, "clientCustomerPhone")) op.clientCustomerPhone = text(raw.clientCustomerPhone, `${at} clientCustomerPhone`, MAX_PHONE_LENGTH, false);
  if (has(raw, "invoiceNumber")) op.invoiceNumber = text(raw.invoiceNumber, `${at} invoiceNumber`, 64, false);
  if (has(raw, "invoiceDate")) op.invoiceDate = date(raw.invoiceDate, `${at} invoiceDate`);
  if (has(raw, "dueDate")) op.dueDate = date(raw.dueDate, `${at} dueDate`);
  if (has(raw, "notes")) op.notes = text(raw.notes, `${at} notes`, MAX_TEXT_LENGTH);
  return op;
}

function paymentCreate(raw: unknown, i: number): PaymentCreateOp {
  if (!isObject(raw) || !has(raw, "invoiceId") || !has(raw, "amount")) throw invalid(`Payment create at index ${i} missing data`);
  const at = `Payment create at index ${i}:`;
  const amount = raw.amount;
  if (typeof amount !== "number" || !Number.isFinite(amount) || amount <= 0) throw invalid(`Payment create at index ${i} must have amount > 0`);
  const op: PaymentCreateOp = {
    invoiceId: text(raw.invoiceId, `${at} invoiceId`, 64, false),
    amount: money(amount, `${at} amount`),
    method: has(raw, "method") ? text(raw.method, `${at} method`, 32, false) : "cash",
  };
  if (has(raw, "note")) op.note = text(raw.note, `${at} note`, MAX_TEXT_LENGTH);
  if (has(raw, "paidAt")) op.paidAt = date(raw.paidAt, `${at} paidAt`);
  return op;
}

export function parseSyncPayload(body: Record<string, unknown>): SyncPayload {
  for (const key of Object.keys(body)) {
    if (key !== "item" && key !== "invoice" && key !== "payment") throw invalid(`unknown section ${JSON.stringify(key.slice(0, 40))}: expected item, invoice or payment`);
  }
  const item = section(body, "item", ["create", "update", "delete"]);
  const invoice = section(body, "invoice", ["create"]);
  const payment = section(body, "payment", ["create"]);
  const count = item.create!.length + item.update!.length + item.delete!.length + invoice.create!.length + payment.create!.length;
  if (count > MAX_OPERATIONS) throw invalid(`at most ${MAX_OPERATIONS} operations per sync; send the rest in another request`);
  return {
    itemCreate: item.create!.map(itemCreate),
    itemUpdate: item.update!.map(itemUpdate),
    itemDelete: item.delete!.map((v, i) => id(v, `Item delete at index ${i}`)),
    invoiceCreate: invoice.create!.map(invoiceCreate),
    paymentCreate: payment.create!.map(paymentCreate),
  };
}
