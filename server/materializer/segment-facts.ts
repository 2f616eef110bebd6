/**
 * What the status document tells devices about segments so that each holds only its working set
 * (client/working-set.ts): the day of each segment's latest decided entry, and the segment that
 * holds each open invoice's sale. Both are read from journal records, so a republish after a
 * restart writes the same values as the batches did.
 */
import * as A from "@automerge/automerge";
import type { StatusDoc, StoredInvoice } from "../../shared/docs.js";
import type { JournalRecord } from "./collections.js";

export interface SegmentFacts {
  /** Segment URL → latest entry day (YYYY-MM-DD). */
  activity: Map<string, string>;
  /** Sale (invoice) id → URL of its segment. */
  saleSegments: Map<string, string>;
}

export function emptyFacts(): SegmentFacts {
  return { activity: new Map(), saleSegments: new Map() };
}

type FactRecord = Pick<JournalRecord, "entryId" | "kind" | "entry" | "provenance">;

/** Adds `record` to `facts` (records in any order: the latest day wins). */
export function addFact(facts: SegmentFacts, record: FactRecord): void {
  if (!record.provenance.segment) return;
  const segment = `automerge:${record.provenance.segment}`;
  if (record.kind === "sale") facts.saleSegments.set(record.entryId, segment);
  const day = typeof record.entry?.at === "string" ? record.entry.at.slice(0, 10) : undefined;
  if (day === undefined || !/^\d{4}-\d{2}-\d{2}$/.test(day)) return;
  const cur = facts.activity.get(segment);
  if (cur === undefined || day > cur) facts.activity.set(segment, day);
}

export function factsOf(records: Iterable<FactRecord>): SegmentFacts {
  const facts = emptyFacts();
  for (const r of records) addFact(facts, r);
  return facts;
}

function text(v: A.ImmutableString | string | undefined): string | undefined {
  return v === undefined ? undefined : typeof v === "string" ? v : v.val;
}

/** The open invoice as stored, its sale's segment from `facts` or, failing that, what the status had. */
export function storedInvoice(inv: Omit<StoredInvoice, "segment">, id: string, facts: SegmentFacts, current: StoredInvoice | undefined): StoredInvoice {
  const segment = facts.saleSegments.get(id) ?? text(current?.segment);
  return segment === undefined ? { ...inv } : { ...inv, segment: new A.ImmutableString(segment) };
}

/** Whether the stored invoice lacks the segment `facts` knows for it. */
export function segmentMissing(current: StoredInvoice, id: string, facts: SegmentFacts): boolean {
  const known = facts.saleSegments.get(id);
  return known !== undefined && text(current.segment) !== known;
}

/** Moves each segment's day forward in the status (inside a change of the status document). */
export function applyActivity(d: StatusDoc, facts: SegmentFacts): void {
  if (facts.activity.size === 0) return;
  if (!d.activity) d.activity = {};
  const activity = d.activity;
  for (const [segment, day] of facts.activity) {
    const cur = text(activity[segment]);
    if (cur === undefined || day > cur) activity[segment] = new A.ImmutableString(day);
  }
}
