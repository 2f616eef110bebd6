/**
 * One batch of a team's new ledger entries, decided and recorded journal first: load the state
 * the batch touches, decide it with the shared rules, append the final verdicts to the journal,
 * then bring the projections up to it. A crash between any two steps is repaired by `catchUp`
 * (projections) and by deciding the undecided rest again (the journal skips decided ids).
 */
import type { ClientSession, MongoClient } from "mongodb";
import {
  allowanceKey,
  decideBatch,
  keysTouched,
  parseEntry,
  putOwn,
  emptyState,
  type InvoiceState,
  type ItemState,
  type LedgerEntry,
  type LedgerState,
  type PaymentEntry,
  type Tamper,
  type TeamSettings,
  type Verdict,
  type VoidEntry,
} from "../../shared/domain/index.js";
import { teamKey, type Collections, type JournalRecord, type Provenance } from "./collections.js";
import { chainHead, seal, type ChainHead, type UnsealedRecord } from "./journal.js";
import { applyRecords, markProjected, recomputeAggregates } from "./projections.js";
import { pausePoint } from "./pause-points.js";
import { submittedText } from "./submitted.js";
import { findByIds, type ReadOptions } from "./write-set.js";

export interface BatchEntry {
  key: string;
  raw: unknown;
  provenance: Provenance;
}

export interface BatchContext {
  c: Collections;
  /** Given when the server runs transactions: a batch then commits as a whole. */
  client?: MongoClient | undefined;
  transactions: boolean;
  /**
   * The last journal record per team, kept between batches: finding it is a sort over the
   * journal, which FerretDB runs as a scan. Dropped whenever a batch fails.
   */
  heads?: Map<string, ChainHead>;
  /** See DatabaseFeatures.indexedQueries. */
  pointLookups?: boolean;
  /**
   * Ids of every entry the journal has decided, per team, loaded at a team's first batch and
   * kept up to date: an entry not in the set is new and is not looked up, and looking up every
   * new entry was most of a batch's reads. Dropped whenever a batch fails. Without it, every
   * entry is looked up.
   */
  decidedIds?: Map<string, Set<string>>;
  /** Throws unless this process still holds the team's lease (fencing, leases.ts); before every journal write. */
  fence?: (team: string, session?: ClientSession) => Promise<void>;
}

export interface BatchOutcome {
  /** Final verdicts, as journaled. */
  records: JournalRecord[];
  /** Entries now waiting for their invoice. */
  deferred: { verdict: Verdict; provenance: Provenance }[];
  tampered: (Tamper & { provenance: Provenance })[];
  /** Milliseconds per phase, for the batch log line. */
  phases: Record<string, number>;
}

