/**
 * Deep verification of one team, read-only (`verify-journal --deep`, docs/AUDIT.md):
 * 1. each record's entry hash against its entry, and its ids against each other;
 * 2. each verdict and its effects re-derived by replaying the shared decision rules
 *    (shared/domain/decide.ts) over the journal in seq order;
 * 3. every projection compared with what the journal implies (the materializer's own pure
 *    projection functions: projections.ts projectRecords, aggregates.ts), naming each difference;
 * 4. every closed day's summary as the journal implies it now, against the figures stored when
 *    it closed (closed_periods), and each close's head against the journal.
 *
 * The catalog is a document of its own, not in the journal: whether a sale line's item existed
 * and was active is taken from what the record shows (an `item` effect: it did not exist; a
 * rejection "item X is not active": it was inactive; otherwise it existed and was active). Every
 * other input of a decision (stock, invoices, payments, earlier verdicts) comes from the journal.
 */
import type { Db } from "mongodb";
import {
  canonicalJson,
  decideInto,
  deleteOwn,
  emptyState,
  entryHash,
  getOwn,
  parseSettings,
  putOwn,
  sha256Hex,
  DEFAULT_SETTINGS,
  type LedgerState,
  type SummaryFigures,
  type TeamSettings,
} from "../../shared/domain/index.js";
import { customerBalance, daySummary, mergeParts, partsUpdates, touchedBy } from "../materializer/aggregates.js";
import { teamKey, type ClosedPeriodDoc, type Collections, type DailySummaryDoc, type JournalRecord } from "../materializer/collections.js";
import { projectRecords } from "../materializer/projections.js";

export interface RecordProblem {
  seq: number;
  id: string;
  reason: string;
}

export interface Difference {
  collection: string;
  id: string;
  /** `(document)` when the whole document is missing or unexpected. */
  field: string;
  expected: unknown;
  found: unknown;
}

export interface DeepReport {
  team: string;
  records: number;
  problems: RecordProblem[];
  differences: Difference[];
  /** Closed days whose summary is not what it was when it closed, and closes the journal does not match. */
  closedPeriods: string[];
}

/** The close in force for each record: the latest day closed before it was decided. */
function closedThroughAt(closes: readonly Pick<ClosedPeriodDoc, "seq" | "through">[]): (seq: number) => string | null {
  const sorted = [...closes].sort((a, b) => a.seq - b.seq);
  return (seq) => {
    let through: string | null = null;
    for (const c of sorted) if (c.seq < seq && (through === null || c.through > through)) through = c.through;
    return through;
  };
}

/** Step 1 and 2 over records in seq order: pure, for tests and the CLI alike. */
export function replayJournal(
  records: readonly JournalRecord[],
  settings: TeamSettings,
  closes: readonly Pick<ClosedPeriodDoc, "seq" | "through">[] = [],
): RecordProblem[] {
  const problems: RecordProblem[] = [];
  const closedThrough = closedThroughAt(closes);
  const state = emptyState();
  const createdBySale = new Set<string>();
  for (const r of records) {
    const problem = (reason: string): void => void problems.push({ seq: r.seq, id: r._id, reason });
    if (r._id !== teamKey(r.team, r.entryId)) problem(`_id does not match team and entryId ${r.entryId}`);
    if (r.status === "invalid") {
      if (r.hash !== sha256Hex(`invalid\n${r.reason ?? ""}`)) problem("hash does not match the invalid entry's reason");
      if (r.entry !== null || r.effects.length > 0) problem("an invalid record carries an entry or effects");
      putOwn(state.decided, r.entryId, { hash: r.hash, status: "invalid" });
      continue;
    }
    if (r.entry === null) {
      problem(`a ${r.status} record without its entry`);
      continue;
    }
    if (r.hash !== entryHash(r.entry)) problem("hash does not match the entry (entry changed)");
    if (r.entry.id !== r.entryId || r.entry.kind !== r.kind) problem("entry id or kind differs from the record's");
    if (r.entry.kind === "sale") assumeCatalog(state, r, createdBySale);
    // Where the entry came from decides grants and allowance claims, as it did in the batch.
    const result = decideInto(state, [{ key: r.entryId, raw: r.entry, scope: r.provenance.segment, owner: r.provenance.device }], settings, r.decidedAt, closedThrough(r.seq));
    const v = result.verdicts.find((x) => x.id === r.entryId);
    const expired = r.entry.kind === "payment" || r.entry.kind === "void" ? `Invoice not found for ${r.entry.kind}: ${r.entry.invoice}` : null;
    if (v?.status === "deferred" && r.status === "rejected" && r.reason === expired) {
      // Its invoice never came: rejected when its wait expired, a rule of time, not of the journal.
      deleteOwn(state.deferred, r.entryId);
      putOwn(state.decided, r.entryId, { hash: r.hash, status: "rejected" });
      continue;
    }
    if (!v) {
      problem("the rules skip this entry: decided twice");
      continue;
    }
    if (v.status !== r.status) problem(`status: the rules give ${v.status}${v.reason ? ` (${v.reason})` : ""}, the record says ${r.status}`);
    else if ((v.reason ?? null) !== r.reason) problem(`reason: the rules give ${JSON.stringify(v.reason ?? null)}, the record says ${JSON.stringify(r.reason)}`);
    else if (canonicalJson(v.flags ?? []) !== canonicalJson(r.flags)) problem(`flags: the rules give ${canonicalJson(v.flags ?? [])}, the record says ${canonicalJson(r.flags)}`);
    else if (canonicalJson(v.effects) !== canonicalJson(r.effects)) problem(`effects: the rules give ${canonicalJson(v.effects)}, the record says ${canonicalJson(r.effects)}`);
    else if (canonicalJson(v.booking ?? null) !== canonicalJson(r.booking ?? null)) {
      problem(`booking: the rules and the closes give ${canonicalJson(v.booking ?? null)}, the record says ${canonicalJson(r.booking ?? null)}`);
    }
    for (const e of r.effects) if (e.type === "item") createdBySale.add(e.item.id);
    if (v.status !== r.status) {
      // Go on from what the journal says happened, so one bad record is named once, not as a cascade.
      putOwn(state.decided, r.entryId, { hash: r.hash, status: r.status });
    }
  }
  return problems;
}

