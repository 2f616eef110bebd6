/**
 * Team leases in MongoDB, so any number of materializer processes share the teams and a team is
 * decided by one holder at a time (issue 17).
 *
 * A lease is a sequence of *epochs*, one document each (`<team>:lease:<token>`, token 1, 2, ...).
 * Taking a team over means inserting the next epoch: an insert of a new `_id` is atomic on
 * MongoDB and on FerretDB alike, whereas a conditional update is read-modify-write on FerretDB
 * (two takeovers of one expired lease could both succeed). The token is the fencing token: a
 * holder may write only while its epoch is the newest, unexpired and not superseded, and it
 * checks that on every journal write (`check`, inside the batch's transaction where the server
 * has transactions). The taker marks the previous epoch `supersededBy` before inserting its own,
 * so on a replica set the holder's check (an update of that same document) and the takeover
 * conflict and one of them aborts.
 *
 * A pointer document (`_id` = team) remembers the last token; it is only a hint (probing the
 * next `_id`s finds newer epochs), so a lost update of it costs a lookup, never correctness.
 * Every document carries `team`: the collection shards by team like the others.
 */
import type { ClientSession, Collection, Db } from "mongodb";

export const LEASES_COLLECTION = "materializer_leases";

interface EpochDoc {
  _id: string;
  team: string;
  token: number;
  owner: string;
  expiresAt: Date;
  acquiredAt: Date;
  /** Set by the next holder before it takes over; the holder of this epoch then stops writing. */
  supersededBy?: number;
  /** Set on a clean stop, so another instance takes the team at once. */
  released?: boolean;
  lastWriteAt?: Date;
}

interface PointerDoc {
  _id: string;
  team: string;
  token: number;
}

/** A holder whose lease passed or was taken over tried to write. */
export class FencedError extends Error {
  constructor(
    readonly team: string,
    readonly token: number,
    readonly reason: string,
  ) {
    super(`team ${team}: lease ${token} no longer held (${reason}); not writing`);
    this.name = "FencedError";
  }
}

export interface LeaseOptions {
  /**
   * This instance, as other instances and operators see it in the lease documents. Stable across
   * restarts of one instance (its leases are taken back at once), unique among running ones.
   */
  owner: string;
  /** How long a lease lasts without renewal: a dead holder's teams are taken over after this. */
  leaseMs: number;
  now?: () => number;
}

const epochId = (team: string, token: number): string => `${team}:lease:${token}`;

export class Leases {
  readonly #col: Collection<EpochDoc | PointerDoc>;
  readonly #held = new Map<string, number>();
  readonly #now: () => number;

  constructor(
    db: Db,
    readonly opts: LeaseOptions,
  ) {
    this.#col = db.collection<EpochDoc | PointerDoc>(LEASES_COLLECTION);
    this.#now = opts.now ?? Date.now;
  }

  /** The fencing token of a team this process holds. */
  tokenOf(team: string): number | undefined {
    return this.#held.get(team);
  }

  held(): string[] {
    return [...this.#held.keys()];
  }

  /** Takes the team when nobody holds it (or its holder's lease passed); the token, or null. */
  async acquire(team: string): Promise<number | null> {
    const mine = this.#held.get(team);
    if (mine !== undefined) return (await this.renew(team)) ? mine : null;
    const latest = await this.#latest(team);
    const now = this.#now();
    // An instance restarted under the same name (MATERIALIZER_INSTANCE) takes its leases back at
    // once: the process that held them is dead, or is fenced by the new epoch if it is not.
    const ours = latest?.owner === this.opts.owner;
    if (latest && !ours && !latest.released && latest.supersededBy === undefined && latest.expiresAt.getTime() > now) return null;
    const token = (latest?.token ?? 0) + 1;
    if (latest) await this.#col.updateOne({ _id: latest._id }, { $set: { supersededBy: token } });
    try {
      await this.#col.insertOne({ _id: epochId(team, token), team, token, owner: this.opts.owner, expiresAt: new Date(now + this.opts.leaseMs), acquiredAt: new Date(now) });
    } catch (err) {
      if ((err as { code?: unknown }).code === 11000) return null; // another instance took it first
      throw err;
    }
    this.#held.set(team, token);
    // Old epochs stay (one small document per takeover): deleting them could leave a lagging
    // pointer before a gap, and the probe would then hand out a token twice.
    await this.#col.updateOne({ _id: team }, { $set: { team, token } }, { upsert: true });
    return token;
  }

  /** Extends a held lease; false (and the team forgotten) when it was lost meanwhile. */
  async renew(team: string): Promise<boolean> {
    const token = this.#held.get(team);
    if (token === undefined) return false;
    const now = this.#now();
    const res = await this.#col.updateOne(
      { _id: epochId(team, token), owner: this.opts.owner, supersededBy: { $exists: false }, expiresAt: { $gt: new Date(now) } },
      { $set: { expiresAt: new Date(now + this.opts.leaseMs) } },
    );
    if (res.matchedCount === 1 && !(await this.#newer(team, token))) return true;
    this.#held.delete(team);
    return false;
  }

  /**
   * Throws FencedError unless this process holds the team's newest epoch with at least a third
   * of the lease left (so the write that follows finishes well before anyone may take over).
   * Called before every journal write, in the batch's session.
   */
  async check(team: string, session?: ClientSession): Promise<void> {
    const token = this.#held.get(team);
    if (token === undefined) throw new FencedError(team, 0, "not held by this process");
    const now = this.#now();
    const res = await this.#col.updateOne(
      { _id: epochId(team, token), owner: this.opts.owner, supersededBy: { $exists: false }, expiresAt: { $gt: new Date(now + this.opts.leaseMs / 3) } },
      { $set: { lastWriteAt: new Date(now) } },
      session ? { session } : {},
    );
    if (res.matchedCount !== 1) {
      this.#held.delete(team);
      throw new FencedError(team, token, "expired or taken over");
    }
    if (await this.#newer(team, token, session)) {
      this.#held.delete(team);
      throw new FencedError(team, token, `taken over with lease ${token + 1}`);
    }
  }

  /** Gives a team up on a clean stop, so another instance takes it without waiting for expiry. */
  async release(team: string): Promise<void> {
    const token = this.#held.get(team);
    if (token === undefined) return;
    this.#held.delete(team);
    await this.#col.updateOne({ _id: epochId(team, token), owner: this.opts.owner }, { $set: { released: true } });
  }

  async #newer(team: string, token: number, session?: ClientSession): Promise<boolean> {
    return (await this.#col.findOne({ _id: epochId(team, token + 1) }, session ? { session } : {})) !== null;
  }

  /** The newest epoch: from the pointer's token on, by `_id` (FerretDB indexes nothing else). */
  async #latest(team: string): Promise<EpochDoc | null> {
    const pointer = (await this.#col.findOne({ _id: team })) as PointerDoc | null;
    let token = pointer?.token ?? 0;
    let latest = token > 0 ? ((await this.#col.findOne({ _id: epochId(team, token) })) as EpochDoc | null) : null;
    for (;;) {
      const next = (await this.#col.findOne({ _id: epochId(team, token + 1) })) as EpochDoc | null;
      if (!next) return latest;
      latest = next;
      token += 1;
    }
  }
}
