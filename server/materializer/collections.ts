/**
 * The materializer's MongoDB collections and their indexes. Every document of a team-scoped
 * collection has `_id = <team>:<id>`: entry and item ids come from devices, and two teams may
 * well use the same one, so an id alone must never collide across teams.
 */
import type { Collection, Db } from "mongodb";
import type { Checkpoint } from "../../shared/checkpoint.js";
import type { Booking, Effect, InvoiceRecord, Item, LedgerEntry, PaymentEntry, PaymentRecord, PurchaseRecord, SummaryFigures, VerdictStatus, VoidEntry } from "../../shared/domain/index.js";

export function teamKey(team: string, id: string): string {
  return `${team}:${id}`;
}

export interface Provenance {
  /** Automerge document id of the ledger segment that carried the entry. */
  segment: string;
  /** The segment's writer, as the segment says. */
  device: string | null;
  /** Hash and actor of the Automerge change that created the entry, when it could be found. */
  change: string | null;
  actor: string | null;
}

/** One final verdict: the authority every projection is derived from. */
export interface JournalRecord {
  _id: string;
  team: string;
  /** Gapless per team, from 1. */
  seq: number;
  entryId: string;
  kind: LedgerEntry["kind"] | null;
  status: Exclude<VerdictStatus, "deferred">;
  reason: string | null;
  flags: string[];
  /** Hash of the entry as decided (for invalid entries, of the reason). */
  hash: string;
  entry: LedgerEntry | null;
  /** Invalid entries only: what was submitted, as JSON text, bounded (submitted.ts). */
  submitted?: string;
  effects: Effect[];
  /** Accepted entries whose figures a closed period moved (shared/domain/periods.ts); absent otherwise. */
  booking?: Booking;
  provenance: Provenance;
  decidedAt: string;
  /** recordHash of the previous record of the team ("" for seq 1). */
  prevHash: string;
  /** Hash of this record's canonical JSON without recordHash: the link the next record holds. */
  recordHash: string;
}

export interface DeferredDoc {
  _id: string;
  team: string;
  entryId: string;
  entry: PaymentEntry | VoidEntry;
  hash: string;
  since: string;
  provenance: Provenance;
}

/**
 * A signed checkpoint of the journal (shared/checkpoint.ts). `source` is `signed` for the ones
 * this service made, `witness` for one it found published in the status document but missing
 * here (a database restored from an earlier copy): kept so verify-journal names the rollback.
 */
export interface JournalCheckpointDoc extends Checkpoint {
  _id: string;
  source: "signed" | "witness";
}

export interface CheckpointDoc {
  /** Segment document id. */
  _id: string;
  team: string;
  heads: string[];
  updatedAt: string;
}

/**
 * The journal's head as of the last batch (or catch-up) and when it was decided (`_id` = team):
 * what sync-status shows, read by `_id` (finding the head is a sort over the journal, a scan on
 * FerretDB). Absent in databases from before it: sync-status then sorts. A document of its own,
 * not a field of TeamStateDoc: the journal step and the projections' mark write at the same time
 * (projection-lane.ts), and FerretDB's updates of one document lose each other's fields.
 */
export interface JournalHeadDoc {
  _id: string;
  seq: number;
  decidedAt: string;
}

export interface TeamStateDoc {
  _id: string;
  /** Every journal record up to this seq is in the projections. */
  projectedSeq: number;
  updatedAt: string;
  /**
   * How daily summaries and customer balances are kept. Absent in databases written before
   * `aggregate_parts` existed: the materializer rebuilds such a team's projections once at start.
   */
  aggregates?: "parts";
  /** The last self-check (self-check.ts): when, up to which seq, and how many documents differed. */
  selfCheck?: { at: string; seq: number; days: number; customers: number; differences: number };
}

