/**
 * A classic sync request turned into what this service records: catalog changes and ledger
 * entries built with the shared domain types, then checked as a whole against the authoritative
 * state (the materializer's own `loadState` and `decideBatch` on a copy) before anything is
 * written. Any refusal throws with the reference message; a plan that comes back is one the
 * materializer would accept unless a device's concurrent entry gets there first.
 */
import { randomUUID } from "node:crypto";
import {
  batchRefusedPrefix,
  decideBatch,
  parseItem,
  type Customer,
  type Group,
  type Item,
  type ItemState,
  type LedgerEntry,
  type PaymentEntry,
  type SaleEntry,
  type SaleLine,
  type StockEntry,
} from "../../shared/domain/index.js";
import { loadState, type BatchEntry } from "../materializer/batch.js";
import { teamKey, type Collections } from "../materializer/collections.js";
import { conflict, invalid, notFound } from "./errors.js";
import type { GatewayCollections, InvoiceMetaDoc, PaymentMetaDoc } from "./meta.js";
import type { SyncPayload } from "./payload.js";
import type { CatalogView } from "./team-docs.js";

export type CatalogOp =
  | { op: "item.put"; item: Item }
  | { op: "item.set"; id: string; fields: Partial<Omit<Item, "id">> }
  | { op: "group.put"; group: Group }
  | { op: "customer.put"; customer: Customer };

export interface SyncSummary {
  itemsCreated: number;
  itemsUpdated: number;
  itemsDeleted: number;
  invoicesCreated: number;
  paymentsCreated: number;
}

export interface SyncedIds {
  itemsCreated: string[];
  itemsUpdated: string[];
  itemsDeleted: string[];
  invoicesCreated: string[];
  paymentsCreated: string[];
}

/** Everything a request will do, plain JSON: stored with its idempotency key so a retry can finish it. */
export interface SyncPlan {
  /** ISO time the request was planned at; entries are stamped from it, one millisecond apart. */
  at: string;
  catalog: CatalogOp[];
  entries: LedgerEntry[];
  /** Items created by sale lines: put in the catalog once the batch is accepted, so devices see them. */
  afterAccept: { sale: string; item: Item }[];
  invoiceMeta: InvoiceMetaDoc[];
  paymentMeta: PaymentMetaDoc[];
  summary: SyncSummary;
  synced: SyncedIds;
}

export interface PlanContext {
  team: string;
  device: string;
  user: string;
  now: Date;
  catalog: CatalogView;
  c: Collections;
  g: GatewayCollections;
  settings: Parameters<typeof decideBatch>[2];
  pointLookups: boolean;
}

function checkedItem(item: Item, what: string): Item {
  const p = parseItem(item.id, item);
  if (!p.ok) throw invalid(`${what}: ${p.reason.replace(/^item \S+: /, "")}`);
  return p.item;
}