/** The catalog as the sale's record shows it was (module comment). */
function assumeCatalog(state: LedgerState, r: JournalRecord, createdBySale: ReadonlySet<string>): void {
  if (r.entry?.kind !== "sale") return;
  const reason = r.reason ?? "";
  const created = new Set(r.effects.flatMap((e) => (e.type === "item" ? [e.item.id] : [])));
  for (const line of r.entry.lines) {
    if (createdBySale.has(line.item)) continue; // the journal itself created it
    const known = getOwn(state.items, line.item);
    if (reason === `item ${line.item} is not active`) putOwn(state.items, line.item, { name: known?.name ?? "", price: line.price, active: false });
    else if (reason === `Item not found for sale: ${line.item}` || created.has(line.item)) deleteOwn(state.items, line.item);
    else if (line.name !== undefined && r.status === "rejected" && !reason.includes(`item ${line.item}:`)) continue;
    else if (!known?.active) putOwn(state.items, line.item, { name: known?.name ?? line.name ?? "", price: line.price, active: true });
  }
}

type Doc = { _id: string } & Record<string, unknown>;

/** Documents compared field by field (canonical JSON of each value); every difference named. */
export function compareDocs(collection: string, expected: Iterable<Doc>, found: Iterable<Doc>, out: Difference[]): void {
  const want = new Map<string, Doc>();
  for (const d of expected) want.set(d._id, d);
  const have = new Map<string, Doc>();
  for (const d of found) have.set(d._id, d);
  for (const [id, e] of want) {
    const f = have.get(id);
    if (!f) {
      out.push({ collection, id, field: "(document)", expected: "present", found: "missing" });
      continue;
    }
    for (const field of new Set([...Object.keys(e), ...Object.keys(f)])) {
      const ev = e[field];
      const fv = f[field];
      if ((ev === undefined ? undefined : canonicalJson(ev)) !== (fv === undefined ? undefined : canonicalJson(fv))) {
        out.push({ collection, id, field, expected: ev ?? null, found: fv ?? null });
      }
    }
  }
  for (const id of have.keys()) if (!want.has(id)) out.push({ collection, id, field: "(document)", expected: "absent", found: "present" });
}