/** The journal in brief: what the decision function needs to skip decided entries, in small documents. */
export interface DecidedDoc {
  _id: string;
  team: string;
  entryId: string;
  kind: LedgerEntry["kind"] | null;
  status: JournalRecord["status"];
  hash: string;
  seq: number;
}
export interface StockLevelDoc { _id: string; team: string; item: string; level: number; seq: number }
/**
 * A device's offline allowance of an item (shared/domain/allowances.ts), `_id = <team>:<item>/<device>`:
 * cumulative units granted, unit ranges honoured, and `spent`/`left` for readers.
 */
export interface AllowanceDoc {
  _id: string; team: string; item: string; device: string; granted: number; honoured: { from: number; to: number }[]; spent: number; left: number; seq: number;
}
export interface StockMovementDoc { _id: string; team: string; item: string; entry: string; delta: number; level: number; seq: number }
export interface InvoiceDoc extends InvoiceRecord {
  _id: string;
  team: string;
  /** Quantities taken from stock per item, which a void puts back. */
  lines: { item: string; quantity: number }[];
  seq: number;
}
export interface PaymentDoc extends PaymentRecord { _id: string; team: string; seq: number }
export interface PurchaseDoc extends PurchaseRecord { _id: string; team: string; seq: number }
export interface ItemDoc extends Item {
  _id: string;
  team: string;
  /** `catalog` when the catalog document has it; `sale` when a sale line created it. */
  source: "catalog" | "sale";
  updatedAt: string;
}
export interface CustomerDoc { _id: string; team: string; id: string; name: string; phone: string | null; updatedAt: string }
export interface GroupDoc { _id: string; team: string; id: string; name: string; updatedAt: string }
export interface CustomerBalanceDoc { _id: string; team: string; customer: string; outstanding: number; openInvoices: number; purchases: number }
export interface DailySummaryDoc {
  _id: string;
  team: string;
  day: string;
  salesCount: number;
  voidCount: number;
  revenue: number;
  paymentsReceived: number;
  outstanding: number;
}
/** An invoice's contribution to the aggregates of its day and its customer. */
export interface InvoicePart { id: string; status: InvoiceDoc["status"]; total: number; outstanding: number; initialPaid: number }
/**
 * What one daily summary (`day:<day>`) or customer balance (`customer:<id>`) is computed from:
 * each invoice's, payment's and purchase's latest figures by id. Parts are set, never added to,
 * so applying a range of journal records again gives the same aggregates, and an aggregate is
 * recomputed from one document read by `_id` instead of a query over invoices and payments.
 */
export interface AggregateParts {
  invoices: InvoicePart[];
  /** Day parts only. */
  payments: { id: string; amount: number }[];
  /** Customer parts only: invoices of the customer's purchase history that are not void. */
  purchases: string[];
  /**
   * Day parts only, and only when there are any: changes to invoices booked in a closed day,
   * booked in this (then first open) day instead, by the entry that made them (periods.ts).
   */
  adjustments?: BookedAdjustment[];
}
/** An adjustment (shared/domain/periods.ts) as a day's parts keep it: `id` is the entry's. */
export interface BookedAdjustment extends SummaryFigures { id: string; invoice: string }
/**
 * Stored as one JSON string: a busy day has thousands of parts, and FerretDB encodes every
 * field of every array element with its type (measured: rewriting a day's parts took most of a
 * batch at 100,000 entries); one string is encoded once.
 */
export interface AggregatePartsDoc { _id: string; team: string; parts: string }
export interface RejectionDoc { _id: string; team: string; entryId: string; kind: string | null; reason: string; seq: number; at: string | null; device: string | null; segment: string }
export interface QuarantineDoc { _id: string; team: string; entryId: string; reason: string; seq: number; segment: string; decidedAt: string; submitted?: string }
/**
 * A close of a team's books through `through` (every day up to it), made by the materializer
 * between two batches (server/materializer/periods.ts). Never updated: a later close is a new
 * document. Records after `seq` were decided with it in force, and each one it moved says so
 * (`booking.closedThrough`), so a replay of the journal checks it.
 */
