/**
 * Journal → projections. Every write is an upsert keyed by ids and carries absolute values from
 * the effects, so applying a record twice, or a range of records again after a crash, gives the
 * same collections. Aggregates (daily summaries, customer balances) are recomputed from the
 * projected invoices and payments for the keys a range touched, never incremented.
 */
import type { AnyBulkWriteOperation } from "mongodb";
import type {
  Collections, DailySummaryDoc, InvoiceDoc, ItemDoc, JournalRecord, PaymentDoc, PurchaseDoc, QuarantineDoc, RejectionDoc,
  StockLevelDoc, StockMovementDoc,
} from "./collections.js";
import { teamKey } from "./collections.js";

export interface Touched {
  days: Set<string>;
  customers: Set<string>;
}

export async function applyRecords(c: Collections, team: string, records: readonly JournalRecord[]): Promise<Touched> {
  const touched: Touched = { days: new Set(), customers: new Set() };
  const ops = {
    stock: [] as AnyBulkWriteOperation<StockLevelDoc>[],
    movements: [] as AnyBulkWriteOperation<StockMovementDoc>[],
    invoices: [] as AnyBulkWriteOperation<InvoiceDoc>[],
    payments: [] as AnyBulkWriteOperation<PaymentDoc>[],
    purchases: [] as AnyBulkWriteOperation<PurchaseDoc>[],
    items: [] as AnyBulkWriteOperation<ItemDoc>[],
    rejections: [] as AnyBulkWriteOperation<RejectionDoc>[],
    quarantine: [] as AnyBulkWriteOperation<QuarantineDoc>[],
  };

  for (const r of records) {
    if (r.status === "rejected") {
      ops.rejections.push({
        replaceOne: {
          filter: { _id: r._id },
          replacement: { team, entryId: r.entryId, kind: r.kind, reason: r.reason ?? "", seq: r.seq,
            at: r.entry?.at ?? null, device: r.entry?.device ?? null, segment: r.provenance.segment,
          },
          upsert: true,
        },
      });
      continue;
    }
    if (r.status === "invalid") {
      ops.quarantine.push({
        replaceOne: {
          filter: { _id: r._id },
          replacement: { team, entryId: r.entryId, reason: r.reason ?? "", seq: r.seq, segment: r.provenance.segment, decidedAt: r.decidedAt },
          upsert: true,
        },
      });
      continue;
    }
    // A sale's lines, as the void that may come later needs them: what it took from stock.
    const saleLines =
      r.kind === "sale"
        ? r.effects.flatMap((e) => (e.type === "stock" && e.entry === r.entryId ? [{ item: e.item, quantity: -e.delta }] : []))
        : undefined;
    for (const e of r.effects) {
      switch (e.type) {
        case "stock":
          ops.stock.push({
            replaceOne: { filter: { _id: teamKey(team, e.item) }, replacement: { team, item: e.item, level: e.level, seq: r.seq }, upsert: true },
          });
          ops.movements.push({
            replaceOne: {
              filter: { _id: teamKey(team, `${e.entry}:${e.item}`) },
              replacement: { team, item: e.item, entry: e.entry, delta: e.delta, level: e.level, seq: r.seq },
              upsert: true,
            },
          });
          break;
        case "invoice": {
          const { id, ...fields } = e.invoice;
          const set: Partial<InvoiceDoc> = { ...fields, id, team, seq: r.seq };
          if (saleLines && id === r.entryId) set.lines = saleLines;
          ops.invoices.push({ updateOne: { filter: { _id: teamKey(team, id) }, update: { $set: set, $setOnInsert: saleLines ? {} : { lines: [] } }, upsert: true } });
          touched.days.add(e.invoice.day);
          if (e.invoice.customer !== null) touched.customers.add(e.invoice.customer);
          break;
        }
        case "payment":
          ops.payments.push({
            replaceOne: { filter: { _id: teamKey(team, e.payment.id) }, replacement: { team, ...e.payment, seq: r.seq }, upsert: true },
          });
          touched.days.add(e.payment.day);
          break;
        case "purchase":
          ops.purchases.push({
            replaceOne: {
              filter: { _id: teamKey(team, e.purchase.invoice) },
              replacement: { team, ...e.purchase, seq: r.seq },
              upsert: true,
            },
          });
          touched.customers.add(e.purchase.customer);
          break;
        case "item":
          // The catalog document stays the authority for items it has; a sale line only fills a gap.
          ops.items.push({
            updateOne: {
              filter: { _id: teamKey(team, e.item.id) },
              update: {
                $setOnInsert: {
                  team, id: e.item.id, name: e.item.name, price: e.item.price, active: e.item.active,
                  unit: "", group: null, description: "", source: "sale", updatedAt: r.decidedAt,
                },
              },
              upsert: true,
            },
          });
          break;
      }
    }
  }

  // Ordered within a collection, so the last record's value for a key is the one that stays.
  await Promise.all([
    ops.stock.length ? c.stock.bulkWrite(ops.stock, { ordered: true }) : null,
    ops.movements.length ? c.movements.bulkWrite(ops.movements, { ordered: true }) : null,
    ops.invoices.length ? c.invoices.bulkWrite(ops.invoices, { ordered: true }) : null,
    ops.payments.length ? c.payments.bulkWrite(ops.payments, { ordered: true }) : null,
    ops.purchases.length ? c.purchases.bulkWrite(ops.purchases, { ordered: true }) : null,
    ops.items.length ? c.items.bulkWrite(ops.items, { ordered: true }) : null,
    ops.rejections.length ? c.rejections.bulkWrite(ops.rejections, { ordered: true }) : null,
    ops.quarantine.length ? c.quarantine.bulkWrite(ops.quarantine, { ordered: true }) : null,
  ]);
  return touched;
}

