/**
 * Turns an operation's input into a ledger entry and checks it with the shared rules before
 * anything is written: shape (parseEntry) and the decision the server would take against what
 * this device knows (decideBatch). Only outcomes that depend on what other devices do
 * concurrently (stock running out) are left for the server to decide; everything else is bad
 * input and refused here.
 */
import {
  decideBatch,
  parseEntry,
  type LedgerEntry,
  type LedgerState,
  type SaleLine,
  type TeamSettings,
  type Verdict,
} from "../shared/domain/index.js";
import { invalidInput } from "./errors.js";

export interface SaleLineInput {
  item: string;
  quantity: number;
  /** Unit price in minor units; defaults to the catalog price. */
  price?: number;
  /** Lets the sale create an item the catalog does not know (legacy gateway behaviour). */
  name?: string;
  /** The first unit of the device's offline allowance this line takes (client/allowances.ts sets it). */
  claim?: number;
}

export interface SaleInput {
  lines: SaleLineInput[];
  tax?: number;
  discount?: number;
  customer?: string | null;
  /** Initial payment, minor units. */
  paid?: number;
}

export interface PaymentInput {
  invoice: string;
  amount: number;
  /** Allow a payment for an invoice this device has never seen (it is deferred on the server). */
  allowUnknownInvoice?: boolean;
}

export interface StockInput {
  item: string;
  /** Signed change: positive for a receipt, negative for a write-off. */
  delta: number;
  reason: string;
}

export interface VoidInput {
  invoice: string;
  reason: string;
  allowUnknownInvoice?: boolean;
}

export interface Actor {
  device: string;
  user: string;
}

/** What the operation is checked against. */
export interface CheckContext {
  state: LedgerState;
  settings: TeamSettings;
  /** Sale ids known anywhere in the team's ledger (decided or not). */
  knownInvoice(id: string): boolean;
  catalogPrice(item: string): number | undefined;
  now: string;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function safeInt(v: unknown, name: string): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v)) throw invalidInput(`${name} must be an integer of minor units`);
  return v;
}

/** A checked entry with its tentative verdict and the provisional state after it. */
export interface CheckedEntry {
  entry: LedgerEntry;
  verdict: Verdict;
  state: LedgerState;
}

export function buildSale(id: string, at: string, actor: Actor, input: SaleInput, ctx: CheckContext): CheckedEntry {
  if (!isObject(input)) throw invalidInput("sale must be an object");
  if (!Array.isArray(input.lines)) throw invalidInput("lines must be an array");
  const lines: SaleLine[] = input.lines.map((l: unknown, i) => {
    if (!isObject(l)) throw invalidInput(`lines[${i}] must be an object`);
    const price = l.price === undefined && typeof l.item === "string" ? ctx.catalogPrice(l.item) : l.price;
    if (price === undefined) throw invalidInput(`lines[${i}]: item ${String(l.item)} is not in the catalog; give a price and a name`);
    const line: SaleLine = { item: l.item as string, quantity: l.quantity as number, price: price as number };
    if (l.name !== undefined) line.name = l.name as string;
    if (l.claim !== undefined) line.claim = l.claim as number;
    return line;
  });
  const tax = input.tax === undefined ? 0 : safeInt(input.tax, "tax");
  const discount = input.discount === undefined ? 0 : safeInt(input.discount, "discount");
  const paid = input.paid === undefined ? 0 : safeInt(input.paid, "paid");
  let subtotal = 0;
  for (const l of lines) subtotal += typeof l.quantity === "number" && typeof l.price === "number" ? l.quantity * l.price : Number.NaN;
  const entry = {
    id, kind: "sale", at, device: actor.device, user: actor.user,
    lines, subtotal, tax, discount, total: subtotal + tax - discount,
    customer: input.customer ?? null, paid,
  };
  return check(entry, ctx);
}

export function buildPayment(id: string, at: string, actor: Actor, input: PaymentInput, ctx: CheckContext): CheckedEntry {
  if (!isObject(input)) throw invalidInput("payment must be an object");
  const entry = { id, kind: "payment", at, device: actor.device, user: actor.user, invoice: input.invoice, amount: input.amount };
  return check(entry, ctx, input.allowUnknownInvoice === true);
}

export function buildStock(id: string, at: string, actor: Actor, input: StockInput, ctx: CheckContext): CheckedEntry {
  if (!isObject(input)) throw invalidInput("stock entry must be an object");
  if (typeof input.item === "string" && ctx.catalogPrice(input.item) === undefined && ctx.state.stock[input.item] === undefined) {
    throw invalidInput(`item ${input.item} is not in the catalog`);
  }
  const entry = { id, kind: "stock", at, device: actor.device, user: actor.user, item: input.item, delta: input.delta, reason: input.reason };
  return check(entry, ctx);
}

export function buildVoid(id: string, at: string, actor: Actor, input: VoidInput, ctx: CheckContext): CheckedEntry {
  if (!isObject(input)) throw invalidInput("void must be an object");
  const entry = { id, kind: "void", at, device: actor.device, user: actor.user, invoice: input.invoice, reason: input.reason };
  return check(entry, ctx, input.allowUnknownInvoice === true);
}

/** Reasons that depend on other devices' concurrent entries: the server decides those. */
function isConcurrencyDependent(reason: string): boolean {
  return reason.startsWith("insufficient stock");
}

function check(raw: Record<string, unknown>, ctx: CheckContext, allowUnknownInvoice = false): CheckedEntry {
  const parsed = parseEntry(raw.id as string, raw);
  if (!parsed.ok) throw invalidInput(parsed.reason);
  const entry = parsed.entry;
  const { verdict, state } = tentative(entry, ctx);
  if (verdict.status === "invalid") throw invalidInput(verdict.reason ?? "invalid entry");
  if (verdict.status === "rejected" && !isConcurrencyDependent(verdict.reason ?? "")) {
    throw invalidInput(verdict.reason ?? "rejected");
  }
  if (verdict.status === "deferred" && (entry.kind === "payment" || entry.kind === "void")) {
    // Unknown to the authoritative state: fine when the sale exists somewhere in the team's ledger
    // (another device's, not decided yet), a typo otherwise.
    if (!ctx.knownInvoice(entry.invoice) && !allowUnknownInvoice) throw invalidInput(`unknown invoice ${entry.invoice}`);
  }
  return { entry, verdict, state };
}

export function tentative(entry: LedgerEntry, ctx: CheckContext): { verdict: Verdict; state: LedgerState } {
  const result = decideBatch(ctx.state, [{ key: entry.id, raw: entry }], ctx.settings, ctx.now);
  const verdict = result.verdicts.find((v) => v.id === entry.id);
  // decideBatch gives every new entry a verdict; an empty answer means it was already decided.
  if (!verdict) throw invalidInput(`entry ${entry.id} was already recorded`);
  return { verdict, state: result.state };
}

/** Automerge refuses `undefined`; entries are JSON-shaped, so a JSON copy is exact. */
export function toDocValue(entry: LedgerEntry): Record<string, unknown> {
  return JSON.parse(JSON.stringify(entry)) as Record<string, unknown>;
}