export interface ClosedPeriodDoc {
  _id: string;
  team: string;
  /** The last closed day (YYYY-MM-DD, UTC). */
  through: string;
  /** The one closed before, null for the team's first close. */
  previousThrough: string | null;
  /** The journal head when it closed: every record after it was decided with this close in force. */
  seq: number;
  /** That record's `recordHash` ("" before any record). */
  head: string;
  closedAt: string;
  /** The user whose request closed it; null when the `closeAfterHours` setting did. */
  closedBy: string | null;
  cause: "admin" | "setting";
  /** The summaries of the days it closed (after `previousThrough`), as they were: they never change. */
  summaries: (SummaryFigures & { day: string })[];
}
/** An admin's request to close through a day, applied (and deleted) by the materializer. */
export interface CloseRequestDoc { _id: string; team: string; through: string; by: string; requestedAt: string }
/**
 * Sync-status figures of one ledger segment (`_id = <team>:<segment document id>`), kept by the
 * materializer so `/api/sync-status` reads one small document per segment instead of scanning
 * the journal and loading every segment. Written whole after each batch that touched the
 * segment, from the segment's document and the journal (segment-counts.ts): recomputable, so a
 * kill between writes leaves a row behind for one batch at most.
 */
export interface SegmentCountsDoc {
  _id: string;
  team: string;
  /** Segment document id. */
  segment: string;
  device: string | null;
  /** The segment's heads when `listed` was counted: a relay holding other heads has more to count. */
  heads: string[];
  /** Entry ids the segment lists. */
  listed: number;
  /** Journal records read from this segment, by verdict. */
  accepted: number;
  rejected: number;
  invalid: number;
  /** Entries from this segment waiting for their invoice. */
  deferred: number;
  /** Ids listed here whose decided (or deferred) copy came from another segment. */
  duplicates: number;
  /** Listed, neither decided nor deferred nor a duplicate (not read by the materializer yet). */
  undecided: number;
  /** Some of the duplicates (at most MAX_DUPLICATES_KEPT): the id and the segment holding its decided copy. */
  duplicateEntries: { id: string; home: string }[];
  updatedAt: string;
}
export interface TamperDoc { _id: string; team: string; entryId: string; decidedHash: string; newHash: string; segment: string; device: string | null; seenAt: string }

export interface Collections {
  journal: Collection<JournalRecord>;
  deferred: Collection<DeferredDoc>;
  decided: Collection<DecidedDoc>;
  checkpoints: Collection<CheckpointDoc>;
  journalCheckpoints: Collection<JournalCheckpointDoc>;
  teamState: Collection<TeamStateDoc>;
  journalHeads: Collection<JournalHeadDoc>;
  stock: Collection<StockLevelDoc>;
  allowances: Collection<AllowanceDoc>;
  movements: Collection<StockMovementDoc>;
  invoices: Collection<InvoiceDoc>;
  payments: Collection<PaymentDoc>;
  purchases: Collection<PurchaseDoc>;
  items: Collection<ItemDoc>;
  customers: Collection<CustomerDoc>;
  groups: Collection<GroupDoc>;
  balances: Collection<CustomerBalanceDoc>;
  summaries: Collection<DailySummaryDoc>;
  parts: Collection<AggregatePartsDoc>;
  rejections: Collection<RejectionDoc>;
  quarantine: Collection<QuarantineDoc>;
  tampers: Collection<TamperDoc>;
  closedPeriods: Collection<ClosedPeriodDoc>;
  closeRequests: Collection<CloseRequestDoc>;
  segmentCounts: Collection<SegmentCountsDoc>;
}

