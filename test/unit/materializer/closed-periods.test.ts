/**
 * Closed periods (issue 16), pure: the shared rules book late entries in the first open day and
 * adjust invoices of closed days there; the materializer's aggregates turn that into summaries.
 * Over any arrival order and any closes between batches: no closed day's summary ever changes,
 * the summaries over all days add up to the invoices and payments, and a replay of the journal
 * with the closes (the deep verification's) gives every booking again.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  DEFAULT_SETTINGS,
  decideBatch,
  dueClosedThrough,
  emptyState,
  withCatalogItems,
  type LedgerEntry,
  type LedgerState,
  type Verdict,
} from "../../../shared/domain/index.js";
import { checkClosedDays, replayJournal } from "../../../server/audit/deep.js";
import { daySummary, mergeParts, partsUpdates, touchedBy } from "../../../server/materializer/aggregates.js";
import type { AggregateParts, ClosedPeriodDoc, DailySummaryDoc, JournalRecord } from "../../../server/materializer/collections.js";
import { seal, type ChainHead } from "../../../server/materializer/journal.js";

const TEAM = "t";
const SETTINGS = { ...DEFAULT_SETTINGS, deferWaitSeconds: 365 * 24 * 3600 };
const day = (d: number): string => `2026-11-0${d}`;
const at = (d: number, s = 0): string => `${day(d)}T10:00:${String(s).padStart(2, "0")}.000Z`;

function base(): LedgerState {
  return withCatalogItems(emptyState(), [{ id: "tea", name: "Tea", price: 100, unit: "pcs", group: null, description: "", active: true }]);
}

function sale(id: string, d: number, total: number, paid: number, customer: string | null = null): LedgerEntry {
  return { id, kind: "sale", at: at(d), device: "till", user: "ana", lines: [{ item: "tea", quantity: total / 100, price: 100 }], subtotal: total, tax: 0, discount: 0, total, customer, paid };
}
const payment = (id: string, d: number, invoice: string, amount: number): LedgerEntry => ({ id, kind: "payment", at: at(d, 1), device: "till", user: "ana", invoice, amount });
const voidOf = (id: string, d: number, invoice: string): LedgerEntry => ({ id, kind: "void", at: at(d, 2), device: "till", user: "ana", invoice, reason: "returned" });

/** A team's books in memory: the rules, the journal as the materializer seals it, the closes. */
class Books {
  state = base();
  records: JournalRecord[] = [];
  closes: { seq: number; through: string }[] = [];
  /** Day parts as the materializer keeps them, batch after batch. */
  parts = new Map<string, AggregateParts>();
  private head: ChainHead = { seq: 0, recordHash: "" };
  private n = 0;

  constructor() {
    // Stock from the journal itself, so a replay from nothing has it too.
    this.decide([{ id: "delivery", kind: "stock", at: at(1), device: "till", user: "ana", item: "tea", delta: 1000, reason: "delivery" }]);
  }

  get closedThrough(): string | null {
    return this.closes.at(-1)?.through ?? null;
  }

  close(through: string): void {
    if (this.closedThrough === null || through > this.closedThrough) this.closes.push({ seq: this.head.seq, through });
  }

  decide(entries: readonly LedgerEntry[]): Verdict[] {
    const now = `2026-11-10T00:00:${String(this.n++ % 60).padStart(2, "0")}.000Z`;
    const result = decideBatch(this.state, entries.map((e) => ({ key: e.id, raw: e })), SETTINGS, now, this.closedThrough);
    this.state = result.state;
    const finals = result.verdicts.filter((v) => v.status !== "deferred");
    const sealed = seal(this.head, finals.map((v) => ({
      _id: `${TEAM}:${v.id}`, team: TEAM, entryId: v.id, kind: v.entry?.kind ?? null, status: v.status as JournalRecord["status"], reason: v.reason ?? null,
      flags: v.flags ?? [], hash: v.hash, entry: v.entry ?? null, effects: v.effects, ...(v.booking ? { booking: v.booking } : {}),
      provenance: { segment: "s", device: "till", change: null, actor: null }, decidedAt: now,
    })));
    this.records.push(...sealed);
    if (sealed.length > 0) this.head = { seq: sealed.at(-1)!.seq, recordHash: sealed.at(-1)!.recordHash };
    for (const [d, u] of partsUpdates(touchedBy(TEAM, sealed)).days) this.parts.set(d, mergeParts(this.parts.get(d), u, "day"));
    return result.verdicts;
  }

  /** Summaries as the stored parts give them (what the materializer writes). */
  summaries(): Map<string, DailySummaryDoc> {
    return new Map([...this.parts].map(([d, p]) => [d, daySummary(TEAM, d, p)]));
  }

  /** Summaries from the whole journal at once (what a rebuild and the deep verification compute). */
  rebuilt(): Map<string, DailySummaryDoc> {
    const { days } = partsUpdates(touchedBy(TEAM, this.records));
    return new Map([...days].map(([d, u]) => [d, daySummary(TEAM, d, mergeParts(undefined, u, "day"))]));
  }
}