export async function buildPlan(payload: SyncPayload, ctx: PlanContext): Promise<SyncPlan> {
  const { team, c, g, catalog } = ctx;
  const base = ctx.now.getTime();
  let tick = 0;
  const stamp = (): string => new Date(base + tick++).toISOString();
  const actor = { device: ctx.device, user: ctx.user };
  const plan: SyncPlan = {
    at: ctx.now.toISOString(), catalog: [], entries: [], afterAccept: [], invoiceMeta: [], paymentMeta: [],
    summary: { itemsCreated: 0, itemsUpdated: 0, itemsDeleted: 0, invoicesCreated: 0, paymentsCreated: 0 },
    synced: { itemsCreated: [], itemsUpdated: [], itemsDeleted: [], invoicesCreated: [], paymentsCreated: [] },
  };
  const items = new Map(catalog.items);
  const groups = new Map(catalog.groups);
  /** Stock level per item as the batch goes (authoritative level + this batch's entries). */
  const levels = new Map<string, number>();
  const levelOf = async (id: string): Promise<number> => {
    const known = levels.get(id);
    if (known !== undefined) return known;
    const level = (await c.stock.findOne({ _id: teamKey(team, id) }))?.level ?? 0;
    levels.set(id, level);
    return level;
  };
  /** Catalog items, then items only the ledger knows (created by a device's sale line). */
  const findItem = async (id: string): Promise<Item | undefined> => {
    const known = items.get(id);
    if (known) return known;
    const doc = await c.items.findOne({ _id: teamKey(team, id) });
    if (!doc) return undefined;
    const item: Item = { id, name: doc.name, price: doc.price, unit: doc.unit || "nos", group: doc.group, description: doc.description, active: doc.active };
    items.set(id, item);
    return item;
  };
  const stockEntry = (item: string, delta: number, reason: string): void => {
    const e: StockEntry = { id: randomUUID(), kind: "stock", at: stamp(), ...actor, item, delta, reason };
    plan.entries.push(e);
  };
  const requireGroup = (id: string | null, what: string): void => {
    if (id !== null && !groups.has(id)) throw notFound(`${what}: group not found: ${id}`);
  };

  for (const [i, op] of payload.itemCreate.entries()) {
    const what = `Item create at index ${i}`;
    requireGroup(op.groupId, what);
    const item = checkedItem({ id: randomUUID(), name: op.name, price: op.price, unit: op.unit, group: op.groupId, description: op.description, active: true }, what);
    items.set(item.id, item);
    levels.set(item.id, 0);
    plan.catalog.push({ op: "item.put", item });
    if (op.stock > 0) {
      stockEntry(item.id, op.stock, "item.create: opening stock");
      levels.set(item.id, op.stock);
    }
    plan.synced.itemsCreated.push(item.id);
  }

  for (const [i, op] of payload.itemUpdate.entries()) {
    const current = await findItem(op.id);
    if (!current) throw notFound(`Item not found for update: ${op.id}`);
    const what = `Item update at index ${i}`;
    const fields: Partial<Omit<Item, "id">> = {};
    if (op.name !== undefined) fields.name = op.name;
    if (op.price !== undefined) fields.price = op.price;
    if (op.unit !== undefined) fields.unit = op.unit;
    if (op.description !== undefined) fields.description = op.description;
    if (op.groupId !== undefined) {
      requireGroup(op.groupId, what);
      fields.group = op.groupId;
    }
    const next = checkedItem({ ...current, ...fields }, what);
    items.set(op.id, next);
    // An item only the ledger knew enters the catalog whole; a catalog item gets only the
    // fields that changed, so a device's concurrent edit of another field survives.
    plan.catalog.push(catalog.items.has(op.id) ? { op: "item.set", id: op.id, fields } : { op: "item.put", item: next });
    if (op.stock !== undefined) {
      const delta = op.stock - (await levelOf(op.id));
      if (delta !== 0) stockEntry(op.id, delta, "item.update: stock set");
      levels.set(op.id, op.stock);
    }
    plan.synced.itemsUpdated.push(op.id);
  }

  for (const id of payload.itemDelete) {
    const current = await findItem(id);
    if (!current) throw notFound(`Item not found for delete: ${id}`);
    items.set(id, { ...current, active: false });
    plan.catalog.push(catalog.items.has(id) ? { op: "item.set", id, fields: { active: false } } : { op: "item.put", item: { ...current, active: false } });
    plan.synced.itemsDeleted.push(id);
  }

  const numbers = new Map<string, string>();
  for (const [i, op] of payload.invoiceCreate.entries()) {
    const saleId = randomUUID();
    const lines: SaleLine[] = [];
    const products: InvoiceMetaDoc["products"] = [];
    for (const [j, p] of op.products.entries()) {
      if (p.productId !== undefined) {
        const item = await findItem(p.productId);
        if (!item) throw notFound(`Item not found for sale: ${p.productId}`);
        const price = p.costPerUnit ?? item.price;
        lines.push({ item: item.id, quantity: p.quantity, price });
        products.push({ productId: item.id, itemName: p.itemName ?? item.name, costPerUnit: price, quantity: p.quantity });
        continue;
      }
      // No productId: the line creates the item (reference "Auto-Item Creation").
      let group: string | null = null;
      if (p.itemGroup !== undefined) {
        group = [...groups.values()].find((gr) => gr.name === p.itemGroup)?.id ?? null;
        if (group === null) {
          const created: Group = { id: randomUUID(), name: p.itemGroup };
          groups.set(created.id, created);
          plan.catalog.push({ op: "group.put", group: created });
          group = created.id;
        }
      }
      const item = checkedItem(
        { id: randomUUID(), name: p.itemName ?? "", price: p.costPerUnit ?? 0, unit: "nos", group, description: "", active: true },
        `Invoice product at index ${j}`,
      );
      lines.push({ item: item.id, quantity: p.quantity, price: item.price, name: item.name });
      products.push({ productId: item.id, itemName: item.name, costPerUnit: item.price, quantity: p.quantity });
      plan.afterAccept.push({ sale: saleId, item });
      plan.synced.itemsCreated.push(item.id);
    }

    let customer: string | null = op.clientCustomerId ?? null;
    if (customer === null && op.clientCustomerName !== undefined) customer = randomUUID();
    if (customer !== null && op.clientCustomerName !== undefined && !catalog.customers.has(customer)) {
      plan.catalog.push({ op: "customer.put", customer: { id: customer, name: op.clientCustomerName, phone: op.clientCustomerPhone ?? null } });
    }

    const subtotal = lines.reduce((s, l) => s + l.quantity * l.price, 0);
    const total = op.totalAmount ?? subtotal + op.totalTax - op.totalDiscount;
    const sale: SaleEntry = {
      id: saleId, kind: "sale", at: stamp(), ...actor, lines,
      subtotal: op.subtotal ?? subtotal, tax: op.totalTax, discount: op.totalDiscount, total, customer, paid: op.paidAmount,
    };
    plan.entries.push(sale);
    const number = op.invoiceNumber ?? `INV-${plan.at.slice(0, 10).replace(/-/g, "")}-${saleId.slice(0, 8).toUpperCase()}`;
    if (numbers.has(number) || (await g.invoiceMeta.countDocuments({ team, invoiceNumber: number }, { limit: 1 })) > 0) {
      throw conflict(`Invoice create at index ${i}: invoice number already exists: ${number}`);
    }
    numbers.set(number, saleId);
    plan.invoiceMeta.push({
      _id: teamKey(team, saleId), team, id: saleId, invoiceNumber: number,
      invoiceDate: op.invoiceDate ?? plan.at.slice(0, 10), dueDate: op.dueDate ?? null, notes: op.notes ?? null,
      clientCustomerName: op.clientCustomerName ?? null, clientCustomerPhone: op.clientCustomerPhone ?? null,
      products, subtotal: sale.subtotal, totalTax: op.totalTax, totalDiscount: op.totalDiscount, createdAt: plan.at,
    });
    plan.synced.invoicesCreated.push(saleId);
  }

  for (const op of payload.paymentCreate) {
    const invoice = await resolveInvoice(op.invoiceId, numbers, plan, ctx);
    if (invoice === null) throw notFound(`Invoice not found for payment: ${op.invoiceId}`);
    const payment: PaymentEntry = { id: randomUUID(), kind: "payment", at: stamp(), ...actor, invoice, amount: op.amount };
    plan.entries.push(payment);
    plan.paymentMeta.push({
      _id: teamKey(team, payment.id), team, id: payment.id, invoiceId: invoice, method: op.method, note: op.note ?? null,
      paidAt: op.paidAt ?? plan.at,
    });
    plan.synced.paymentsCreated.push(payment.id);
  }

  plan.summary = {
    itemsCreated: plan.synced.itemsCreated.length,
    itemsUpdated: plan.synced.itemsUpdated.length,
    itemsDeleted: plan.synced.itemsDeleted.length,
    invoicesCreated: plan.synced.invoicesCreated.length,
    paymentsCreated: plan.synced.paymentsCreated.length,
  };
  // One atomic group: the materializer accepts the request's entries together or none of them.
  const batch = randomUUID();
  for (const e of plan.entries) {
    e.batch = batch;
    e.batchSize = plan.entries.length;
  }
  await precheck(plan, items, ctx);
  return plan;
}