export function collections(db: Db): Collections {
  return {
    journal: db.collection("journal"),
    deferred: db.collection("deferred_entries"),
    decided: db.collection("decided_entries"),
    checkpoints: db.collection("materializer_checkpoints"),
    journalCheckpoints: db.collection("journal_checkpoints"),
    teamState: db.collection("materializer_state"),
    journalHeads: db.collection("journal_heads"),
    stock: db.collection("stock_levels"),
    allowances: db.collection("offline_allowances"),
    movements: db.collection("stock_movements"),
    invoices: db.collection("invoices"),
    payments: db.collection("payments"),
    purchases: db.collection("purchase_history"),
    items: db.collection("items"),
    customers: db.collection("customers"),
    groups: db.collection("item_groups"),
    balances: db.collection("customer_balances"),
    summaries: db.collection("daily_summaries"),
    parts: db.collection("aggregate_parts"),
    rejections: db.collection("rejections"),
    quarantine: db.collection("quarantine"),
    tampers: db.collection("tamper_events"),
    closedPeriods: db.collection("closed_periods"),
    closeRequests: db.collection("period_close_requests"),
    segmentCounts: db.collection("segment_counts"),
  };
}

/** Projections that the journal alone determines, cleared and refilled by a rebuild. */
export const JOURNAL_PROJECTIONS = [
  "decided",
  "stock",
  "allowances",
  "movements",
  "invoices",
  "payments",
  "purchases",
  "balances",
  "summaries",
  "parts",
  "rejections",
  "quarantine",
] as const satisfies readonly (keyof Collections)[];

export async function ensureIndexes(c: Collections): Promise<void> {
  await c.journal.createIndex({ team: 1, seq: 1 }, { unique: true, name: "team_seq" });
  await c.journal.createIndex({ team: 1, status: 1, seq: 1 }, { name: "team_status_seq" });
  await c.deferred.createIndex({ team: 1 }, { name: "team" });
  await c.decided.createIndex({ team: 1, seq: 1 }, { name: "team_seq" });
  await c.checkpoints.createIndex({ team: 1 }, { name: "team" });
  await c.journalCheckpoints.createIndex({ team: 1, seq: 1 }, { name: "team_seq" });
  await c.stock.createIndex({ team: 1, item: 1 }, { unique: true, name: "team_item" });
  await c.allowances.createIndex({ team: 1, item: 1 }, { name: "team_item" });
  await c.movements.createIndex({ team: 1, item: 1, seq: 1 }, { name: "team_item_seq" });
  await c.invoices.createIndex({ team: 1, day: 1 }, { name: "team_day" });
  await c.invoices.createIndex({ team: 1, customer: 1, status: 1 }, { name: "team_customer_status" });
  await c.invoices.createIndex({ team: 1, seq: 1 }, { name: "team_seq" });
  await c.payments.createIndex({ team: 1, day: 1 }, { name: "team_day" });
  await c.payments.createIndex({ team: 1, invoice: 1 }, { name: "team_invoice" });
  await c.purchases.createIndex({ team: 1, customer: 1, at: 1 }, { name: "team_customer_at" });
  await c.items.createIndex({ team: 1, id: 1 }, { unique: true, name: "team_id" });
  await c.customers.createIndex({ team: 1, id: 1 }, { unique: true, name: "team_id" });
  await c.groups.createIndex({ team: 1, id: 1 }, { unique: true, name: "team_id" });
  await c.balances.createIndex({ team: 1, customer: 1 }, { unique: true, name: "team_customer" });
  await c.summaries.createIndex({ team: 1, day: 1 }, { unique: true, name: "team_day" });
  await c.parts.createIndex({ team: 1 }, { name: "team" });
  await c.rejections.createIndex({ team: 1, seq: 1 }, { name: "team_seq" });
  await c.quarantine.createIndex({ team: 1, seq: 1 }, { name: "team_seq" });
  await c.tampers.createIndex({ team: 1, seenAt: 1 }, { name: "team_seen" });
  await c.closedPeriods.createIndex({ team: 1, through: 1 }, { unique: true, name: "team_through" });
  await c.closeRequests.createIndex({ team: 1 }, { name: "team" });
  await c.segmentCounts.createIndex({ team: 1 }, { name: "team" });
}