describe("booking entries dated in a closed day", () => {
  it("a late sale keeps its date, is counted in the first open day, and the closed day stays as it was", () => {
    const books = new Books();
    books.decide([sale("s1", 1, 500, 100)]);
    books.close(day(2));
    const closed = books.summaries().get(day(1));
    const [v] = books.decide([sale("s2", 1, 300, 300)]);
    expect(v!.booking).toEqual({ late: true, day: day(3), closedThrough: day(2), adjustments: [] });
    const invoice = v!.effects.find((e) => e.type === "invoice");
    expect(invoice?.type === "invoice" && invoice.invoice).toMatchObject({ at: at(1), day: day(1), bookedOn: day(3) });
    expect(books.summaries().get(day(1))).toEqual(closed);
    expect(books.summaries().get(day(3))).toMatchObject({ salesCount: 1, revenue: 300, paymentsReceived: 300, outstanding: 0 });
  });

  it("a payment or void on an invoice of a closed day is an adjustment in the first open day; a payment dated in a closed day is late", () => {
    const books = new Books();
    books.decide([sale("s1", 1, 500, 100), sale("s2", 1, 400, 0)]);
    books.close(day(1));
    const closed = books.summaries().get(day(1));
    expect(closed).toMatchObject({ salesCount: 2, revenue: 900, paymentsReceived: 100, outstanding: 800 });
    const [p] = books.decide([payment("p1", 3, "s1", 150)]);
    expect(p!.booking).toEqual({
      late: false, day: day(2), closedThrough: day(1),
      adjustments: [{ invoice: "s1", salesCount: 0, voidCount: 0, revenue: 0, paymentsReceived: 0, outstanding: -150 }],
    });
    const [late] = books.decide([payment("p2", 1, "s1", 50)]);
    expect(late!.booking?.late).toBe(true);
    const paid = late!.effects.find((e) => e.type === "payment");
    expect(paid?.type === "payment" && paid.payment).toMatchObject({ day: day(1), bookedOn: day(2) });
    const [v] = books.decide([voidOf("v1", 3, "s2")]);
    expect(v!.booking?.adjustments).toEqual([{ invoice: "s2", salesCount: -1, voidCount: 1, revenue: -400, paymentsReceived: 0, outstanding: -400 }]);
    const s = books.summaries();
    expect(s.get(day(1))).toEqual(closed);
    // Day 2 (the first open day) carries the adjustments and the late payment; day 3 the on-time payment.
    expect(s.get(day(2))).toMatchObject({ salesCount: -1, voidCount: 1, revenue: -400, paymentsReceived: 50, outstanding: -600 });
    expect(s.get(day(3))).toMatchObject({ salesCount: 0, revenue: 0, paymentsReceived: 150, outstanding: 0 });
    expect(replayJournal(books.records, SETTINGS, books.closes)).toEqual([]);
  });

  it("a replay without the close, or with another one, names the booking", () => {
    const books = new Books();
    books.decide([sale("s1", 1, 500, 0)]);
    books.close(day(1));
    books.decide([sale("s2", 1, 300, 0)]);
    const withoutClose = replayJournal(books.records, SETTINGS, []);
    expect(withoutClose).toHaveLength(1);
    expect(withoutClose[0]!.reason).toMatch(/^effects: the rules give .* the record says/);
    const laterClose = replayJournal(books.records, SETTINGS, [{ seq: 1, through: day(2) }]);
    expect(laterClose[0]!.reason).toMatch(/^effects|^booking/);
  });

  it("the deep check names a closed day that changed, a day that had no summary, and a close whose head is not the journal's", () => {
    const books = new Books();
    books.decide([sale("s1", 2, 500, 0)]);
    const head = books.records.at(-1)!;
    const { _id, team: _t, ...figures } = books.summaries().get(day(2))!;
    const close: ClosedPeriodDoc = {
      _id: `${TEAM}:${day(2)}`, team: TEAM, through: day(2), previousThrough: null, seq: head.seq, head: head.recordHash,
      closedAt: "2026-11-10T00:00:00.000Z", closedBy: "ana", cause: "admin", summaries: [figures],
    };
    expect(checkClosedDays(books.records, [close], [...books.rebuilt().values()])).toEqual([]);
    // A sale booked into day 1 after all (as if the journal ignored the close), and a forged head.
    const implied = [...books.rebuilt().values(), { ...books.rebuilt().get(day(2))!, _id: `${TEAM}:${day(1)}`, day: day(1) }];
    expect(checkClosedDays(books.records, [{ ...close, head: "f".repeat(64), summaries: [{ ...figures, revenue: 400 }] }], implied)).toEqual([
      `CLOSE ${day(2)}: closed at seq ${head.seq} with head ffffffffffffffff, the journal has ${head.recordHash.slice(0, 16)}`,
      `CLOSED-DAY-CHANGED ${day(1)} salesCount: 0 (no summary when it closed), the journal now gives 1`,
      `CLOSED-DAY-CHANGED ${day(1)} revenue: 0 (no summary when it closed), the journal now gives 500`,
      `CLOSED-DAY-CHANGED ${day(1)} outstanding: 0 (no summary when it closed), the journal now gives 500`,
      `CLOSED-DAY-CHANGED ${day(2)} revenue: 400 (closed through ${day(2)} at seq ${head.seq}), the journal now gives 500`,
    ]);
  });

  it("closeAfterHours closes a day that many hours after its end", () => {
    expect(dueClosedThrough("2026-11-21T05:59:59.000Z", 6)).toBe("2026-11-19");
    expect(dueClosedThrough("2026-11-21T06:00:00.000Z", 6)).toBe("2026-11-20");
    expect(dueClosedThrough("2026-11-21T00:00:00.000Z", 0)).toBe("2026-11-20");
    expect(dueClosedThrough("2026-11-21T00:00:00.000Z", 48)).toBe("2026-11-18");
    expect(dueClosedThrough("2026-11-21T00:00:00.000Z", null)).toBeNull();
    expect(dueClosedThrough("not a time", 6)).toBeNull();
  });
});

