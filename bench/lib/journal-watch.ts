/**
 * Notices when entries reach the journal in MongoDB: polls the team's journal by sequence
 * number (an indexed range read, the auditor's change feed) and stamps each entry id with the
 * time it was first seen. Resolution is the poll interval.
 */
import type { Db } from "mongodb";

export class JournalWatch {
  readonly seenAt = new Map<string, number>();
  private lastSeq = 0;
  private timer: NodeJS.Timeout | undefined;
  private busy = false;

  constructor(
    private readonly db: Db,
    private readonly team: string,
    private readonly everyMs = 50,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.poll(), this.everyMs);
  }

  async poll(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const rows = await this.db
        .collection<{ team: string; seq: number; entryId: string }>("journal")
        .find({ team: this.team, seq: { $gt: this.lastSeq } }, { projection: { seq: 1, entryId: 1 } })
        .sort({ seq: 1 })
        .limit(5000)
        .toArray();
      const now = Date.now();
      for (const r of rows) {
        if (!this.seenAt.has(r.entryId)) this.seenAt.set(r.entryId, now);
        this.lastSeq = Math.max(this.lastSeq, r.seq);
      }
    } catch {
      // A slow or busy database: the next poll tries again.
    } finally {
      this.busy = false;
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}

/** projectedSeq of the team: every journal record up to it is in the projections. */
export async function projectedSeq(db: Db, team: string): Promise<number> {
  const s = await db.collection<{ _id: string; projectedSeq: number }>("materializer_state").findOne({ _id: team });
  return s?.projectedSeq ?? 0;
}