export async function processBatch(
  ctx: BatchContext,
  team: string,
  batch: readonly BatchEntry[],
  settings: TeamSettings,
  catalogItems: ReadonlyMap<string, ItemState>,
  now: string,
  /** The team's last closed day (periods.ts); null when none is. */
  closedThrough: string | null = null,
): Promise<BatchOutcome> {
  const { c } = ctx;
  const provenanceOf = new Map<string, Provenance>();
  for (const b of batch) provenanceOf.set(b.key, b.provenance);
  const rawOf = new Map<string, unknown>();
  for (const b of batch) rawOf.set(b.key, b.raw);

  const phases: Record<string, number> = {};
  let mark = Date.now();
  const phase = (name: string): void => {
    const now = Date.now();
    phases[name] = (phases[name] ?? 0) + now - mark;
    mark = now;
  };
  const known = await decidedIdsOf(ctx, team);
  const { state, deferredProvenance } = await loadState(c, team, batch, catalogItems, { pointLookups: ctx.pointLookups }, known);
  phase("load");
  for (const [id, p] of deferredProvenance) if (!provenanceOf.has(id)) provenanceOf.set(id, p);

  // Atomic groups are scoped to the segment the entries were read from.
  const result = decideBatch(state, batch.map((b) => ({ key: b.key, raw: b.raw, scope: b.provenance.segment, owner: b.provenance.device })), settings, now, closedThrough);
  phase("decide");
  const provenance = (id: string): Provenance => provenanceOf.get(id) ?? { segment: "", device: null, change: null, actor: null };

  const finals = result.verdicts.filter((v) => v.status !== "deferred");
  const unsealed: UnsealedRecord[] = finals.map((v) => ({
    _id: teamKey(team, v.id),
    team,
    entryId: v.id,
    kind: v.entry?.kind ?? null,
    status: v.status as JournalRecord["status"],
    reason: v.reason ?? null,
    flags: v.flags ?? [],
    hash: v.hash,
    entry: v.entry ?? null,
    // An invalid entry has no parsed content: what was submitted is kept, so it can be seen.
    ...(v.status === "invalid" ? { submitted: submittedText(rawOf.get(v.id)) } : {}),
    effects: v.effects,
    ...(v.booking ? { booking: v.booking } : {}),
    provenance: provenance(v.id),
    decidedAt: now,
  }));
  const deferred = result.verdicts
    .filter((v) => v.status === "deferred" && v.entry !== undefined)
    .map((verdict) => ({ verdict, provenance: provenance(verdict.id) }));

  const write = async (session?: ClientSession): Promise<JournalRecord[]> => {
    const opts = session ? { session } : {};
    if (unsealed.length > 0 || deferred.length > 0) await ctx.fence?.(team, session);
    // Deferred entries are not final: kept apart, before the journal, so a crash after the
    // journal write still finds them (and then drops those the journal has decided).
    for (const { verdict, provenance: p } of deferred) {
      const entry = verdict.entry as PaymentEntry | VoidEntry;
      await c.deferred.replaceOne(
        { _id: teamKey(team, verdict.id) },
        { team, entryId: verdict.id, entry, hash: verdict.hash, since: now, provenance: p },
        { upsert: true, ...opts },
      );
    }
    const head = ctx.heads?.get(team) ?? (await chainHead(c, team));
    const records = seal(head, unsealed);
    if (records.length > 0) {
      await c.journal.insertMany(records, { ordered: true, ...opts });
      // A kill before this write leaves the head shown one batch behind until catch-up sets it.
      await c.teamState.updateOne({ _id: team }, { $set: { journalSeq: records[records.length - 1]!.seq, lastDecisionAt: now } }, { upsert: true, ...opts });
      phase("journal");
      await pausePoint("after-journal");
      await c.deferred.deleteMany({ _id: { $in: records.map((r) => r._id) } }, opts);
      const touched = await applyRecords(c, team, records, { session, pointLookups: ctx.pointLookups });
      phase("project");
      await pausePoint("after-project");
      await recomputeAggregates(c, team, touched, { session, pointLookups: ctx.pointLookups });
      phase("aggregate");
      await pausePoint("before-mark");
      await markProjected(c, team, records[records.length - 1]!.seq, now, session);
    }
    return records;
  };

  let records: JournalRecord[];
  try {
    if (ctx.transactions && ctx.client) {
      const session = ctx.client.startSession();
      try {
        records = await session.withTransaction(() => write(session));
      } finally {
        await session.endSession();
      }
    } else {
      records = await write();
    }
  } catch (err) {
    ctx.heads?.delete(team);
    ctx.decidedIds?.delete(team);
    throw err;
  }
  const last = records.at(-1);
  if (last) ctx.heads?.set(team, { seq: last.seq, recordHash: last.recordHash });
  for (const r of records) known?.add(r.entryId);

  const tampered = result.tampered.map((t) => ({ ...t, provenance: provenance(t.id) }));
  if (tampered.length > 0) {
    await c.tampers.insertMany(
      tampered.map((t) => ({
        _id: teamKey(team, `${t.id}:${t.newHash}`),
        team,
        entryId: t.id,
        decidedHash: t.decidedHash,
        newHash: t.newHash,
        segment: t.provenance.segment,
        device: t.provenance.device,
        seenAt: now,
      })),
      { ordered: false },
    ).catch((err: { code?: number }) => {
      // The same changed content seen again is the same event.
      if (err.code !== 11000) throw err;
    });
  }
  return { records, deferred, tampered, phases };
}

async function decidedIdsOf(ctx: BatchContext, team: string): Promise<Set<string> | undefined> {
  if (!ctx.decidedIds) return undefined;
  let ids = ctx.decidedIds.get(team);
  if (!ids) {
    ids = new Set();
    for await (const d of ctx.c.decided.find({ team }, { projection: { entryId: 1 } })) ids.add(d.entryId);
    ctx.decidedIds.set(team, ids);
  }
  return ids;
}

export interface LoadedState {
  state: LedgerState;
  deferredProvenance: Map<string, Provenance>;
}

