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
import { teamKey, type Collections, type InvoiceDoc, type JournalRecord, type Provenance } from "./collections.js";
import { chainHead, seal, type ChainHead, type UnsealedRecord } from "./journal.js";
import { markProjected, projectionOf, recomputeAggregates, writeProjection, type ProjectedRecords } from "./projections.js";
import { ProjectionLane, type PendingProjection, type QueuedProjections } from "./projection-lane.js";
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
   * Every entry the journal has decided, per team, with what a batch needs of its verdict;
   * loaded at a team's first batch and kept up to date: an entry not in it is new, and one in it
   * is not looked up (looking verdicts up was most of a batch's reads). Dropped whenever a batch
   * fails. Without it, every entry is looked up.
   */
  decidedIds?: Map<string, Map<string, KnownVerdict>>;
  /**
   * Invoices as this process last projected them, per team (bounded, see INVOICES_KEPT): a
   * payment or void reads its invoice from here instead of MongoDB. Safe because one process
   * holds a team's lease and every write of an invoice goes through its batches or its
   * catch-up, which runs only after a failed batch, when this is dropped.
   */
  invoices?: Map<string, Map<string, InvoiceState>>;
  /**
   * When given (and without transactions), a team's projections are written behind its journal
   * (projection-lane.ts): a batch returns once its records are journaled and its verdicts
   * published. Whoever reads projections or writes them otherwise drains the team's lane first.
   */
  lanes?: Map<string, ProjectionLane>;
  /** Throws unless this process still holds the team's lease (fencing, leases.ts); before every journal write. */
  fence?: (team: string, session?: ClientSession) => Promise<void>;
}

/** What a batch needs of an entry's verdict once it is journaled. */
export interface KnownVerdict {
  hash: string;
  status: JournalRecord["status"];
  kind: JournalRecord["kind"];
}

/** Invoices kept per team in BatchContext.invoices; the oldest touched go first. */
const INVOICES_KEPT = 20_000;

/**
 * Called once a batch's verdicts are in the journal (and, with transactions, committed), before
 * its projections are written: verdicts are published from the journal, not from projections.
 */
export type JournaledHook = (records: readonly JournalRecord[], deferred: BatchOutcome["deferred"]) => Promise<void>;

export interface BatchOutcome {
  /** Final verdicts, as journaled. */
  records: JournalRecord[];
  /** Entries now waiting for their invoice. */
  deferred: { verdict: Verdict; provenance: Provenance }[];
  tampered: (Tamper & { provenance: Provenance })[];
  /** Milliseconds per phase, for the batch log line (`project` and `aggregate` once `projected`). */
  phases: Record<string, number>;
  /** Resolves when the batch's projections are written, or skipped after a failure (BatchContext.lanes); never rejects. */
  projected: Promise<void>;
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
  journaled?: JournaledHook,
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
  const lane = ctx.lanes && !ctx.transactions ? laneOf(ctx.lanes, team) : undefined;
  if (lane?.failed) {
    // An earlier batch's projections failed: nothing is decided before a catch-up.
    await lane.drain().catch((err: unknown) => {
      forgetTeam(ctx, team);
      throw err;
    });
  }
  const known = await decidedIdsOf(ctx, team);
  const invoiceCache = invoicesOf(ctx, team);
  const { state, deferredProvenance } = await loadState(c, team, batch, catalogItems, { pointLookups: ctx.pointLookups }, known, invoiceCache, lane);
  phase("load");
  const waitingIds = new Set(Object.keys(state.deferred));
  // Lines of the invoices the batch read (older sales'), as loaded: the projection need not read them again.
  const linesOf = new Map(Object.entries(state.invoices).map(([id, inv]) => [id, inv.lines.map((l) => ({ ...l }))]));
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