type Op = { kind: "sale"; d: number; total: number; paid: number } | { kind: "payment"; d: number; invoice: number; amount: number } | { kind: "void"; d: number; invoice: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("sale" as const), d: fc.integer({ min: 1, max: 5 }), total: fc.integer({ min: 1, max: 5 }).map((n) => n * 100), paid: fc.integer({ min: 0, max: 5 }).map((n) => n * 100) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("payment" as const), d: fc.integer({ min: 1, max: 5 }), invoice: fc.nat(7), amount: fc.integer({ min: 1, max: 300 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("void" as const), d: fc.integer({ min: 1, max: 5 }), invoice: fc.nat(7) }) },
);

function entriesOf(ops: readonly Op[]): LedgerEntry[] {
  const sales = ops.flatMap((o, i) => (o.kind === "sale" ? [`s${i}`] : []));
  return ops.flatMap((o, i): LedgerEntry[] => {
    if (o.kind === "sale") return [sale(`s${i}`, o.d, o.total, Math.min(o.paid, o.total), i % 2 ? "c1" : null)];
    const invoice = sales.length > 0 ? sales[o.invoice % sales.length]! : "none";
    return o.kind === "payment" ? [payment(`p${i}`, o.d, invoice, o.amount)] : [voidOf(`v${i}`, o.d, invoice)];
  });
}

describe("any arrival order, any closes between batches", () => {
  it("closed days never change, all days add up to the invoices and payments, and the journal replays", () => {
    fc.assert(
      fc.property(
        fc.array(opArb, { minLength: 1, maxLength: 14 }),
        fc.array(fc.nat(1000), { minLength: 14, maxLength: 14 }),
        fc.array(fc.option(fc.integer({ min: 1, max: 5 }), { nil: undefined }), { minLength: 6, maxLength: 6 }),
        (ops, order, closeAfter) => {
          const entries = entriesOf(ops).map((e, i) => ({ e, k: order[i] ?? 0 })).sort((a, b) => a.k - b.k).map((x) => x.e);
          const books = new Books();
          const frozen = new Map<string, DailySummaryDoc | undefined>();
          const chunk = Math.max(1, Math.ceil(entries.length / 5));
          for (let b = 0; b * chunk < entries.length; b++) {
            books.decide(entries.slice(b * chunk, (b + 1) * chunk));
            const c = closeAfter[b];
            if (c !== undefined && (books.closedThrough === null || day(c) > books.closedThrough)) {
              books.close(day(c));
              const now = books.summaries();
              for (let d = 1; d <= c; d++) if (!frozen.has(day(d))) frozen.set(day(d), now.get(day(d)));
            }
            const now = books.summaries();
            for (const [d, s] of frozen) expect(now.get(d), `closed day ${d}`).toEqual(s);
          }
          const summaries = books.summaries();
          expect(books.rebuilt()).toEqual(summaries);

          // The totals over all days are the journal's.
          const invoices = Object.values(books.state.invoices).filter((i) => i.status !== "rejected");
          const payments = books.records.flatMap((r) => r.effects.flatMap((e) => (e.type === "payment" ? [e.payment.amount] : [])));
          const sum = (f: keyof DailySummaryDoc): number => [...summaries.values()].reduce((n, s) => n + (s[f] as number), 0);
          expect(sum("salesCount")).toBe(invoices.filter((i) => i.status !== "void").length);
          expect(sum("voidCount")).toBe(invoices.filter((i) => i.status === "void").length);
          expect(sum("revenue")).toBe(invoices.filter((i) => i.status !== "void").reduce((n, i) => n + i.total, 0));
          expect(sum("outstanding")).toBe(invoices.filter((i) => i.status === "open").reduce((n, i) => n + i.total - i.paid, 0));
          expect(sum("paymentsReceived")).toBe(invoices.reduce((n, i) => n + i.initialPaid, 0) + payments.reduce((n, a) => n + a, 0));

          expect(replayJournal(books.records, SETTINGS, books.closes)).toEqual([]);
        },
      ),
      { numRuns: 200 },
    );
  });
});