/** An invoice of this request (by number or id), a gateway invoice number, or an invoice id the server knows. */
async function resolveInvoice(ref: string, numbers: Map<string, string>, plan: SyncPlan, ctx: PlanContext): Promise<string | null> {
  const inBatch = numbers.get(ref) ?? (plan.synced.invoicesCreated.includes(ref) ? ref : undefined);
  if (inBatch) return inBatch;
  const meta = await ctx.g.invoiceMeta.findOne({ team: ctx.team, invoiceNumber: ref });
  if (meta) return meta.id;
  const key = teamKey(ctx.team, ref);
  if ((await ctx.c.invoices.countDocuments({ _id: key }, { limit: 1 })) > 0) return ref;
  // A rejected sale is no invoice, but the rules say why a payment against it is refused.
  if ((await ctx.c.journal.countDocuments({ _id: key, kind: "sale" }, { limit: 1 })) > 0) return ref;
  return null;
}

/** The materializer's decision on a copy of the authoritative state: the whole batch or nothing. */
async function precheck(plan: SyncPlan, items: Map<string, Item>, ctx: PlanContext): Promise<void> {
  if (plan.entries.length === 0) return;
  const catalogItems = new Map<string, ItemState>();
  for (const [id, it] of items) catalogItems.set(id, { name: it.name, price: it.price, active: it.active });
  const batch: BatchEntry[] = plan.entries.map((e) => ({
    key: e.id,
    raw: e,
    provenance: { segment: "", device: ctx.device, change: null, actor: null },
  }));
  const { state } = await loadState(ctx.c, ctx.team, batch, catalogItems, { pointLookups: ctx.pointLookups });
  const result = decideBatch(state, batch.map((b) => ({ key: b.key, raw: b.raw })), ctx.settings, plan.at);
  const ours = new Set(plan.entries.map((e) => e.id));
  for (const e of plan.entries) {
    const v = result.verdicts.find((x) => x.id === e.id);
    if (!v || !ours.has(v.id) || v.status === "accepted") continue;
    const reason = v.reason ?? v.status;
    // The other members of the group name the culprit; its own verdict has the classic message.
    if (e.batch !== undefined && reason.startsWith(batchRefusedPrefix(e.batch)) && plan.entries.length > 1) continue;
    if (e.kind === "payment" && (v.status === "deferred" || reason.startsWith("Invoice not found for payment"))) {
      throw notFound(`Invoice not found for payment: ${e.invoice}`);
    }
    if (reason.startsWith("insufficient stock")) throw conflict(reason);
    throw invalid(reason);
  }
  const refused = result.verdicts.find((v) => ours.has(v.id) && v.status !== "accepted");
  if (refused) throw conflict(refused.reason ?? `entry ${refused.id} was ${refused.status}`);
}
