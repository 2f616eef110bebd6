/**
 * Which team each document belongs to, in MongoDB (`documents`, `teams`), with a bounded
 * in-memory cache: the relay consults it on every message, so the hot path must not wait on
 * the database for documents it has seen recently.
 */
import type { Collection, Db } from "mongodb";
import type { DocRecord } from "./access.js";

export interface TeamRecord {
  _id: string;
  rootDocumentId: string;
  settings: Record<string, unknown>;
  createdAt: Date;
}

export interface DocumentRegistry {
  /** Cached record or undefined when not in the cache (it may still exist in MongoDB). */
  cached(documentId: string): DocRecord | undefined;
  lookup(documentId: string): Promise<DocRecord | null>;
  /** Registers a document; when it is already registered, returns the existing record (first wins). */
  register(record: DocRecord): Promise<DocRecord>;
  insertTeam(team: TeamRecord): Promise<void>;
  getTeam(teamId: string): Promise<TeamRecord | null>;
  /** The copy of the settings kept with the team (the root holds the ones devices read). */
  setTeamSettings(teamId: string, settings: Record<string, unknown>): Promise<void>;
  ensureIndexes(): Promise<void>;
}

const DEFAULT_CACHE_ENTRIES = 100_000;

export function createDocumentRegistry(db: Db, cacheEntries = DEFAULT_CACHE_ENTRIES): DocumentRegistry {
  const documents: Collection<DocRecord> = db.collection<DocRecord>("documents");
  const teams: Collection<TeamRecord> = db.collection<TeamRecord>("teams");
  const cache = new Map<string, DocRecord>();

  const remember = (rec: DocRecord): DocRecord => {
    cache.delete(rec._id);
    cache.set(rec._id, rec);
    // Map keeps insertion order: the first key is the least recently remembered.
    if (cache.size > cacheEntries) {
      const oldest = cache.keys().next().value;
      if (oldest !== undefined) cache.delete(oldest);
    }
    return rec;
  };

  return {
    cached: (id) => cache.get(id),
    async lookup(id) {
      const hit = cache.get(id);
      if (hit) return hit;
      const rec = await documents.findOne({ _id: id });
      return rec ? remember(rec) : null;
    },
    async register(record) {
      try {
        await documents.insertOne(record);
        return remember(record);
      } catch (err) {
        if ((err as { code?: number }).code !== 11000) throw err;
        const existing = await documents.findOne({ _id: record._id });
        if (!existing) throw err;
        return remember(existing);
      }
    },
    async insertTeam(team) {
      await teams.insertOne(team);
    },
    getTeam: (teamId) => teams.findOne({ _id: teamId }),
    async setTeamSettings(teamId, settings) {
      await teams.updateOne({ _id: teamId }, { $set: { settings } });
    },
    async ensureIndexes() {
      await documents.createIndex({ team: 1, kind: 1 }, { name: "team_kind" });
      await documents.createIndex({ owner: 1 }, { name: "owner", sparse: true });
    },
  };
}
