/**
 * What the materializer tells the service about itself, for `/readyz`: each materializer process
 * writes a heartbeat document (one upsert by `_id` every few seconds) saying whether it is
 * connected to the relay and, per team, whether it is started and how far behind it is. The
 * service reads these documents; a heartbeat older than HEARTBEAT_STALE_MS means no materializer.
 */
import type { Collection, Db } from "mongodb";

export const HEARTBEAT_MS = 2000;
export const HEARTBEAT_STALE_MS = 10_000;

export type TeamRunState = "starting" | "ready" | "failed";

export interface TeamStatus {
  team: string;
  state: TeamRunState;
  /** Seconds since the oldest ledger change not yet decided was seen (0: caught up). */
  behindSeconds: number;
  /** Why the team could not be started (state "failed"). */
  error?: string;
}

export interface MaterializerHeartbeat {
  /** One per instance: its team partition ("*" for all teams). */
  _id: string;
  pid: number;
  startedAt: string;
  at: string;
  /** Connected to the relay. */
  connected: boolean;
  teams: TeamStatus[];
}

export function heartbeats(db: Db): Collection<MaterializerHeartbeat> {
  return db.collection<MaterializerHeartbeat>("materializer_status");
}

export interface MaterializerReadiness {
  ready: boolean;
  /** The `materializer` part of `/readyz`. */
  part: {
    status: "ready" | "starting" | "down" | "not-run-here";
    connected: boolean;
    lastHeartbeatSecondsAgo: number | null;
    teams: TeamStatus[];
  };
}

/**
 * Ready when a materializer answered within HEARTBEAT_STALE_MS, is connected to the relay and
 * has started every team it decides (caught up with its journal: catch-up and the start
 * self-check come first). Teams that failed to start are listed; they do not hold up the others.
 * With `required` false (MATERIALIZER=off) the part is reported but never makes the service unready.
 */
export async function materializerReadiness(db: Db, required: boolean, now = Date.now()): Promise<MaterializerReadiness> {
  const beats = await heartbeats(db).find({}).toArray();
  const fresh = beats.filter((b) => now - Date.parse(b.at) <= HEARTBEAT_STALE_MS);
  const latest = beats.map((b) => Date.parse(b.at)).reduce((a, b) => Math.max(a, b), Number.NEGATIVE_INFINITY);
  const teams = fresh.flatMap((b) => b.teams);
  // A team that a running materializer should decide but does not list has not been started
  // yet (a materializer that just restarted lists none until it has found them).
  const listed = new Set(teams.map((t) => t.team));
  const partitions = fresh.map((b) => (b._id === "*" ? null : new Set(b._id.split(","))));
  for (const t of await db.collection<{ _id: string }>("teams").find({}, { projection: { _id: 1 } }).toArray()) {
    if (listed.has(t._id) || !partitions.some((p) => p === null || p.has(t._id))) continue;
    teams.push({ team: t._id, state: "starting", behindSeconds: 0 });
  }
  teams.sort((a, b) => (a.team < b.team ? -1 : 1));
  const connected = fresh.length > 0 && fresh.every((b) => b.connected);
  const status = fresh.length === 0 ? (required ? "down" : "not-run-here") : !connected || teams.some((t) => t.state === "starting") ? "starting" : "ready";
  return {
    ready: !required || status === "ready",
    part: {
      status,
      connected,
      lastHeartbeatSecondsAgo: Number.isFinite(latest) ? Math.round((now - latest) / 100) / 10 : null,
      teams,
    },
  };
}
