/**
 * Teams whose documents cannot be loaded. The materializer (a separate process) records a team
 * whose start fails in `team_health` and removes the record once the team starts; the service
 * reads it, adds the documents its own storage refused to load, and reports both in `/readyz`,
 * `/metrics` and `/api/sync-status`: which team, which document, since when, and why.
 */
import type { Collection, Db } from "mongodb";

export interface TeamHealthRecord {
  /** The team id. */
  _id: string;
  /** The document that could not be opened, when known. */
  document: string | null;
  /** Its role in the team: root, catalog, segment-registry, status, verdicts. */
  role: string | null;
  reason: string;
  /** First failure of this run of failures. */
  since: Date;
  attempts: number;
  lastAttemptAt: Date;
  nextAttemptAt: Date;
}

/** One reason a team is unhealthy, as the service reports it. */
export interface TeamProblem {
  team: string;
  document: string | null;
  role: string | null;
  since: string;
  reason: string;
  /** Who saw it: the materializer opening the team, or the relay reading its storage. */
  source: "materializer" | "relay-storage";
}

export function teamHealthCollection(db: Db): Collection<TeamHealthRecord> {
  return db.collection<TeamHealthRecord>("team_health");
}

/** Exponential from 1 s, capped: a team that cannot start is retried without flooding the log. */
export function retryDelayMs(attempt: number, capMs = 60_000): number {
  return Math.min(capMs, 1000 * 2 ** Math.max(0, Math.min(attempt - 1, 30)));
}

export interface DamagedDocumentSource {
  damaged(): readonly { documentId: string; since: Date; reason: string }[];
}

export interface TeamOfDocument {
  lookup(documentId: string): Promise<{ team: string; kind: string } | null>;
}

/** Every problem known now, sorted by team then document; `team` narrows to one team. */
export async function teamProblems(db: Db, storage: DamagedDocumentSource, registry: TeamOfDocument, team?: string): Promise<TeamProblem[]> {
  const records = await teamHealthCollection(db).find(team === undefined ? {} : { _id: team }).toArray();
  const out: TeamProblem[] = records.map((r) => ({
    team: r._id,
    document: r.document,
    role: r.role,
    since: r.since.toISOString(),
    reason: r.reason,
    source: "materializer",
  }));
  for (const d of storage.damaged()) {
    const rec = await registry.lookup(d.documentId);
    // A damaged file no team claims is still a fault of the relay: listed under no team.
    const owner = rec?.team ?? "";
    if (team !== undefined && owner !== team) continue;
    out.push({ team: owner, document: d.documentId, role: rec?.kind ?? null, since: d.since.toISOString(), reason: d.reason, source: "relay-storage" });
  }
  return out.sort((a, b) => (a.team === b.team ? String(a.document).localeCompare(String(b.document)) : a.team < b.team ? -1 : 1));
}
