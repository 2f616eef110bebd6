/**
 * Shapes of the Automerge documents a team syncs (DESIGN.md, "Documents"). Shared by the
 * device client, the relay and the materializer so all three agree on field names.
 *
 * Documents read from peers are untrusted: code that reads one validates what it uses
 * (shared/domain/validate.ts for entries), these types only describe the intended shape.
 */
import type { ImmutableString } from "@automerge/automerge";
import type { AutomergeUrl } from "@automerge/automerge-repo";

export type DocKind = "team-root" | "segment-registry" | "catalog" | "ledger-segment" | "status" | "verdicts";

/** Server-owned, read-only for devices. The one URL a device is given at enrollment. */
export interface TeamRootDoc {
  type: "team-root";
  team: string;
  catalog: AutomergeUrl;
  registry: AutomergeUrl;
  status: AutomergeUrl;
  /** Read-only copy of the team settings, so devices compute provisional figures alike. */
  settings: {
    oversell: "reject" | "allow-negative";
    deferWaitSeconds: number;
    closeAfterHours?: number | null;
    allowances?: { items: "all" | string[]; atRisk: "flag" | "refuse"; sharePercent: number };
  };
  createdAt: string;
}

/**
 * Member-writable. Keys are `<deviceId>/<n>`, unique to one device, so two devices registering
 * segments concurrently never write the same key.
 */
export interface SegmentRegistryDoc {
  type: "segment-registry";
  team: string;
  segments: Record<string, AutomergeUrl>;
}

/** Multi-writer. The three maps are created by the server with the team, never by devices. */
export interface CatalogDoc {
  type: "catalog";
  team: string;
  items: Record<string, unknown>;
  groups: Record<string, unknown>;
  customers: Record<string, unknown>;
}

/** Single writer (the device that created it), append-only map of entries keyed by entry id. */
export interface LedgerSegmentDoc {
  type: "ledger-segment";
  team: string;
  device: string;
  n: number;
  createdAt: string;
  entries: Record<string, unknown>;
}

export type VerdictStatus = "accepted" | "rejected" | "deferred" | "invalid";

export interface PublishedVerdict {
  status: VerdictStatus;
  reason?: string;
  /** Journal sequence number; absent while deferred. */
  seq?: number;
  decidedAt: string;
}

/**
 * A verdict as the server writes it: strings as immutable scalars, not collaborative text. A
 * verdict is always written whole, and text costs one op per character: 5,000 verdicts took twice
 * the time and three times the bytes. Readers accept plain strings too (documents written before).
 */
export interface StoredVerdict {
  status: ImmutableString | VerdictStatus;
  reason?: ImmutableString | string;
  seq?: number;
  decidedAt: ImmutableString | string;
}

/** Server-owned: verdicts on the entries of one segment. */
export interface VerdictsDoc {
  type: "verdicts";
  team: string;
  segment: AutomergeUrl;
  verdicts: Record<string, StoredVerdict>;
}

export interface PublishedInvoice {
  total: number;
  paid: number;
  outstanding: number;
  status: "open" | "finalized" | "void";
  /**
   * URL of the ledger segment holding the sale: a device holds that segment while the invoice is
   * open (its working set, client/working-set.ts). Absent in documents written before.
   */
  segment?: string;
}

/** An open invoice as the server writes it: the segment URL as an immutable scalar. */
export interface StoredInvoice extends Omit<PublishedInvoice, "segment"> {
  segment?: ImmutableString | string;
}

/**
 * Server-owned. Authoritative stock and open invoice balances as of journal `seq`; finalized
 * and void invoices leave it so it stays bounded by the open working set, not the history.
 */
export interface StatusDoc {
  type: "status";
  team: string;
  seq: number;
  stock: Record<string, number>;
  invoices: Record<string, StoredInvoice>;
  /** Segment URL → URL of its verdicts document. */
  verdicts: Record<string, AutomergeUrl>;
  /**
   * Segment URL → the day (YYYY-MM-DD of the device clock) of its latest decided entry: how a
   * device tells recent segments from history without loading them (client/working-set.ts).
   */
  activity?: Record<string, ImmutableString | string>;
  updatedAt: string;
  /**
   * The latest signed checkpoint of the team's journal (shared/checkpoint.ts), strings stored as
   * immutable scalars. Devices keep every one they see: a witness of the journal's head that
   * lives outside the database (docs/AUDIT.md).
   */
  checkpoint?: StoredCheckpoint;
  /** The team's last closed day (docs/AUDIT.md "Closed periods"); absent while none is. */
  closedThrough?: string;
  /**
   * Offline allowances (shared/domain/allowances.ts): item → device → what the journal says of
   * that device's allowance. Signed with the rest, so a device trusts it offline.
   */
  allowances?: Record<string, Record<string, PublishedAllowance>>;
}

export interface PublishedAllowance {
  /** Units granted so far, cumulative. */
  granted: number;
  /** Units sold within the allowance and accepted. */
  spent: number;
  /** One past the highest unit honoured: a device that lost count goes on from here. */
  next: number;
}

export interface StoredCheckpoint {
  team: ImmutableString | string;
  seq: number;
  head: ImmutableString | string;
  at: ImmutableString | string;
  keyId: ImmutableString | string;
  sig: ImmutableString | string;
}

/** Segment bound (DESIGN.md): rotate after this many entries or a calendar month. */
export const SEGMENT_MAX_ENTRIES = 1000;

export function segmentKey(deviceId: string, n: number): string {
  return `${deviceId}/${n}`;
}
