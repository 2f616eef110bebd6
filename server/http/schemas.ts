/** JSON Schemas shared by the routes' OpenAPI descriptions (2020-12, as OpenAPI 3.1 uses). */
import type { Schema } from "./route.js";

export const ErrorBody: Schema = {
  type: "object",
  required: ["error"],
  properties: {
    success: { const: false },
    message: { type: "string" },
    error: { type: "object", required: ["code", "message"], properties: { code: { type: "string" }, message: { type: "string" } } },
  },
};

export const AnyObject: Schema = { type: "object" };

export function page(row: Schema, cursor: "string" | "integer" = "string"): Schema {
  return {
    type: "object",
    required: ["rows", "nextAfter", "hasMore"],
    additionalProperties: false,
    properties: {
      team: { type: "string" },
      rows: { type: "array", items: row },
      nextAfter: cursor === "string" ? { type: ["string", "null"] } : { type: "integer", minimum: 0 },
      hasMore: { type: "boolean" },
    },
  };
}

export const errors = (...statuses: number[]): Record<number, { description: string; schema: Schema }> => {
  const text: Record<number, string> = {
    400: "invalid request",
    401: "missing, invalid or expired token",
    403: "the token may not do this",
    404: "not found",
    409: "conflict with the authoritative state",
    413: "request body too large",
    422: "idempotency key reused for another request",
    429: "too many attempts",
    503: "busy",
    504: "verdicts not ready in time",
  };
  return Object.fromEntries(statuses.map((s) => [s, { description: text[s] ?? "error", schema: ErrorBody }]));
};

const str = { type: "string" };
const strOrNull = { type: ["string", "null"] };
const int = { type: "integer" };

export const ItemRow: Schema = {
  type: "object",
  required: ["id", "name", "price", "active", "stock"],
  properties: { id: str, name: str, price: int, unit: str, group: strOrNull, description: str, active: { type: "boolean" }, source: str, stock: int },
};
export const InvoiceRow: Schema = {
  type: "object",
  required: ["id", "total", "paid", "outstanding", "status", "balance"],
  properties: {
    id: str, total: int, paid: int, outstanding: int, balance: int, initialPaid: int, refundDue: int,
    status: { enum: ["open", "finalized", "void"] }, customer: strOrNull, at: str, day: str, device: str, user: str, seq: int,
  },
};
export const PaymentRow: Schema = {
  type: "object", required: ["id", "invoice", "amount"], properties: { id: str, invoice: str, amount: int, at: str, day: str, device: str, user: str, seq: int },
};
export const PurchaseRow: Schema = {
  type: "object", required: ["customer", "invoice", "total"], properties: { customer: str, invoice: str, total: int, at: str, void: { type: "boolean" } },
};
export const BalanceRow: Schema = {
  type: "object", required: ["customer", "outstanding"], properties: { customer: str, outstanding: int, openInvoices: int, purchases: int },
};
export const SummaryRow: Schema = {
  type: "object", required: ["day"], properties: { day: str, salesCount: int, voidCount: int, revenue: int, paymentsReceived: int, outstanding: int },
};
export const RejectionRow: Schema = {
  type: "object", required: ["entryId", "reason", "seq"], properties: { entryId: str, kind: strOrNull, reason: str, seq: int, at: strOrNull, device: strOrNull, segment: str },
};
export const AllowanceRow: Schema = {
  type: "object",
  required: ["item", "device", "granted", "spent", "left", "seq"],
  properties: {
    item: str, device: str, granted: int, spent: int, left: int, seq: int,
    honoured: { type: "array", items: { type: "object", required: ["from", "to"], properties: { from: int, to: int } } },
  },
};
export const QuarantineRow: Schema = {
  type: "object", required: ["entryId", "reason", "seq"], properties: { entryId: str, reason: str, seq: int, segment: str, decidedAt: str, submitted: str },
};
export const TamperRow: Schema = {
  type: "object", required: ["entryId", "decidedHash", "newHash"], properties: { entryId: str, decidedHash: str, newHash: str, segment: str, device: strOrNull, seenAt: str },
};
export const DeferredRow: Schema = {
  type: "object",
  required: ["entryId", "entry", "hash", "since"],
  properties: { entryId: str, entry: { type: "object" }, hash: str, since: str, provenance: { type: "object" } },
};
export const JournalRow: Schema = {
  type: "object",
  required: ["_id", "team", "seq", "entryId", "status", "hash", "prevHash", "recordHash"],
  properties: {
    _id: str, team: str, seq: int, entryId: str, kind: strOrNull, status: { enum: ["accepted", "rejected", "invalid"] }, reason: strOrNull,
    flags: { type: "array", items: str }, hash: str, entry: { type: ["object", "null"] }, effects: { type: "array" },
    provenance: { type: "object" }, decidedAt: str, prevHash: str, recordHash: str, submitted: str,
  },
};

const hex64 = { type: "string", pattern: "^[0-9a-f]{64}$" };
export const CheckpointRow: Schema = {
  type: "object",
  required: ["team", "seq", "head", "at", "keyId", "sig", "source"],
  properties: { team: str, seq: int, head: hex64, at: str, keyId: hex64, sig: str, source: { enum: ["signed", "witness"] } },
};
export const CheckpointPage: Schema = {
  type: "object",
  required: ["team", "publicKey", "rows", "nextAfter", "hasMore"],
  additionalProperties: false,
  properties: {
    team: str,
    publicKey: { type: "string", description: "the service's ES256 public key (PEM) the checkpoints are signed with" },
    rows: { type: "array", items: CheckpointRow },
    nextAfter: { type: "integer", minimum: 0 },
    hasMore: { type: "boolean" },
  },
};
