/**
 * Journal → projections. Every projected document is computed whole from journal records (effects
 * carry absolute values) and written by key, so applying a range of records again after a crash
 * gives the same collections. Aggregates (daily summaries, customer balances) are recomputed from
 * their parts for the keys a range touched (aggregates.ts), never incremented.
 */
import type { ClientSession, Collection, Document } from "mongodb";
import { allowanceKey, reservedOf, spentOf } from "../../shared/domain/index.js";
import type {
  AllowanceDoc,
  AggregateParts, AggregatePartsDoc, Collections, CustomerBalanceDoc, DecidedDoc, DailySummaryDoc, InvoiceDoc, ItemDoc, JournalRecord, PaymentDoc, PurchaseDoc,
  QuarantineDoc, RejectionDoc, StockLevelDoc, StockMovementDoc,
} from "./collections.js";
import { teamKey } from "./collections.js";
import { customerBalance, customerPartsId, daySummary, dayPartsId, mergeParts, partsUpdates, touchedBy, type Touched } from "./aggregates.js";
import { pausePoint } from "./pause-points.js";
import { findByIds, insertMissing, insertOrReplace, replaceAll, upsertEach, type ReadOptions } from "./write-set.js";

type Lines = InvoiceDoc["lines"];

/** What a sale took from stock: its own stock effects. A void puts exactly these back. */
function saleLines(r: JournalRecord): Lines {
  return r.effects.flatMap((e) => (e.type === "stock" && e.entry === r.entryId ? [{ item: e.item, quantity: -e.delta }] : []));
}

/** The projected documents a range of journal records determines, by `_id`. */
export interface ProjectedRecords {
  stock: Map<string, StockLevelDoc>;
  allowances: Map<string, AllowanceDoc>;
  movements: Map<string, StockMovementDoc>;
  invoices: Map<string, InvoiceDoc>;
  payments: Map<string, PaymentDoc>;
  purchases: Map<string, PurchaseDoc>;
  items: Map<string, ItemDoc>;
  rejections: Map<string, RejectionDoc>;
  quarantine: Map<string, QuarantineDoc>;
  decided: Map<string, DecidedDoc>;
  /** Sale entry id → what it took from stock, for the sales in the range. */
  linesOf: Map<string, Lines>;
  /** The days and customers whose aggregates the range changes (late bookings included). */
  touched: Touched;
}

/**
 * Pure: what a range of records, in seq order, makes of each projected document. Invoices of
 * sales outside the range get their `lines` from `linesOf` afterwards (applyRecords reads them
 * from the journal); over a whole journal every sale is in range. Also the deep verification's
 * expectation (server/audit/deep.ts).
 */
export function projectRecords(team: string, records: readonly JournalRecord[]): ProjectedRecords {
  // Keyed maps: a later record's value for a key replaces an earlier one's.
  const stock = new Map<string, StockLevelDoc>();
  const allowances = new Map<string, AllowanceDoc>();
  const movements = new Map<string, StockMovementDoc>();
  const invoices = new Map<string, InvoiceDoc>();
  const payments = new Map<string, PaymentDoc>();
  const purchases = new Map<string, PurchaseDoc>();
  const items = new Map<string, ItemDoc>();
  const rejections = new Map<string, RejectionDoc>();
  const quarantine = new Map<string, QuarantineDoc>();
  const decided = new Map<string, DecidedDoc>();
  const linesOf = new Map<string, Lines>();

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
      quarantine.set(r._id, {
        _id: r._id, team, entryId: r.entryId, reason: r.reason ?? "", seq: r.seq, segment: r.provenance.segment, decidedAt: r.decidedAt,
        ...(r.submitted !== undefined ? { submitted: r.submitted } : {}),
      });
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
          break;
        }
        case "payment": {
          const key = teamKey(team, e.payment.id);
          payments.set(key, { _id: key, team, ...e.payment, seq: r.seq });
          break;
        }
        case "purchase": {
          const key = teamKey(team, e.purchase.invoice);
          purchases.set(key, { _id: key, team, ...e.purchase, seq: r.seq });
          break;
        }
        case "allowance": {
          const a = e.allowance;
          const key = teamKey(team, allowanceKey(a.item, a.device));
          allowances.set(key, {
            _id: key, team, item: a.item, device: a.device, granted: a.granted, honoured: a.honoured,
            spent: spentOf(a), left: reservedOf(a), seq: r.seq,
          });
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

  for (const inv of invoices.values()) inv.lines = linesOf.get(inv.id) ?? [];
  return { stock, allowances, movements, invoices, payments, purchases, items, rejections, quarantine, decided, linesOf, touched: touchedBy(team, records) };
}

