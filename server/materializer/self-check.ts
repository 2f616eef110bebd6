/**
 * Self-check: the daily summaries and customer balances that recent journal records touched,
 * compared with what the whole journal implies for them, and repaired from it when they differ.
 * Catch-up repairs what a crash left behind the projected mark; this catches what nothing else
 * would (a projection write lost or changed by hand, a bug), before an auditor does.
 */
import type { Logger } from "../log.js";
import { customerBalance, customerPartsId, daySummary, dayPartsId, mergeParts, partsUpdates, touchedBy, type PartsUpdate } from "./aggregates.js";
import {
  teamKey, type AggregateParts, type AggregatePartsDoc, type Collections, type CustomerBalanceDoc, type DailySummaryDoc, type InvoiceDoc, type JournalRecord, type PaymentDoc,
  type PurchaseDoc,
} from "./collections.js";
import type { MaterializerMetrics } from "./metrics.js";
import { findByIds, upsertEach, type ReadOptions } from "./write-set.js";

export interface SelfCheckDifference {
  /** `_id` of the document that differed (or was missing). */
  id: string;
  kind: "parts" | "summary" | "balance";
  stored: unknown;
  expected: unknown;
}

export interface SelfCheckResult {
  team: string;
  at: string;
  /** The check covers journal records up to this seq (the projected mark when it began). */
  seq: number;
  days: number;
  customers: number;
  differences: SelfCheckDifference[];
}

/**
 * Checks the aggregates touched by the last `recent` projected records. Reads the team's journal
 * once (a scan on FerretDB: this is why it runs on a schedule, not per batch), and must not run
 * beside a batch of the same team (TeamWorker runs it between batches).
 */
export async function selfCheck(
  c: Collections,
  team: string,
  opts: { recent: number; read?: ReadOptions; now?: string },
): Promise<SelfCheckResult> {
  const read = opts.read ?? {};
  const at = opts.now ?? new Date().toISOString();
  const seq = (await c.teamState.findOne({ _id: team }))?.projectedSeq ?? 0;
  const result: SelfCheckResult = { team, at, seq, days: 0, customers: 0, differences: [] };
  if (seq === 0) return result;

  const recent = await c.journal.find({ team, seq: { $gt: Math.max(0, seq - opts.recent), $lte: seq } }, { projection: { entryId: 1, effects: 1, seq: 1, booking: 1 } }).toArray();
  const wanted = partsUpdates(touchedBy(team, recent));
  if (wanted.days.size === 0 && wanted.customers.size === 0) return result;

  // Every record up to the mark, reduced to updates of the wanted days and customers only.
  const days = new Map<string, PartsUpdate>([...wanted.days.keys()].map((k) => [k, emptyUpdate()]));
  const customers = new Map<string, PartsUpdate>([...wanted.customers.keys()].map((k) => [k, emptyUpdate()]));
  const PAGE = 2000;
  let page: Pick<JournalRecord, "entryId" | "effects" | "seq" | "booking">[] = [];
  const flush = (): void => {
    const u = partsUpdates(touchedBy(team, page));
    for (const [k, v] of u.days) if (days.has(k)) fold(days.get(k)!, v);
    for (const [k, v] of u.customers) if (customers.has(k)) fold(customers.get(k)!, v);
    page = [];
  };
  for await (const r of c.journal.find({ team, seq: { $lte: seq } }, { projection: { entryId: 1, effects: 1, seq: 1, booking: 1 } }).sort({ seq: 1 })) {
    page.push(r);
    if (page.length >= PAGE) flush();
  }
  flush();

  const parts: AggregatePartsDoc[] = [];
  const summaries: DailySummaryDoc[] = [];
  const balances: CustomerBalanceDoc[] = [];
  for (const [day, u] of days) {
    const merged = mergeParts(undefined, u, "day");
    parts.push({ _id: dayPartsId(team, day), team, parts: JSON.stringify(merged) });
    summaries.push(daySummary(team, day, merged));
  }
  for (const [customer, u] of customers) {
    const merged = mergeParts(undefined, u, "customer");
    parts.push({ _id: customerPartsId(team, customer), team, parts: JSON.stringify(merged) });
    balances.push(customerBalance(team, customer, merged));
  }
  result.days = days.size;
  result.customers = customers.size;

  const storedParts = new Map((await findByIds(c.parts, parts.map((p) => p._id), read)).map((p) => [p._id, p]));
  const badParts = parts.filter((p) => storedParts.get(p._id)?.parts !== p.parts);
  for (const p of badParts) {
    const stored = storedParts.get(p._id);
    result.differences.push({ id: p._id, kind: "parts", stored: stored ? counts(JSON.parse(stored.parts) as AggregateParts) : null, expected: counts(JSON.parse(p.parts) as AggregateParts) });
  }
  const badSummaries = await differing(c.summaries as never, summaries, "summary", read, result);
  const badBalances = await differing(c.balances as never, balances, "balance", read, result);

  // Repair from the journal: parts first, as a batch writes them.
  await upsertEach(c.parts, badParts, read.session);
  await Promise.all([upsertEach(c.summaries, badSummaries, read.session), upsertEach(c.balances, badBalances, read.session)]);
  await c.teamState.updateOne(
    { _id: team },
    { $set: { selfCheck: { at, seq, days: result.days, customers: result.customers, differences: result.differences.length } } },
  );
  return result;
}

