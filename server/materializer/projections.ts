/**
 * Journal → projections. Every projected document is computed whole from journal records (effects
 * carry absolute values) and written by key, so applying a range of records again after a crash
 * gives the same collections. Aggregates (daily summaries, customer balances) are recomputed from
 * the projected invoices and payments for the keys a range touched, never incremented.
 */
import type { ClientSession } from "mongodb";
import type {
  Collections, CustomerBalanceDoc, DecidedDoc, DailySummaryDoc, InvoiceDoc, ItemDoc, JournalRecord, PaymentDoc, PurchaseDoc,
  QuarantineDoc, RejectionDoc, StockLevelDoc, StockMovementDoc,
} from "./collections.js";
import { teamKey } from "./collections.js";
import { findByIds, insertMissing, replaceAll, type ReadOptions } from "./write-set.js";

export interface Touched {
  days: Set<string>;
  customers: Set<string>;
}

type Lines = InvoiceDoc["lines"];

/** What a sale took from stock: its own stock effects. A void puts exactly these back. */
function saleLines(r: JournalRecord): Lines {
  return r.effects.flatMap((e) => (e.type === "stock" && e.entry === r.entryId ? [{ item: e.item, quantity: -e.delta }] : []));
}

export async function applyRecords(c: Collections, team: string, records: readonly JournalRecord[], read: ReadOptions = {}): Promise<Touched> {
  const session = read.session;
  const touched: Touched = { days: new Set(), customers: new Set() };
  // Keyed maps: a later record's value for a key replaces an earlier one's.
  const stock = new Map<string, StockLevelDoc>();
  const movements = new Map<string, StockMovementDoc>();
  const invoices = new Map<string, InvoiceDoc>();
  const payments = new Map<string, PaymentDoc>();
  const purchases = new Map<string, PurchaseDoc>();
  const items = new Map<string, ItemDoc>();
  const rejections = new Map<string, RejectionDoc>();
  const quarantine = new Map<string, QuarantineDoc>();
  const decided = new Map<string, DecidedDoc>();
  const linesOf = new Map<string, Lines>();
  const needLines = new Set<string>();

  for (const r of records) {
    decided.set(r._id, { _id: r._id, team, entryId: r.entryId, kind: r.kind, status: r.status, hash: r.hash, seq: r.seq });
    if (r.status === "rejected") {
      rejections.set(r._id, {
        _id: r._id, team, entryId: r.entryId, kind: r.kind, reason: r.reason ?? "", seq: r.seq,
        at: r.entry?.at ?? null, device: r.entry?.device ?? null, segment: r.provenance.segment,
      });
      continue;
    }
    if (r.status === "invalid") {
      quarantine.set(r._id, { _id: r._id, team, entryId: r.entryId, reason: r.reason ?? "", seq: r.seq, segment: r.provenance.segment, decidedAt: r.decidedAt });
      continue;
    }
    if (r.kind === "sale") linesOf.set(r.entryId, saleLines(r));
    for (const e of r.effects) {
      switch (e.type) {
        case "stock": {
          const key = teamKey(team, e.item);
          stock.set(key, { _id: key, team, item: e.item, level: e.level, seq: r.seq });
          const mkey = teamKey(team, `${e.entry}:${e.item}`);
          movements.set(mkey, { _id: mkey, team, item: e.item, entry: e.entry, delta: e.delta, level: e.level, seq: r.seq });
          break;
        }
        case "invoice": {
          const { id, ...fields } = e.invoice;
          const key = teamKey(team, id);
          invoices.set(key, { _id: key, team, id, ...fields, lines: [], seq: r.seq });
          if (!linesOf.has(id)) needLines.add(id);
          touched.days.add(e.invoice.day);
          if (e.invoice.customer !== null) touched.customers.add(e.invoice.customer);
          break;
        }
        case "payment": {
          const key = teamKey(team, e.payment.id);
          payments.set(key, { _id: key, team, ...e.payment, seq: r.seq });
          touched.days.add(e.payment.day);
          break;
        }
        case "purchase": {
          const key = teamKey(team, e.purchase.invoice);
          purchases.set(key, { _id: key, team, ...e.purchase, seq: r.seq });
          touched.customers.add(e.purchase.customer);
          break;
        }
        case "item": {
          const key = teamKey(team, e.item.id);
          items.set(key, {
            _id: key, team, id: e.item.id, name: e.item.name, price: e.item.price, active: e.item.active,
            unit: "", group: null, description: "", source: "sale", updatedAt: r.decidedAt,
          });
          break;
        }
      }
    }
  }

  // A payment or void on an older invoice: its lines come from the sale's journal record, so the
  // projection never depends on a projected document that a crash may have left half-written.
  // These records exist, so point lookups are cheap even where `$in` scans.
  const missing = [...needLines].filter((id) => !linesOf.has(id));
  if (missing.length > 0) {
    for (const sale of await findByIds(c.journal, missing.map((id) => teamKey(team, id)), read)) {
      linesOf.set(sale.entryId, saleLines(sale));
    }
  }
  for (const inv of invoices.values()) inv.lines = linesOf.get(inv.id) ?? [];

  await Promise.all([
    replaceAll(c.decided, decided.values(), session),
    replaceAll(c.stock, stock.values(), session),
    replaceAll(c.movements, movements.values(), session),
    replaceAll(c.invoices, invoices.values(), session),
    replaceAll(c.payments, payments.values(), session),
    replaceAll(c.purchases, purchases.values(), session),
    replaceAll(c.rejections, rejections.values(), session),
    replaceAll(c.quarantine, quarantine.values(), session),
    // The catalog document stays the authority for items it has; a sale line only fills a gap.
    insertMissing(c.items, items.values(), { session }),
  ]);
  return touched;
}

