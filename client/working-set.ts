/**
 * Which of the team's ledger segments a device holds: what it needs to work, not the team's
 * history. Pure: decided from the registry, the status document and what the device itself
 * remembers, without loading a single segment (loading is what a bounded working set avoids).
 */
import type { AutomergeUrl } from "@automerge/automerge-repo";
import type { StatusView } from "./read-docs.js";

/** Days of the team's ledger a device holds beyond its own and open invoices' segments (today included). */
export const DEFAULT_HISTORY_DAYS = 2;

export interface WorkingSetInputs {
  /** Registry key → segment URL (read-docs.ts readSegments). */
  segments: ReadonlyMap<string, AutomergeUrl>;
  deviceId: string;
  status: StatusView;
  /** Today on the device clock, YYYY-MM-DD. */
  today: string;
  historyDays: number;
  /** Own segments not written to any more that the relay acknowledged whole. */
  settled: ReadonlySet<string>;
  /** Segments asked for explicitly (history on demand). */
  pinned: ReadonlySet<string>;
}

/** Why a segment is held; `undefined`: it stays on the relay. */
export type HoldReason = "own" | "undecided" | "recent" | "open-invoice" | "asked";

/** The day `days - 1` days before `today` (YYYY-MM-DD), the first day still recent. */
export function firstRecentDay(today: string, days: number): string {
  const t = Date.parse(`${today}T00:00:00.000Z`);
  return new Date(t - Math.max(0, days - 1) * 86_400_000).toISOString().slice(0, 10);
}

/**
 * The rule, per segment:
 * - own segments, unless settled (not written to any more and acknowledged whole by the relay:
 *   then the rules below decide, as for anyone's);
 * - segments the status has no decided entry of: new, or not decided yet, so their entries
 *   count in the provisional figures (and a status from before this rule holds everything);
 * - segments with an entry of the last `historyDays` days;
 * - segments holding an open invoice's sale (payments and voids are taken against it);
 * - segments asked for.
 */
export function holdReason(key: string, url: AutomergeUrl, inputs: WorkingSetInputs, openInvoiceSegments: ReadonlySet<string>, since: string): HoldReason | undefined {
  if (inputs.pinned.has(url)) return "asked";
  if (key.startsWith(`${inputs.deviceId}/`) && !inputs.settled.has(url)) return "own";
  const day = inputs.status.activity.get(url);
  if (day === undefined) return "undecided";
  if (day >= since) return "recent";
  if (openInvoiceSegments.has(url)) return "open-invoice";
  return undefined;
}

/** Registry key → segment URL of every segment the device should hold. */
export function workingSet(inputs: WorkingSetInputs): Map<string, AutomergeUrl> {
  const openInvoiceSegments = new Set<string>();
  for (const inv of inputs.status.invoices.values()) if (inv.segment && inv.status === "open") openInvoiceSegments.add(inv.segment);
  const since = firstRecentDay(inputs.today, inputs.historyDays);
  const out = new Map<string, AutomergeUrl>();
  for (const [key, url] of inputs.segments) {
    if (holdReason(key, url, inputs, openInvoiceSegments, since) !== undefined) out.set(key, url);
  }
  return out;
}