  let projected = Promise.resolve();
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
      await c.journalHeads.updateOne({ _id: team }, { $set: { seq: records[records.length - 1]!.seq, decidedAt: now } }, { upsert: true, ...opts });
      phase("journal");
      await pausePoint("after-journal");
      // Only entries that were waiting can be in `deferred` (this batch's deferred are not final).
      const wasWaiting = records.filter((r) => waitingIds.has(r.entryId));
      if (wasWaiting.length > 0) await c.deferred.deleteMany({ _id: { $in: wasWaiting.map((r) => r._id) } }, opts);
    }
    const publish = async (): Promise<void> => {
      if (session || !journaled) return;
      await journaled(records, deferred);
      phase("publish");
    };
    if (records.length === 0) {
      await publish();
      return records;
    }
    const projection = await projectionOf(c, team, records, { session, pointLookups: ctx.pointLookups }, linesOf);
    rememberInvoices(invoiceCache, projection.invoices.values());
    const lastSeq = records[records.length - 1]!.seq;
    const project = async (): Promise<void> => {
      let t = Date.now();
      const touched = await writeProjection(c, projection, session);
      phases.project = Date.now() - t;
      await pausePoint("after-project");
      t = Date.now();
      await recomputeAggregates(c, team, touched, { session, pointLookups: ctx.pointLookups });
      phases.aggregate = Date.now() - t;
      await pausePoint("before-mark");
      await markProjected(c, team, lastSeq, now, session);
    };
    if (lane) {
      // Queued first, so the database writes them while this process publishes (Automerge work).
      projected = lane.enqueue(pendingOf(projection), project);
      await publish();
    } else {
      await publish();
      await project();
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
      if (journaled) await journaled(records, deferred);
    } else {
      records = await write();
    }
  } catch (err) {
    forgetTeam(ctx, team);
    throw err;
  }
  const last = records.at(-1);
  if (last) ctx.heads?.set(team, { seq: last.seq, recordHash: last.recordHash });
  for (const r of records) known?.set(r.entryId, { hash: r.hash, status: r.status, kind: r.kind });

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
  return { records, deferred, tampered, phases, projected };
}

/** What is kept of a team between batches, dropped when a batch fails (read again from MongoDB). */
function forgetTeam(ctx: BatchContext, team: string): void {
  ctx.heads?.delete(team);
  ctx.decidedIds?.delete(team);
  ctx.invoices?.delete(team);
}

function laneOf(lanes: Map<string, ProjectionLane>, team: string): ProjectionLane {
  let lane = lanes.get(team);
  if (!lane) lanes.set(team, (lane = new ProjectionLane()));
  return lane;
}

/** What a batch's projections set, as the next batch reads it (projection-lane.ts). */
function pendingOf(p: ProjectedRecords): PendingProjection {
  return {
    stock: new Map([...p.stock.values()].map((s) => [s.item, s.level])),
    invoices: new Map([...p.invoices.values()].map((inv) => [inv.id, invoiceState(inv)])),
    items: new Map([...p.items.values()].map((it) => [it.id, { name: it.name, price: it.price, active: it.active }])),
    allowances: new Map([...p.allowances.values()].map((a) => [allowanceKey(a.item, a.device), { item: a.item, device: a.device, granted: a.granted, honoured: a.honoured }])),
  };
}

async function decidedIdsOf(ctx: BatchContext, team: string): Promise<Map<string, KnownVerdict> | undefined> {
  if (!ctx.decidedIds) return undefined;
  let known = ctx.decidedIds.get(team);
  if (!known) {
    known = new Map();
    for await (const d of ctx.c.decided.find({ team }, { projection: { entryId: 1, hash: 1, status: 1, kind: 1 } })) {
      known.set(d.entryId, { hash: d.hash, status: d.status, kind: d.kind });
    }
    ctx.decidedIds.set(team, known);
  }
  return known;
}

function invoicesOf(ctx: BatchContext, team: string): Map<string, InvoiceState> | undefined {
  if (!ctx.invoices) return undefined;
  let kept = ctx.invoices.get(team);
  if (!kept) ctx.invoices.set(team, (kept = new Map()));
  return kept;
}

function rememberInvoice(kept: Map<string, InvoiceState>, id: string, inv: InvoiceState): void {
  kept.delete(id); // re-inserted last: the Map's order is the order of use
  kept.set(id, inv);
  if (kept.size > INVOICES_KEPT) kept.delete(kept.keys().next().value as string);
}

function rememberInvoices(kept: Map<string, InvoiceState> | undefined, docs: Iterable<InvoiceDoc>): void {
  if (!kept) return;
  for (const inv of docs) rememberInvoice(kept, inv.id, invoiceState(inv));
}

