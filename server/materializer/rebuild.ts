/**
 * Recomputes a team's journal-derived projections from the journal alone; given the team's
 * registered catalog, its item, group and customer rows too (so rows another document wrote go).
 */
import type { CatalogDoc } from "../../shared/docs.js";
import { rewriteCatalogRows } from "./catalog-rows.js";
import { JOURNAL_PROJECTIONS, type Collections } from "./collections.js";
import { catchUp } from "./projections.js";
import type { ReadOptions } from "./write-set.js";

export async function rebuildTeam(
  c: Collections,
  team: string,
  onProgress?: (done: number, total: number) => void,
  read: ReadOptions = {},
  catalog?: CatalogDoc,
): Promise<number> {
  const total = await c.journal.countDocuments({ team });
  for (const name of JOURNAL_PROJECTIONS) await c[name].deleteMany({ team });
  // Sync-status rows need the segments' documents too: the materializer counts every segment
  // again at its next start (until then sync-status counts the segments it can load).
  await c.segmentCounts.deleteMany({ team });
  // Items a sale line created come from the journal; catalog items are the catalog's, and the
  // journal's sale lines below only fill the gaps the catalog leaves.
  if (catalog) await rewriteCatalogRows(c, team, catalog, new Date().toISOString());
  else await c.items.deleteMany({ team, source: "sale" });
  await c.teamState.updateOne({ _id: team }, { $set: { projectedSeq: 0, updatedAt: new Date().toISOString() } }, { upsert: true });
  onProgress?.(0, total);
  await catchUp(c, team, 2000, (seq) => onProgress?.(seq, total), read, false);
  return total;
}