/** Deep verification of one team: reads only. */
export async function deepVerify(c: Collections, db: Db, team: string): Promise<DeepReport> {
  const teamDoc = await db.collection<{ _id: string; settings?: unknown }>("teams").findOne({ _id: team });
  const parsed = parseSettings(teamDoc?.settings);
  const settings = parsed.ok ? parsed.settings : { ...DEFAULT_SETTINGS };
  const records = await c.journal.find({ team }).sort({ seq: 1 }).toArray();
  const closes = await c.closedPeriods.find({ team }).sort({ through: 1 }).toArray();
  const problems = replayJournal(records, settings, closes);
  if (!parsed.ok) problems.unshift({ seq: 0, id: team, reason: `team settings unreadable (${parsed.reason}); replayed with the defaults` });

  const p = projectRecords(team, records);
  const { days, customers } = partsUpdates(touchedBy(team, records));
  const summaries = [...days].map(([day, u]) => daySummary(team, day, mergeParts(undefined, u, "day")));
  const balances = [...customers].map(([customer, u]) => customerBalance(team, customer, mergeParts(undefined, u, "customer")));

  const differences: Difference[] = [];
  const found = async (name: keyof Collections): Promise<Doc[]> => (await c[name].find({ team } as never).toArray()) as unknown as Doc[];
  const pairs: [string, keyof Collections, Iterable<unknown>][] = [
    ["decided_entries", "decided", p.decided.values()],
    ["stock_levels", "stock", p.stock.values()],
    ["offline_allowances", "allowances", p.allowances.values()],
    ["stock_movements", "movements", p.movements.values()],
    ["invoices", "invoices", p.invoices.values()],
    ["payments", "payments", p.payments.values()],
    ["purchase_history", "purchases", p.purchases.values()],
    ["rejections", "rejections", p.rejections.values()],
    ["quarantine", "quarantine", p.quarantine.values()],
    ["daily_summaries", "summaries", summaries],
    ["customer_balances", "balances", balances],
  ];
  for (const [collection, name, expected] of pairs) compareDocs(collection, expected as Iterable<Doc>, await found(name), differences);
  // Items a sale line created: the catalog's own version wins when it has the item (applyRecords).
  const items = (await found("items")).filter((d) => d.source === "sale" || p.items.has(d._id));
  for (const [id, e] of p.items) {
    const f = items.find((d) => d._id === id);
    if (!f) differences.push({ collection: "items", id, field: "(document)", expected: "present", found: "missing" });
    else if (f.source === "sale") compareDocs("items", [{ ...e, updatedAt: f.updatedAt } as unknown as Doc], [f], differences);
  }
  for (const f of items) if (f.source === "sale" && !p.items.has(f._id)) differences.push({ collection: "items", id: f._id, field: "(document)", expected: "absent", found: "present" });
  return { team, records: records.length, problems, differences, closedPeriods: checkClosedDays(records, closes, summaries) };
}

const FIGURES = ["salesCount", "voidCount", "revenue", "paymentsReceived", "outstanding"] as const satisfies readonly (keyof SummaryFigures)[];

/**
 * Pure: each closed day's summary as the journal implies it (`implied`) against the figures its
 * close stored, a day that had no summary when it closed and has one now, and each close's head
 * against the record it names.
 */
export function checkClosedDays(
  records: readonly Pick<JournalRecord, "seq" | "recordHash">[],
  closes: readonly ClosedPeriodDoc[],
  implied: readonly DailySummaryDoc[],
): string[] {
  const out: string[] = [];
  const hashAt = new Map(records.map((r) => [r.seq, r.recordHash]));
  const atClose = new Map<string, { figures: SummaryFigures; close: ClosedPeriodDoc }>();
  let through: string | null = null;
  for (const close of closes) {
    const head = close.seq === 0 ? "" : hashAt.get(close.seq);
    if (head !== close.head) out.push(`CLOSE ${close.through}: closed at seq ${close.seq} with head ${close.head.slice(0, 16)}, the journal has ${head === undefined ? "no such record" : head.slice(0, 16)}`);
    for (const figures of close.summaries) atClose.set(figures.day, { figures, close });
    if (through === null || close.through > through) through = close.through;
  }
  if (through === null) return out;
  const last = through;
  const now = new Map<string, SummaryFigures>(implied.map((s) => [s.day, s]));
  const days = new Set([...atClose.keys(), ...[...now.keys()].filter((d) => d <= last)]);
  for (const day of [...days].sort()) {
    const then = atClose.get(day);
    const current = now.get(day);
    for (const f of FIGURES) {
      const was = then?.figures[f] ?? 0;
      const is = current?.[f] ?? 0;
      if (was === is) continue;
      const when = then ? `closed through ${then.close.through} at seq ${then.close.seq}` : "no summary when it closed";
      out.push(`CLOSED-DAY-CHANGED ${day} ${f}: ${was} (${when}), the journal now gives ${is}`);
    }
  }
  return out;
}
