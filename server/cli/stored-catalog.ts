/**
 * Reads a team's registered catalog straight from the relay's document storage (DATA_DIR or MongoDB), for
 * tools that run without the service (rebuild). The registry (`documents`), not the root's link,
 * says which document is the team's catalog.
 */
import * as A from "@automerge/automerge";
import type { Db } from "mongodb";
import type { CatalogDoc } from "../../shared/docs.js";
import type { DocRecord } from "../relay/access.js";
import { createDocumentStorage, type StorageKind } from "../relay/storage.js";

export type StoredCatalog = { ok: true; documentId: string; doc: CatalogDoc } | { ok: false; reason: string };

export async function loadRegisteredCatalog(db: Db, dataDir: string, team: string, storageKind: StorageKind = "files"): Promise<StoredCatalog> {
  const recs = await db.collection<DocRecord>("documents").find({ team, kind: "catalog" }).toArray();
  if (recs.length !== 1) return { ok: false, reason: `team ${team} has ${recs.length} registered catalogs, expected 1` };
  const documentId = recs[0]!._id;
  const storage = createDocumentStorage(storageKind, dataDir, db);
  // Snapshots first, then the incremental changes saved since, as automerge-repo loads them.
  const chunks = [...(await storage.loadRange([documentId, "snapshot"])), ...(await storage.loadRange([documentId, "incremental"]))];
  let doc = A.init<CatalogDoc>();
  for (const chunk of chunks) if (chunk.data) doc = A.loadIncremental(doc, chunk.data);
  if (A.getHeads(doc).length === 0) return { ok: false, reason: `catalog ${documentId} of team ${team} is not in ${storageKind === "files" ? dataDir : "the database"}` };
  return { ok: true, documentId, doc };
}
