/**
 * What changed in a ledger segment since the heads already decided: the entry keys to look at,
 * and which Automerge change (hash, actor) wrote each, for the journal's provenance.
 *
 * The origin comes from the op id of the entry's current value and the changes' metadata (actor
 * and op range), not from decoding every change: decoding turned each op into JS and was a fifth
 * of the materializer's time on a team read from scratch.
 */
import * as A from "@automerge/automerge";

export interface SegmentDelta {
  keys: string[];
  heads: string[];
  /** Entry key → the change that wrote its current value (when that change is in the delta). */
  origin: Map<string, { change: string; actor: string }>;
}

function entriesOf(doc: A.Doc<unknown>): Record<string, unknown> | undefined {
  const entries = (doc as { entries?: unknown }).entries;
  return typeof entries === "object" && entries !== null && !Array.isArray(entries) ? (entries as Record<string, unknown>) : undefined;
}

/** Per actor, the changes' op ranges in ascending order, to find the change an op belongs to. */
function opRanges(metas: readonly A.ChangeMetadata[]): Map<string, A.ChangeMetadata[]> {
  const byActor = new Map<string, A.ChangeMetadata[]>();
  for (const m of metas) {
    let list = byActor.get(m.actor);
    if (!list) byActor.set(m.actor, (list = []));
    list.push(m);
  }
  for (const list of byActor.values()) list.sort((a, b) => a.startOp - b.startOp);
  return byActor;
}

function changeOf(ranges: Map<string, A.ChangeMetadata[]>, opId: string): A.ChangeMetadata | undefined {
  const at = opId.indexOf("@");
  const counter = Number(opId.slice(0, at));
  const list = ranges.get(opId.slice(at + 1));
  if (!list) return undefined;
  let lo = 0;
  let hi = list.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const m = list[mid]!;
    if (counter < m.startOp) hi = mid - 1;
    else if (counter > m.maxOp) lo = mid + 1;
    else return m;
  }
  return undefined;
}

export function segmentDelta(doc: A.Doc<unknown>, decidedHeads: readonly string[] | undefined): SegmentDelta {
  const heads = A.getHeads(doc);
  const entries = entriesOf(doc);
  if (!entries) return { keys: [], heads, origin: new Map() };
  let keys: string[] | undefined;
  let since: string[] = [];
  if (decidedHeads && decidedHeads.length > 0) {
    try {
      const seen = new Set<string>();
      for (const patch of A.diff(doc, [...decidedHeads], heads)) {
        if (patch.path[0] === "entries" && typeof patch.path[1] === "string") seen.add(patch.path[1]);
      }
      keys = [...seen];
      since = [...decidedHeads];
    } catch {
      // Heads this document does not know (storage replaced, history rewritten): look at all.
    }
  }
  keys ??= Object.keys(entries);
  const ranges = opRanges(A.getChangesMetaSince(doc, since));
  const entriesObj = A.getObjectId(doc, "entries");
  const backend = A.getBackend(doc);
  const origin = new Map<string, { change: string; actor: string }>();
  if (entriesObj === null) return { keys, heads, origin };
  for (const key of keys) {
    // The last of the values is the one the document shows (conflicts come first).
    const opId = backend.getAll(entriesObj, key).at(-1)?.at(-1);
    if (typeof opId !== "string") continue;
    const m = changeOf(ranges, opId);
    if (m) origin.set(key, { change: m.hash, actor: m.actor });
  }
  return { keys, heads, origin };
}
