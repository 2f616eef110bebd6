/**
 * When each device last talked to the relay (`device_activity`): one upsert when a device's first
 * session opens and one when its last closes, and one `updateMany` per heartbeat for all
 * connected devices, never per message, so it costs nothing on the sync hot path.
 *
 * `connected` alone cannot be trusted: a service that is killed, or that stops while the
 * database is unreachable, never records the disconnect. So each record also holds
 * `connectedUntil`, pushed forward by the heartbeat while a session lives, and the service marks
 * every device disconnected when it starts (no session survives a restart).
 */
import type { Collection, Db } from "mongodb";
import type { Claims } from "../../shared/auth/claims.js";
import type { Logger } from "../log.js";

export interface DeviceActivityDoc {
  /** `<team>:<device or user>` */
  _id: string;
  team: string;
  device: string | null;
  user: string;
  lastSeen: Date;
  connected: boolean;
  /** Until when `connected` holds without another heartbeat (absent in records from before). */
  connectedUntil?: Date;
}

/** Heartbeats a connected device may miss before it counts as disconnected. */
const MISSED_BEATS = 3;

export function activityCollection(db: Db): Collection<DeviceActivityDoc> {
  return db.collection<DeviceActivityDoc>("device_activity");
}

/** What sync-status shows: connected, and confirmed by a recent heartbeat. */
export function isConnected(a: DeviceActivityDoc, now = Date.now()): boolean {
  return a.connected && a.connectedUntil instanceof Date && a.connectedUntil.getTime() > now;
}

export interface ActivityRecorder {
  /** Marks every device disconnected; call before the relay accepts sessions. */
  clearAtStart(): Promise<void>;
  onSession(claims: Claims, event: "open" | "close"): void;
  stop(): void;
}

export function createActivityRecorder(db: Db, logger: Logger, heartbeatMs: number): ActivityRecorder {
  const col = activityCollection(db);
  /** Record id → open sessions (a device can hold two while it reconnects). */
  const live = new Map<string, number>();
  const until = (): Date => new Date(Date.now() + MISSED_BEATS * heartbeatMs);
  const failed = (err: unknown): void => logger.warn({ err }, "could not record device activity");

  const timer = setInterval(() => {
    if (live.size === 0) return;
    const now = new Date();
    void col.updateMany({ _id: { $in: [...live.keys()] } }, { $set: { lastSeen: now, connectedUntil: until() } }).catch(failed);
  }, heartbeatMs);
  timer.unref();

  return {
    async clearAtStart() {
      await col.updateMany({ connected: true }, { $set: { connected: false } });
    },
    onSession(claims, event) {
      if (claims.role === "service") return;
      const id = `${claims.team}:${claims.device ?? `user:${claims.sub}`}`;
      const open = (live.get(id) ?? 0) + (event === "open" ? 1 : -1);
      if (open > 0) live.set(id, open);
      else live.delete(id);
      // Only the first open and the last close change what the record says.
      if ((event === "open" && open !== 1) || (event === "close" && open > 0)) return;
      const connected = event === "open";
      const now = new Date();
      void col
        .updateOne(
          { _id: id },
          { $set: { team: claims.team, device: claims.device ?? null, user: claims.sub, lastSeen: now, connected, connectedUntil: connected ? until() : now } },
          { upsert: true },
        )
        .catch(failed);
    },
    stop() {
      clearInterval(timer);
    },
  };
}
