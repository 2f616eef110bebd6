/**
 * Concurrent edits of one catalog field (two tablets repricing one item while apart). Automerge
 * keeps one value and hides the other; here both are shown, with the device that made each, so a
 * person can choose. Any later edit of the field replaces every competing value and ends the
 * conflict. Who made a value comes from the message of the change that wrote it: catalog edits
 * carry their device id there (CatalogEditor), since Automerge actor ids are per session.
 */
import * as A from "@automerge/automerge";

export interface CatalogConflict {
  map: "items" | "groups" | "customers";
  /** Item, group or customer id. */
  id: string;
  field: string;
  /** Every competing value; `shown` is the one reads return until the conflict is resolved. */
  values: Array<{ value: unknown; device: string | null; shown: boolean }>;
}

const MAPS = ["items", "groups", "customers"] as const;

export function editMessage(deviceId: string): string {
  return JSON.stringify({ device: deviceId });
}

function deviceOf(message: string | null): string | null {
  if (!message) return null;
  try {
    const parsed = JSON.parse(message) as unknown;
    const device = typeof parsed === "object" && parsed !== null ? (parsed as Record<string, unknown>).device : undefined;
    return typeof device === "string" ? device.slice(0, 200) : null;
  } catch {
    return null;
  }
}

function own(raw: unknown, key: string): unknown {
  if (typeof raw !== "object" || raw === null) return undefined;
  const desc = Object.getOwnPropertyDescriptor(raw, key);
  return desc && "value" in desc ? desc.value : undefined;
}

/** The device named by the change (by actor and op counter) that an op id `counter@actor` belongs to. */
function authorOf(metas: readonly A.ChangeMetadata[], opId: string): string | null {
  const at = opId.indexOf("@");
  const counter = Number(opId.slice(0, at));
  const actor = opId.slice(at + 1);
  const m = metas.find((c) => c.actor === actor && counter >= c.startOp && counter <= c.maxOp);
  return m ? deviceOf(m.message) : null;
}

function plainValue(v: unknown): unknown {
  return typeof v === "object" && v !== null ? (JSON.parse(JSON.stringify(v)) as unknown) : v;
}

export function catalogConflicts(doc: A.Doc<unknown>): CatalogConflict[] {
  const out: CatalogConflict[] = [];
  let metas: A.ChangeMetadata[] | undefined;
  for (const map of MAPS) {
    const records = own(doc, map);
    if (typeof records !== "object" || records === null) continue;
    for (const id of Object.keys(records)) {
      const record = own(records, id);
      if (typeof record !== "object" || record === null) continue;
      for (const field of Object.keys(record)) {
        const conflicts = A.getConflicts(record as A.Doc<unknown>, field);
        if (!conflicts || Object.keys(conflicts).length < 2) continue;
        // Read only once there is a conflict: the metadata of every change of the catalog.
        metas ??= A.getChangesMetaSince(doc, []);
        const shown = own(record, field);
        const values = Object.entries(conflicts)
          .sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0))
          .map(([opId, value]) => ({ value: plainValue(value), device: authorOf(metas!, opId), shown: value === shown }));
        out.push({ map, id, field, values });
      }
    }
  }
  return out;
}
