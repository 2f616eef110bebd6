/**
 * When each device last talked to the relay (`device_activity`): one upsert when a session opens
 * and one when it closes, never per message, so it costs nothing on the sync hot path.
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
}

export function activityCollection(db: Db): Collection<DeviceActivityDoc> {
  return db.collection<DeviceActivityDoc>("device_activity");
}

export function sessionRecorder(db: Db, logger: Logger): (claims: Claims, event: "open" | "close") => void {
  const col = activityCollection(db);
  return (claims, event) => {
    if (claims.role === "service") return;
    const key = claims.device ?? `user:${claims.sub}`;
    void col
      .updateOne(
        { _id: `${claims.team}:${key}` },
        { $set: { team: claims.team, device: claims.device ?? null, user: claims.sub, lastSeen: new Date(), connected: event === "open" } },
        { upsert: true },
      )
      .catch((err: unknown) => logger.warn({ err }, "could not record device activity"));
  };
}