/** Runs a self-check and reports it: a log line, metrics, and the team's state (for /readyz). */
export async function runSelfCheck(
  c: Collections,
  team: string,
  opts: { recent: number; read?: ReadOptions; logger: Logger; metrics: MaterializerMetrics },
): Promise<SelfCheckResult> {
  const started = Date.now();
  const r = await selfCheck(c, team, opts);
  opts.metrics.selfChecks.inc();
  const detail = { team, seq: r.seq, days: r.days, customers: r.customers, ms: Date.now() - started };
  if (r.differences.length === 0) {
    opts.logger.info(detail, "self-check: summaries and balances agree with the journal");
    return r;
  }
  for (const d of r.differences) opts.metrics.selfCheckDifferences.inc({ kind: d.kind });
  opts.logger.warn({ ...detail, differences: r.differences }, "self-check: repaired summaries and balances that differed from the journal");
  return r;
}

function emptyUpdate(): PartsUpdate {
  return { invoices: new Map(), payments: new Map(), purchases: new Map() };
}

/** Later updates replace earlier ones by id, as merging them one after the other would. */
function fold(into: PartsUpdate, u: PartsUpdate): void {
  for (const [k, v] of u.invoices) into.invoices.set(k, v);
  for (const [k, v] of u.payments) into.payments.set(k, v);
  for (const [k, v] of u.purchases) into.purchases.set(k, v);
  for (const [k, v] of u.adjustments ?? []) (into.adjustments ??= new Map()).set(k, v);
}

function counts(p: AggregateParts): { invoices: number; payments: number; purchases: number } {
  return { invoices: p.invoices.length, payments: p.payments.length, purchases: p.purchases.length };
}

async function differing<T extends { _id: string }>(
  coll: Parameters<typeof findByIds<T & AggregatePartsDoc>>[0],
  expected: readonly T[],
  kind: "summary" | "balance",
  read: ReadOptions,
  result: SelfCheckResult,
): Promise<T[]> {
  const stored = new Map((await findByIds(coll, expected.map((d) => d._id), read)).map((d) => [d._id, d as unknown as Record<string, unknown>]));
  const out: T[] = [];
  for (const e of expected) {
    const s = stored.get(e._id);
    const want = e as unknown as Record<string, unknown>;
    const same = s !== undefined && Object.keys(want).every((k) => s[k] === want[k]);
    if (same) continue;
    out.push(e);
    result.differences.push({ id: e._id, kind, stored: s ? figures(s) : null, expected: figures(want) });
  }
  return out;
}

/** The figures of a summary or balance, without its keys. */
function figures(d: Record<string, unknown>): Record<string, unknown> {
  const { _id: _i, team: _t, day: _d, customer: _c, ...rest } = d;
  return rest;
}