function invoiceState(inv: InvoiceDoc): InvoiceState {
  return {
    total: inv.total, paid: inv.paid, initialPaid: inv.initialPaid, refundDue: inv.refundDue, status: inv.status,
    customer: inv.customer, at: inv.at, day: inv.day, device: inv.device, user: inv.user, lines: inv.lines,
    ...(inv.bookedOn !== undefined ? { bookedOn: inv.bookedOn } : {}),
  };
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
  /** When given, only entries in it have been decided, and it holds their verdicts (BatchContext.decidedIds). */
  decidedIds?: ReadonlyMap<string, KnownVerdict>,
  /** Invoices this process projected (BatchContext.invoices): read from here first. */
  invoiceCache?: Map<string, InvoiceState>,
  /** Projections queued and not yet written: laid over what is read. */
  lane?: ProjectionLane,
): Promise<LoadedState> {
  const queued = lane?.snapshot();
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
  const alreadyFinal = decidedIds
    ? new Set(waiting.filter((d) => decidedIds.has(d.entryId)).map((d) => d.entryId))
    : new Set((await findByIds(c.decided, waiting.map((d) => d._id), read)).map((r) => r.entryId));
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
  const invoices = await loadInvoices(c, team, first.invoices.filter((id) => !undecided.has(id)), read, decidedIds, invoiceCache, queued);
  for (const [id, inv] of invoices) putOwn(state.invoices, id, inv);
  queued?.overlay(state, { invoices: first.invoices });
  const keys = keysTouched(entries, state.invoices);

  if (decidedIds) {
    for (const id of [...keys.entries, ...invalid]) {
      const v = decidedIds.get(id);
      if (v) putOwn(state.decided, id, { hash: v.hash, status: v.status });
    }
  } else {
    for (const r of await findByIds(c.decided, [...keys.entries, ...invalid].map((id) => teamKey(team, id)), read)) {
      putOwn(state.decided, r.entryId, { hash: r.hash, status: r.status });
    }
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
  // Items of the live catalog are not read: it wins below.
  const notInCatalog = keys.items.filter((id) => !catalogItems.has(id)).map((id) => teamKey(team, id));
  for (const it of await findByIds(c.items, notInCatalog, catalogRead)) {
    putOwn(state.items, it.id, { name: it.name, price: it.price, active: it.active });
  }
  queued?.overlay(state, { items: keys.items });
  // The live catalog document wins over what was projected from it earlier.
  for (const id of keys.items) {
    const item = catalogItems.get(id);
    if (item) putOwn(state.items, id, item);
  }
  return { state, deferredProvenance };
}

async function loadInvoices(
  c: Collections,
  team: string,
  ids: readonly string[],
  read: ReadOptions,
  decidedIds?: ReadonlyMap<string, KnownVerdict>,
  cache?: Map<string, InvoiceState>,
  queued?: QueuedProjections,
): Promise<Map<string, InvoiceState>> {
  const out = new Map<string, InvoiceState>();
  if (ids.length === 0) return out;
  // Only ids the journal has decided can be invoices (a sale decided in this batch is not one yet).
  const wanted = decidedIds ? ids.filter((id) => decidedIds.has(id)) : ids;
  const toRead: string[] = [];
  for (const id of wanted) {
    // Only an accepted sale became an invoice: nothing to read for the rest.
    const known = decidedIds?.get(id);
    if (known && !(known.kind === "sale" && known.status === "accepted")) continue;
    const kept = cache?.get(id);
    // A copy: deciding works on the state it is given, and the kept one must stay as projected.
    if (kept) out.set(id, { ...kept, lines: kept.lines.map((l) => ({ ...l })) });
    else toRead.push(id);
  }
  for (const inv of await findByIds(c.invoices, toRead.map((id) => teamKey(team, id)), read)) {
    const state = invoiceState(inv);
    out.set(inv.id, state);
    // Not kept when a queued projection changes it: the overlay has the current one.
    if (cache && !queued?.holdsInvoice(inv.id)) rememberInvoice(cache, inv.id, state);
  }
  // A sale the journal rejected is no invoice, but payments against it must learn why.
  const missing = wanted.filter((id) => !out.has(id));
  const rejected = decidedIds
    ? missing.filter((id) => decidedIds.get(id)?.kind === "sale" && decidedIds.get(id)?.status === "rejected")
    : (await findByIds(c.decided, missing.map((id) => teamKey(team, id)), read)).filter((r) => r.kind === "sale" && r.status === "rejected").map((r) => r.entryId);
  for (const id of rejected) {
    // Only the status matters to what comes later (payments and voids are refused).
    out.set(id, {
      total: 0, paid: 0, initialPaid: 0, refundDue: 0, status: "rejected", customer: null,
      at: "", day: "", device: "", user: "", lines: [],
    });
  }
  return out;
}