export async function applyRecords(c: Collections, team: string, records: readonly JournalRecord[], read: ReadOptions = {}): Promise<Touched> {
  return writeProjection(c, await projectionOf(c, team, records, read), read.session);
}

/**
 * projectRecords with every invoice's lines: those of sales outside the range from the sale's
 * journal record, unless the caller holds them.
 */
export async function projectionOf(
  c: Collections,
  team: string,
  records: readonly JournalRecord[],
  read: ReadOptions = {},
  /**
   * Lines of older invoices the caller already holds, as projected from their sales (a batch has
   * read them to decide, after a catch-up made the projections whole): not read again.
   */
  knownLines?: ReadonlyMap<string, Lines>,
): Promise<ProjectedRecords> {
  const projected = projectRecords(team, records);
  const { invoices, linesOf } = projected;
  for (const [id, lines] of knownLines ?? []) if (!linesOf.has(id)) linesOf.set(id, lines);
  // A payment or void on an older invoice: its lines come from the sale's journal record, so the
  // projection never depends on a projected document that a crash may have left half-written.
  // These records exist, so point lookups are cheap even where `$in` scans.
  const missing = [...invoices.values()].map((inv) => inv.id).filter((id) => !linesOf.has(id));
  if (missing.length > 0) {
    for (const sale of await findByIds(c.journal, missing.map((id) => teamKey(team, id)), read)) {
      linesOf.set(sale.entryId, saleLines(sale));
    }
  }
  for (const inv of invoices.values()) inv.lines = linesOf.get(inv.id) ?? [];
  return projected;
}

/** Writes what projectionOf computed; gives back what the aggregates need. */
export async function writeProjection(c: Collections, p: ProjectedRecords, session?: ClientSession): Promise<Touched> {
  const { stock, allowances, movements, invoices, payments, purchases, items, rejections, quarantine, decided } = p;
  const read = session ? { session } : {};
  // Stock levels exist after an item's first movement; the rest is mostly new per record.
  await Promise.all([
    insertOrReplace(c.decided, decided.values(), session),
    replaceAll(c.stock, stock.values(), session),
    replaceAll(c.allowances, allowances.values(), session),
    insertOrReplace(c.movements, movements.values(), session),
    insertOrReplace(c.invoices, invoices.values(), session),
    insertOrReplace(c.payments, payments.values(), session),
    insertOrReplace(c.purchases, purchases.values(), session),
    insertOrReplace(c.rejections, rejections.values(), session),
    insertOrReplace(c.quarantine, quarantine.values(), session),
    // The catalog document stays the authority for items it has; a sale line only fills a gap.
    insertMissing(c.items, items.values(), { ...read, pointLookups: false }),
  ]);
  return p.touched;
}

/** Aggregate documents whose stored content differed from what the journal implies, by `_id`. */
export interface AggregateRepairs {
  parts: string[];
  summaries: string[];
  balances: string[];
}

export const noRepairs = (): AggregateRepairs => ({ parts: [], summaries: [], balances: [] });

/**
 * Recomputes the daily summaries and customer balances a range of records touched, each from
 * its parts document (aggregates.ts), read by `_id`. Each of these documents holds accumulated
 * state, so each is written with one atomic upsert (write-set.ts `upsertEach`): no kill can leave
 * one absent. With `compare`, the stored documents are read first and those that the write
 * changes are returned (what a catch-up after a crash repaired).
 */
