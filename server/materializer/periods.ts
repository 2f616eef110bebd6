/**
 * Closing a team's books (docs/AUDIT.md "Closed periods"). Only the team's materializer closes,
 * between two batches: the close then falls between two journal records, and every record after
 * it is decided with it in force (shared/domain/periods.ts). Admins ask through the API, which
 * stores a request; the `closeAfterHours` setting asks by itself.
 *
 * A close is one insert of one document, and nothing else must be written with it: a SIGKILL
 * leaves the team closed (the document is there, complete) or not yet closed (it is not, and
 * the request is still there to be applied again). Requests are deleted only after the close is
 * stored; a request already covered is simply dropped.
 */
import type { ClientSession } from "mongodb";
import { dayOf, dueClosedThrough, isDay, type TeamSettings } from "../../shared/domain/index.js";
import { teamKey, type ClosedPeriodDoc, type Collections } from "./collections.js";
import type { ChainHead } from "./journal.js";
import { pausePoint } from "./pause-points.js";

/** The team's latest close, or null when no day was ever closed. */
export async function latestClose(c: Collections, team: string): Promise<ClosedPeriodDoc | null> {
  return c.closedPeriods.find({ team }).sort({ through: -1 }).limit(1).next();
}

export interface CloseContext {
  c: Collections;
  team: string;
  now: string;
  settings: TeamSettings;
  /** The journal's head now (asked only when a close is due): the close falls right after it. */
  head: () => Promise<ChainHead>;
  /** The close in force (latestClose), null when none. */
  current: ClosedPeriodDoc | null;
  fence?: ((team: string, session?: ClientSession) => Promise<void>) | undefined;
  /** Waits for projections queued behind the journal (projection-lane.ts): a close freezes summaries. */
  settle?: () => Promise<void>;
}

/**
 * Applies what is due: the latest day asked for by an admin (up to today) or by the setting. Returns
 * the new close, or null when nothing is due, or when the projections are behind the journal (a
 * close freezes the summaries as they are, so they must be the journal's: tried again next time).
 */
export async function closeDue(ctx: CloseContext): Promise<ClosedPeriodDoc | null> {
  const { c, team, now, current } = ctx;
  const today = dayOf(now);
  const requests = (await c.closeRequests.find({ team }).toArray()).filter((r) => isDay(r.through) && r.through <= today);
  const asked = requests.reduce<(typeof requests)[number] | null>((best, r) => (best === null || r.through > best.through ? r : best), null);
  const bySetting = dueClosedThrough(now, ctx.settings.closeAfterHours);
  const through = [asked?.through ?? null, bySetting].reduce<string | null>((a, b) => (b !== null && (a === null || b > a) ? b : a), null);
  const covered = current?.through ?? null;
  if (through === null || (covered !== null && through <= covered)) {
    if (covered !== null) await dropCovered(c, team, covered);
    return null;
  }
  await ctx.settle?.();
  const head = await ctx.head();
  const projected = (await c.teamState.findOne({ _id: team }))?.projectedSeq ?? 0;
  if (projected !== head.seq) return null;

  const days = await c.summaries.find({ team, day: { $gt: covered ?? "", $lte: through } }).sort({ day: 1 }).toArray();
  const byAdmin = asked !== null && asked.through === through;
  const doc: ClosedPeriodDoc = {
    _id: teamKey(team, through),
    team,
    through,
    previousThrough: covered,
    seq: head.seq,
    head: head.recordHash,
    closedAt: now,
    closedBy: byAdmin ? asked.by : null,
    cause: byAdmin ? "admin" : "setting",
    summaries: days.map((d) => ({
      day: d.day, salesCount: d.salesCount, voidCount: d.voidCount, revenue: d.revenue, paymentsReceived: d.paymentsReceived, outstanding: d.outstanding,
    })),
  };
  await ctx.fence?.(team);
  try {
    await c.closedPeriods.insertOne(doc);
  } catch (err) {
    // Stored by an earlier attempt that died before it could say so: that one stands.
    if ((err as { code?: number }).code !== 11000) throw err;
    const stored = await c.closedPeriods.findOne({ _id: doc._id });
    if (!stored) throw err;
    await dropCovered(c, team, through);
    return stored;
  }
  await pausePoint("after-close");
  await dropCovered(c, team, through);
  return doc;
}

async function dropCovered(c: Collections, team: string, through: string): Promise<void> {
  await c.closeRequests.deleteMany({ team, through: { $lte: through } });
}