/** Recomputes the daily summaries and customer balances a range of records touched. */
export async function recomputeAggregates(c: Collections, team: string, touched: Touched): Promise<void> {
  for (const day of touched.days) {
    const summary: DailySummaryDoc = {
      _id: teamKey(team, day), team, day, salesCount: 0, voidCount: 0, revenue: 0, paymentsReceived: 0, outstanding: 0,
    };
    for await (const inv of c.invoices.find({ team, day })) {
      summary.paymentsReceived += inv.initialPaid;
      if (inv.status === "void") {
        summary.voidCount += 1;
        continue;
      }
      summary.salesCount += 1;
      summary.revenue += inv.total;
      summary.outstanding += inv.outstanding;
    }
    for await (const p of c.payments.find({ team, day })) summary.paymentsReceived += p.amount;
    const { _id, ...fields } = summary;
    await c.summaries.replaceOne({ _id }, fields, { upsert: true });
  }
  for (const customer of touched.customers) {
    let outstanding = 0;
    let openInvoices = 0;
    for await (const inv of c.invoices.find({ team, customer, status: "open" })) {
      outstanding += inv.outstanding;
      openInvoices += 1;
    }
    const purchases = await c.purchases.countDocuments({ team, customer, void: false });
    await c.balances.replaceOne(
      { _id: teamKey(team, customer) },
      { team, customer, outstanding, openInvoices, purchases },
      { upsert: true },
    );
  }
}

/**
 * Brings a team's projections up to its journal: the first thing the materializer does for a
 * team after a start, whatever point a crash interrupted.
 */
export async function catchUp(c: Collections, team: string, pageSize = 2000, onProgress?: (seq: number) => void): Promise<number> {
  const state = await c.teamState.findOne({ _id: team });
  let projected = state?.projectedSeq ?? 0;
  for (;;) {
    const page = await c.journal.find({ team, seq: { $gt: projected } }).sort({ seq: 1 }).limit(pageSize).toArray();
    if (page.length === 0) return projected;
    const touched = await applyRecords(c, team, page);
    await recomputeAggregates(c, team, touched);
    projected = page[page.length - 1]!.seq;
    await c.teamState.updateOne({ _id: team }, { $set: { projectedSeq: projected, updatedAt: new Date().toISOString() } }, { upsert: true });
    onProgress?.(projected);
  }
}
