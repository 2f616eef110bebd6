/**
 * What changed in a ledger segment since the heads already decided: the entry keys to look at,
 * and which Automerge change (hash, actor) created each, for the journal's provenance.
 */
import * as A from "@automerge/automerge";

export interface SegmentDelta {
  keys: string[];
  heads: string[];
  /** Entry key → the change that created it. */
  origin: Map<string, { change: string; actor: string }>;
}

function entriesOf(doc: A.Doc<unknown>): Record<string, unknown> | undefined {
  const entries = (doc as { entries?: unknown }).entries;
  return typeof entries === "object" && entries !== null && !Array.isArray(entries) ? (entries as Record<string, unknown>) : undefined;
}

export function segmentDelta(doc: A.Doc<unknown>, decidedHeads: readonly string[] | undefined): SegmentDelta {
  const heads = A.getHeads(doc);
  const entries = entriesOf(doc);
  if (!entries) return { keys: [], heads, origin: new Map() };
  let keys: string[];
  let changes: A.Change[];
  if (decidedHeads && decidedHeads.length > 0) {
    try {
      const seen = new Set<string>();
      for (const patch of A.diff(doc, [...decidedHeads], heads)) {
        if (patch.path[0] === "entries" && typeof patch.path[1] === "string") seen.add(patch.path[1]);
      }
      keys = [...seen];
      changes = A.getChangesSince(doc, [...decidedHeads]);
    } catch {
      // Heads this document does not know (storage replaced, history rewritten): look at all.
      keys = Object.keys(entries);
      changes = A.getAllChanges(doc);
    }
  } else {
    keys = Object.keys(entries);
    changes = A.getAllChanges(doc);
  }
  const wanted = new Set(keys);
  const entriesObj = A.getObjectId(doc, "entries");
  const origin = new Map<string, { change: string; actor: string }>();
  for (const raw of changes) {
    const change = A.decodeChange(raw);
    for (const op of change.ops) {
      const key = (op as { key?: unknown }).key;
      if (op.obj === entriesObj && typeof key === "string" && wanted.has(key)) {
        origin.set(key, { change: change.hash, actor: change.actor });
      }
    }
  }
  return { keys, heads, origin };
}
