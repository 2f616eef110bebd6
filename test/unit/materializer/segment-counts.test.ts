/**
 * The tally behind the sync-status rows against a plain scan of the same history, on random
 * histories: ids listed by several segments, records in any order, entries that wait and are
 * decided later (from their own segment or another copy), records replayed after a crash.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { JournalRecord } from "../../../server/materializer/collections.js";
import { SegmentTally } from "../../../server/materializer/segment-counts.js";

const SEGMENTS = ["s0", "s1", "s2"];
const STATUSES: JournalRecord["status"][] = ["accepted", "rejected", "invalid"];

type Event = { kind: "record"; id: string; segment: string; status: JournalRecord["status"] } | { kind: "defer"; id: string; segment: string };

const id = fc.integer({ min: 0, max: 30 }).map((n) => `e${n}`);
const segment = fc.constantFrom(...SEGMENTS);
const event: fc.Arbitrary<Event> = fc.oneof(
  fc.record({ kind: fc.constant("record" as const), id, segment, status: fc.constantFrom(...STATUSES) }),
  fc.record({ kind: fc.constant("defer" as const), id, segment }),
);

/** What the journal and the waiting entries hold after these events, and each segment's row by scanning them. */
function scan(events: readonly Event[], listed: Record<string, string[]>) {
  const journal = new Map<string, { segment: string; status: JournalRecord["status"] }>();
  const waiting = new Map<string, string>();
  for (const e of events) {
    if (e.kind === "record") {
      if (journal.has(e.id)) continue; // unique by entry id: a replay is refused
      journal.set(e.id, { segment: e.segment, status: e.status });
      waiting.delete(e.id);
    } else if (!journal.has(e.id)) waiting.set(e.id, e.segment); // the deferred record is replaced whole
  }
  const home = (x: string): string | undefined => journal.get(x)?.segment ?? waiting.get(x);
  return Object.fromEntries(
    SEGMENTS.map((s) => {
      const mine = [...journal.values()].filter((r) => r.segment === s);
      return [s, {
        listed: listed[s]!.length,
        accepted: mine.filter((r) => r.status === "accepted").length,
        rejected: mine.filter((r) => r.status === "rejected").length,
        invalid: mine.filter((r) => r.status === "invalid").length,
        deferred: [...waiting.values()].filter((w) => w === s).length,
        duplicates: listed[s]!.filter((x) => home(x) !== undefined && home(x) !== s).length,
      }];
    }),
  );
}

describe("segment tally", () => {
  it("gives every segment the figures a scan of the journal, the waiting entries and its document gives", () => {
    fc.assert(
      fc.property(
        fc.array(event, { maxLength: 80 }),
        fc.record({ s0: fc.uniqueArray(id, { maxLength: 20 }), s1: fc.uniqueArray(id, { maxLength: 20 }), s2: fc.uniqueArray(id, { maxLength: 20 }) }),
        (events, listed: Record<string, string[]>) => {
          const tally = new SegmentTally();
          for (const e of events) {
            if (e.kind === "record") tally.record(e.id, e.status, e.segment);
            else tally.defer(e.id, e.segment);
          }
          const want = scan(events, listed);
          for (const s of SEGMENTS) {
            const row = tally.row("t", s, null, listed[s]!, [], "now");
            const { listed: l, accepted, rejected, invalid, deferred, duplicates } = row;
            expect({ listed: l, accepted, rejected, invalid, deferred, duplicates }).toEqual(want[s]);
            expect(row.duplicateEntries.every((d) => d.home !== s)).toBe(true);
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});
