/**
 * `X-Idempotency-Key` records (`idempotency_keys`, unique on team + key). The first request
 * inserts a `pending` record before doing anything; a concurrent one with the same key fails
 * that insert and waits for the stored answer instead of executing. Before the first write the
 * record takes the request's plan (`written`), so a retry after a timeout or a crash finishes
 * that plan rather than starting a second one. The answer is stored as the exact bytes sent.
 */
import type { Collection, Db } from "mongodb";
import type { SyncPlan } from "./plan.js";

export interface IdempotencyDoc {
  /** `<team>:<key>` */
  _id: string;
  team: string;
  key: string;
  user: string;
  /** sha256 of the route and body: one key names one request. */
  requestHash: string;
  state: "pending" | "written" | "done";
  plan: SyncPlan | null;
  /** Set when done. */
  status: number | null;
  body: string | null;
  createdAt: Date;
  /** A pending or written record whose lease passed may be taken over (its executor died). */
  leaseUntil: Date;
}

export type Begin =
  | { kind: "new" }
  | { kind: "done"; status: number; body: string }
  | { kind: "mismatch" }
  | { kind: "busy"; doc: IdempotencyDoc };

export const MAX_KEY_LENGTH = 200;

export class IdempotencyStore {
  readonly col: Collection<IdempotencyDoc>;
  constructor(db: Db, private readonly leaseMs: number) {
    this.col = db.collection<IdempotencyDoc>("idempotency_keys");
  }

  ensureIndexes(): Promise<string> {
    return this.col.createIndex({ team: 1, key: 1 }, { unique: true, name: "team_key" });
  }

  async begin(team: string, key: string, user: string, requestHash: string): Promise<Begin> {
    const doc: IdempotencyDoc = {
      _id: `${team}:${key}`, team, key, user, requestHash, state: "pending", plan: null, status: null, body: null,
      createdAt: new Date(), leaseUntil: new Date(Date.now() + this.leaseMs),
    };
    try {
      await this.col.insertOne(doc);
      return { kind: "new" };
    } catch (err) {
      if ((err as { code?: number }).code !== 11000) throw err;
    }
    const existing = await this.col.findOne({ _id: doc._id });
    if (!existing) return this.begin(team, key, user, requestHash);
    if (existing.requestHash !== requestHash) return { kind: "mismatch" };
    if (existing.state === "done" && existing.status !== null && existing.body !== null) return { kind: "done", status: existing.status, body: existing.body };
    return { kind: "busy", doc: existing };
  }

  get(team: string, key: string): Promise<IdempotencyDoc | null> {
    return this.col.findOne({ _id: `${team}:${key}` });
  }

  async written(team: string, key: string, plan: SyncPlan): Promise<void> {
    await this.col.updateOne({ _id: `${team}:${key}` }, { $set: { state: "written", plan, leaseUntil: new Date(Date.now() + this.leaseMs) } });
  }

  /** Claims an expired lease; true when this caller now owns the record. */
  async takeOver(doc: IdempotencyDoc): Promise<boolean> {
    const r = await this.col.updateOne(
      { _id: doc._id, state: doc.state, leaseUntil: doc.leaseUntil },
      { $set: { leaseUntil: new Date(Date.now() + this.leaseMs) } },
    );
    return r.modifiedCount === 1;
  }

  async done(team: string, key: string, status: number, body: string): Promise<void> {
    await this.col.updateOne({ _id: `${team}:${key}` }, { $set: { state: "done", status, body } });
  }

  /** Nothing was written: the key is free again so a retry executes. */
  async abandon(team: string, key: string): Promise<void> {
    await this.col.deleteOne({ _id: `${team}:${key}`, state: "pending" });
  }
}
