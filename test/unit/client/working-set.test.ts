/**
 * The working-set rule (client/working-set.ts) over arbitrary registries and status documents:
 * what a device may let go of, and what it must keep.
 */
import { expect, it } from "vitest";
import fc from "fast-check";
import { generateAutomergeUrl, type AutomergeUrl } from "@automerge/automerge-repo";
import type { StatusView } from "../../../client/read-docs.js";
import { firstRecentDay, workingSet } from "../../../client/working-set.js";

const URLS = Array.from({ length: 12 }, () => generateAutomergeUrl());
const DAYS = ["2026-01-05", "2026-03-01", "2026-11-26", "2026-11-27", "2026-11-28"];

const arbCase = fc.record({
  segments: fc.array(fc.record({ device: fc.constantFrom("me", "ana", "bo"), n: fc.nat(5), url: fc.constantFrom(...URLS) }), { maxLength: 12 }),
  activity: fc.array(fc.tuple(fc.constantFrom(...URLS), fc.constantFrom(...DAYS)), { maxLength: 12 }),
  open: fc.array(fc.constantFrom(...URLS), { maxLength: 4 }),
  settled: fc.array(fc.constantFrom(...URLS), { maxLength: 6 }),
  pinned: fc.array(fc.constantFrom(...URLS), { maxLength: 2 }),
  historyDays: fc.integer({ min: 1, max: 3 }),
});

it("keeps own unsettled, undecided, recent, open-invoice and asked-for segments, and nothing else", () => {
  fc.assert(
    fc.property(arbCase, (c) => {
      const segments = new Map<string, AutomergeUrl>(c.segments.map((s) => [`${s.device}/${s.n}`, s.url]));
      const status: StatusView = {
        seq: 1, stock: new Map(), verdicts: new Map(), activity: new Map(c.activity),
        invoices: new Map(c.open.map((u, i) => [`inv-${i}`, { total: 10, paid: 0, outstanding: 10, status: "open" as const, segment: u }])),
      };
      const settled = new Set<string>(c.settled);
      const pinned = new Set<string>(c.pinned);
      const held = workingSet({ segments, deviceId: "me", status, today: "2026-11-28", historyDays: c.historyDays, settled, pinned });
      const since = firstRecentDay("2026-11-28", c.historyDays);
      for (const [key, url] of segments) {
        const day = status.activity.get(url);
        const must =
          (key.startsWith("me/") && !settled.has(url)) || day === undefined || day >= since || c.open.includes(url) || pinned.has(url);
        expect(held.has(key), `${key} ${url}`).toBe(must);
      }
    }),
    { numRuns: 500 },
  );
});

it("counts today as the first of the recent days", () => {
  expect(firstRecentDay("2026-11-28", 1)).toBe("2026-11-28");
  expect(firstRecentDay("2026-03-01", 2)).toBe("2026-02-28");
});