/** Reads from MongoDB only what the batch can touch (shared/domain keysTouched). Exported for the HTTP gateway, which pre-validates a batch against the same state. */
export async function loadState(
  c: Collections,
  team: string,
  batch: readonly BatchEntry[],
  catalogItems: ReadonlyMap<string, ItemState>,
  read: ReadOptions = {},
  /** When given, only entries in it can have been decided (BatchContext.decidedIds). */
  decidedIds?: ReadonlySet<string>,
): Promise<LoadedState> {
  const state = emptyState();
  const deferredProvenance = new Map<string, Provenance>();

  const entries: LedgerEntry[] = [];
  // Invalid entries are journaled too: a segment read again after a crash (its checkpoint not
  // yet saved) must find them decided, or they are journaled twice and the batch never passes.
  const invalid: string[] = [];
  for (const b of batch) {
    const parsed = parseEntry(b.key, b.raw);
    if (parsed.ok) entries.push(parsed.entry);
    else invalid.push(b.key);
  }

  // Deferred entries are read whole (a small set), less any the journal decided already.
  const waiting = await c.deferred.find({ team }).toArray();
  const alreadyFinal = new Set(
    (await findByIds(c.decided, waiting.map((d) => d._id), read)).map((r) => r.entryId),
  );
  for (const d of waiting) {
    if (alreadyFinal.has(d.entryId)) continue;
    putOwn(state.deferred, d.entryId, { entry: d.entry, hash: d.hash, since: d.since });
    putOwn(state.decided, d.entryId, { hash: d.hash, status: "deferred" });
    entries.push(d.entry);
    deferredProvenance.set(d.entryId, d.provenance);
  }

  const first = keysTouched(entries);
  // A sale's own id is among the invoices to read; a sale the journal never decided has none.
  const undecided = new Set(decidedIds ? entries.filter((e) => !decidedIds.has(e.id)).map((e) => e.id) : []);
  const invoices = await loadInvoices(c, team, first.invoices.filter((id) => !undecided.has(id)), read);
  for (const [id, inv] of invoices) putOwn(state.invoices, id, inv);
  const keys = keysTouched(entries, state.invoices);

  const ids = [...keys.entries, ...invalid].filter((id) => !decidedIds || decidedIds.has(id)).map((id) => teamKey(team, id));
  for (const r of await findByIds(c.decided, ids, read)) {
    putOwn(state.decided, r.entryId, { hash: r.hash, status: r.status });
  }

  // Stock levels and items are as many as the catalog has items, so one `$in` (a scan of that
  // small collection on FerretDB) beats a lookup per item.
  const itemKeys = keys.items.map((id) => teamKey(team, id));
  const catalogRead = { ...read, pointLookups: false };
  for (const s of await findByIds(c.stock, itemKeys, catalogRead)) putOwn(state.stock, s.item, s.level);
  // Every device's allowance of the items touched: their sum is what no other sale may take.
  if (keys.items.length > 0) {
    for (const a of await c.allowances.find({ team, item: { $in: keys.items } }).toArray()) {
      putOwn((state.allowances ??= {}), allowanceKey(a.item, a.device), { item: a.item, device: a.device, granted: a.granted, honoured: a.honoured });
    }
  }
  for (const it of await findByIds(c.items, itemKeys, catalogRead)) {
    putOwn(state.items, it.id, { name: it.name, price: it.price, active: it.active });
  }
  // The live catalog document wins over what was projected from it earlier.
  for (const id of keys.items) {
    const item = catalogItems.get(id);
    if (item) putOwn(state.items, id, item);
  }
  return { state, deferredProvenance };
}

async function loadInvoices(c: Collections, team: string, ids: readonly string[], read: ReadOptions): Promise<Map<string, InvoiceState>> {
  const out = new Map<string, InvoiceState>();
  if (ids.length === 0) return out;
  for (const inv of await findByIds(c.invoices, ids.map((id) => teamKey(team, id)), read)) {
    out.set(inv.id, {
      total: inv.total, paid: inv.paid, initialPaid: inv.initialPaid, refundDue: inv.refundDue, status: inv.status,
      customer: inv.customer, at: inv.at, day: inv.day, device: inv.device, user: inv.user, lines: inv.lines,
      ...(inv.bookedOn !== undefined ? { bookedOn: inv.bookedOn } : {}),
    });
  }
  // A sale the journal rejected is no invoice, but payments against it must learn why.
  const missing = ids.filter((id) => !out.has(id)).map((id) => teamKey(team, id));
  if (missing.length > 0) {
    for (const r of await findByIds(c.decided, missing, read)) {
      if (r.kind !== "sale" || r.status !== "rejected") continue;
      // Only the status matters to what comes later (payments and voids are refused).
      out.set(r.entryId, {
        total: 0, paid: 0, initialPaid: 0, refundDue: 0, status: "rejected", customer: null,
        at: "", day: "", device: "", user: "", lines: [],
      });
    }
  }
  return out;
}

