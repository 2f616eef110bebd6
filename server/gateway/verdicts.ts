/**
 * Waiting for the materializer: the journal is the authority, so the gateway polls it for its
 * entries' records (a cheap `_id $in` query) and then for the projections to reach them.
 */
import { teamKey, type Collections, type JournalRecord } from "../materializer/collections.js";

export type JournalVerdict = Pick<JournalRecord, "entryId" | "status" | "reason" | "seq">;

export class VerdictTimeout extends Error {
  constructor(readonly missing: number) {
    super(`${missing} entries not decided in time`);
    this.name = "VerdictTimeout";
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function waitForVerdicts(c: Collections, team: string, ids: readonly string[], timeoutMs: number): Promise<Map<string, JournalVerdict>> {
  const found = new Map<string, JournalVerdict>();
  const deadline = Date.now() + timeoutMs;
  let delay = 20;
  for (;;) {
    const missing = ids.filter((id) => !found.has(id));
    if (missing.length === 0) break;
    const records = await c.journal
      .find({ _id: { $in: missing.map((id) => teamKey(team, id)) } }, { projection: { entryId: 1, status: 1, reason: 1, seq: 1 } })
      .toArray();
    for (const r of records) found.set(r.entryId, { entryId: r.entryId, status: r.status, reason: r.reason, seq: r.seq });
    if (found.size === ids.length) break;
    if (Date.now() > deadline) throw new VerdictTimeout(ids.length - found.size);
    await sleep(delay);
    delay = Math.min(delay * 2, 200);
  }
  const maxSeq = Math.max(0, ...[...found.values()].map((v) => v.seq));
  for (;;) {
    const state = await c.teamState.findOne({ _id: team });
    if ((state?.projectedSeq ?? 0) >= maxSeq) break;
    if (Date.now() > deadline) throw new VerdictTimeout(0);
    await sleep(25);
  }
  return found;
}