/** Recomputes the daily summaries and customer balances a range of records touched. */
export async function recomputeAggregates(c: Collections, team: string, touched: Touched, session?: ClientSession): Promise<void> {
  const opts = session ? { session } : {};
  if (touched.days.size > 0) {
    const days = [...touched.days];
    const summaries = new Map<string, DailySummaryDoc>(
      days.map((day) => [day, { _id: teamKey(team, day), team, day, salesCount: 0, voidCount: 0, revenue: 0, paymentsReceived: 0, outstanding: 0 }]),
    );
    for (const inv of await c.invoices.find({ team, day: { $in: days } }, opts).toArray()) {
      const s = summaries.get(inv.day);
      if (!s) continue;
      s.paymentsReceived += inv.initialPaid;
      if (inv.status === "void") {
        s.voidCount += 1;
        continue;
      }
      s.salesCount += 1;
      s.revenue += inv.total;
      s.outstanding += inv.outstanding;
    }
    for (const p of await c.payments.find({ team, day: { $in: days } }, opts).toArray()) {
      const s = summaries.get(p.day);
      if (s) s.paymentsReceived += p.amount;
    }
    await replaceAll(c.summaries, summaries.values(), session);
  }
  if (touched.customers.size > 0) {
    const customers = [...touched.customers];
    const balances = new Map<string, CustomerBalanceDoc>(
      customers.map((customer) => [customer, { _id: teamKey(team, customer), team, customer, outstanding: 0, openInvoices: 0, purchases: 0 }]),
    );
    for (const inv of await c.invoices.find({ team, customer: { $in: customers }, status: "open" }, opts).toArray()) {
      const b = inv.customer === null ? undefined : balances.get(inv.customer);
      if (!b) continue;
      b.outstanding += inv.outstanding;
      b.openInvoices += 1;
    }
    for (const p of await c.purchases.find({ team, customer: { $in: customers }, void: false }, opts).toArray()) {
      const b = balances.get(p.customer);
      if (b) b.purchases += 1;
    }
    await replaceAll(c.balances, balances.values(), session);
  }
}

/**
 * Brings a team's projections up to its journal: the first thing the materializer does for a
 * team after a start, whatever point a crash interrupted.
 */
export async function catchUp(
  c: Collections,
  team: string,
  pageSize = 2000,
  onProgress?: (seq: number) => void,
  read: ReadOptions = {},
): Promise<number> {
  const state = await c.teamState.findOne({ _id: team });
  let projected = state?.projectedSeq ?? 0;
  for (;;) {
    const page = await c.journal.find({ team, seq: { $gt: projected } }).sort({ seq: 1 }).limit(pageSize).toArray();
    if (page.length === 0) return projected;
    const touched = await applyRecords(c, team, page, read);
    await recomputeAggregates(c, team, touched);
    projected = page[page.length - 1]!.seq;
    await c.teamState.updateOne({ _id: team }, { $set: { projectedSeq: projected, updatedAt: new Date().toISOString() } }, { upsert: true });
    onProgress?.(projected);
  }
}