export async function recomputeAggregates(
  c: Collections,
  team: string,
  touched: Touched,
  read: ReadOptions & { compare?: boolean } = {},
): Promise<AggregateRepairs> {
  const repairs = noRepairs();
  const { days, customers } = partsUpdates(touched);
  if (days.size === 0 && customers.size === 0) return repairs;
  const ids = [...[...days.keys()].map((d) => dayPartsId(team, d)), ...[...customers.keys()].map((k) => customerPartsId(team, k))];
  const stored = await findByIds(c.parts, ids, read);
  const old = new Map(stored.map((p) => [p._id, JSON.parse(p.parts) as AggregateParts]));
  const parts: AggregatePartsDoc[] = [];
  const summaries: DailySummaryDoc[] = [];
  const balances: CustomerBalanceDoc[] = [];
  for (const [day, u] of days) {
    const id = dayPartsId(team, day);
    const merged = mergeParts(old.get(id), u, "day");
    parts.push({ _id: id, team, parts: JSON.stringify(merged) });
    summaries.push(daySummary(team, day, merged));
  }
  for (const [customer, u] of customers) {
    const id = customerPartsId(team, customer);
    const merged = mergeParts(old.get(id), u, "customer");
    parts.push({ _id: id, team, parts: JSON.stringify(merged) });
    balances.push(customerBalance(team, customer, merged));
  }
  if (read.compare) {
    const before = new Map(stored.map((p) => [p._id, p.parts]));
    repairs.parts = parts.filter((p) => before.get(p._id) !== p.parts).map((p) => p._id);
    repairs.summaries = await changedOf(c.summaries, summaries, read);
    repairs.balances = await changedOf(c.balances, balances, read);
  }
  // Parts first: a crash before the aggregates are written is repaired by applying the range again.
  await upsertEach(c.parts, parts, read.session, () => pausePoint("parts-write"));
  await pausePoint("after-parts");
  await Promise.all([upsertEach(c.summaries, summaries, read.session), upsertEach(c.balances, balances, read.session)]);
  return repairs;
}

/** Ids of the documents whose stored version is missing or differs from `docs`. */
async function changedOf<T extends { _id: string }>(coll: Collection<T>, docs: readonly T[], read: ReadOptions): Promise<string[]> {
  const stored = new Map((await findByIds(coll as unknown as Collection<T & Document>, docs.map((d) => d._id), read)).map((d) => [d._id, d]));
  return docs.filter((d) => !sameFields(stored.get(d._id), d)).map((d) => d._id);
}

function sameFields(a: object | undefined, b: object): boolean {
  if (!a) return false;
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  const keys = new Set([...Object.keys(x), ...Object.keys(y)]);
  for (const k of keys) if (x[k] !== y[k]) return false;
  return true;
}

/** Records that every journal record up to `seq` is projected, with aggregates kept as parts. */
export async function markProjected(c: Collections, team: string, seq: number, now: string, session?: ClientSession): Promise<void> {
  await c.teamState.updateOne(
    { _id: team },
    { $set: { projectedSeq: seq, updatedAt: now, aggregates: "parts" } },
    { upsert: true, ...(session ? { session } : {}) },
  );
}

/** What a catch-up did: the journal range it projected again and the aggregates it repaired. */
export interface CatchUpReport {
  /** Projected seq before and after. */
  from: number;
  to: number;
  records: number;
  repaired: AggregateRepairs;
}

/**
 * Brings a team's projections up to its journal: the first thing the materializer does for a
 * team after a start, whatever point a crash interrupted. Records after the projected mark are
 * applied again (idempotent), and the aggregates they touch are compared with what the journal
 * implies before they are written, so the report says what the crash had left wrong.
 */
export async function catchUp(
  c: Collections,
  team: string,
  pageSize = 2000,
  onProgress?: (seq: number) => void,
  read: ReadOptions = {},
  /** Compare the aggregates with what is stored (off for a rebuild, which starts from nothing). */
  compare = true,
): Promise<CatchUpReport> {
  const state = await c.teamState.findOne({ _id: team });
  const from = state?.projectedSeq ?? 0;
  let projected = from;
  let records = 0;
  let lastDecisionAt: string | undefined;
  const repaired = noRepairs();
  for (;;) {
    const page = await c.journal.find({ team, seq: { $gt: projected } }).sort({ seq: 1 }).limit(pageSize).toArray();
    if (page.length === 0) {
      // The head sync-status shows, in case a kill came between a journal write and its update.
      if (projected > 0 && ((await c.journalHeads.findOne({ _id: team }))?.seq ?? 0) < projected) {
        await c.journalHeads.updateOne({ _id: team }, { $set: { seq: projected, ...(lastDecisionAt ? { decidedAt: lastDecisionAt } : {}) } }, { upsert: true });
      }
      return { from, to: projected, records, repaired };
    }
    lastDecisionAt = page[page.length - 1]!.decidedAt;
    const touched = await applyRecords(c, team, page, read);
    const r = await recomputeAggregates(c, team, touched, { ...read, compare });
    repaired.parts.push(...r.parts);
    repaired.summaries.push(...r.summaries);
    repaired.balances.push(...r.balances);
    projected = page[page.length - 1]!.seq;
    records += page.length;
    await markProjected(c, team, projected, new Date().toISOString());
    onProgress?.(projected);
  }
}
