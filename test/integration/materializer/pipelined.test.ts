/**
 * Projections written behind the journal (projection-lane.ts): a batch is decided while the
 * previous batches' projections are still being written, against what they set (stock levels,
 * invoices, items first seen in a sale). Whatever the cut into batches, the journal and every
 * projection must be exactly what batches written one after the other give.
 */
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { collections, ensureIndexes, type Collections } from "../../../server/materializer/collections.js";
import { processBatch, type BatchContext, type BatchEntry } from "../../../server/materializer/batch.js";
import { catchUp } from "../../../server/materializer/projections.js";
import { DEFAULT_SETTINGS, type LedgerEntry } from "../../../shared/domain/index.js";
import { freshDb, type TestDb } from "../../helpers/db.js";

const TEAM = "pipe";
const NOW = "2026-11-28T10:00:00.000Z";

/** Three tills: deliveries, sales (some before any stock, some on credit), payments (one too many), voids. */
function ledger(): LedgerEntry[] {
  const out: LedgerEntry[] = [];
  const credit: string[] = [];
  for (let i = 0; i < 14; i++) {
    for (const till of ["a", "b", "c"]) {
      const base = { id: `${till}-${i}`, at: new Date(Date.UTC(2026, 10, 27, 8, i, till.charCodeAt(0) - 97)).toISOString(), device: till, user: `u-${till}` };
      const item = `item-${i % 3}`;
      if (i % 5 === 2) out.push({ ...base, kind: "stock", item, delta: 2, reason: "delivery" });
      else if (i % 5 === 4 && credit.length > 0) {
        const invoice = credit.shift()!;
        out.push(i % 3 === 0 ? { ...base, kind: "void", invoice, reason: "returned" } : { ...base, kind: "payment", invoice, amount: i % 2 ? 300 : 900 });
      } else {
        const onCredit = (i + till.length) % 2 === 0;
        out.push({
          ...base, kind: "sale", lines: [{ item, quantity: 1, price: 600, name: `Item ${i % 3}` }], subtotal: 600, tax: 0, discount: 0, total: 600,
          customer: onCredit ? `cust-${till}` : null, paid: onCredit ? 0 : 600,
        });
        if (onCredit) credit.push(base.id);
      }
    }
  }
  return out;
}

async function runAll(c: Collections, entries: LedgerEntry[], cuts: number[], pipelined: boolean): Promise<void> {
  const ctx: BatchContext = {
    c, transactions: false, heads: new Map(), decidedIds: new Map(), invoices: new Map(), ...(pipelined ? { lanes: new Map() } : {}),
  };
  let i = 0;
  for (const size of cuts) {
    if (i >= entries.length) break;
    const batch: BatchEntry[] = entries.slice(i, i + size).map((e) => ({ key: e.id, raw: e, provenance: { segment: `seg-${e.device}`, device: e.device, change: null, actor: null } }));
    await processBatch(ctx, TEAM, batch, DEFAULT_SETTINGS, new Map(), NOW);
    i += size;
  }
  await ctx.lanes?.get(TEAM)?.drain();
}

const COMPARED = ["journal", "decided", "stock", "movements", "invoices", "payments", "purchases", "items", "rejections", "summaries", "balances", "parts", "teamState"] as const;

async function contents(c: Collections): Promise<Record<string, unknown[]>> {
  const out: Record<string, unknown[]> = {};
  for (const name of COMPARED) {
    const docs = await (c[name] as Collections["journal"]).find({}).sort({ _id: 1 }).toArray();
    out[name] = docs.map((d) => ({ ...d, updatedAt: undefined }));
  }
  return out;
}

describe("projections written behind the journal", () => {
  const dbs: TestDb[] = [];
  afterAll(async () => {
    for (const d of dbs) await d.close();
  });

  it("give the journal and projections of batches written one after the other, whatever the cut", async () => {
    const entries = ledger();
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 1, max: 6 }), { minLength: entries.length, maxLength: entries.length }), async (cuts) => {
        const [one, two] = [await freshDb("pipe"), await freshDb("pipe")];
        dbs.push(one, two);
        const [sequential, pipelined] = [collections(one.db), collections(two.db)];
        await Promise.all([ensureIndexes(sequential), ensureIndexes(pipelined)]);
        await runAll(sequential, entries, cuts, false);
        await runAll(pipelined, entries, cuts, true);
        const [want, got] = [await contents(sequential), await contents(pipelined)];
        // The ledger exercises what crosses batches: stock taken, invoices paid and voided, refusals.
        const statuses = new Set((want.journal as { status: string; reason: string | null }[]).map((r) => `${r.status}:${r.reason?.split(" ")[0] ?? ""}`));
        expect(statuses.size).toBeGreaterThanOrEqual(3);
        for (const name of COMPARED) expect(got[name], name).toEqual(want[name]);
      }),
      { numRuns: 2, endOnFailure: true },
    );
  }, 60_000);

  it("a projection write that fails stops deciding until a catch-up, which brings every projection to the journal", async () => {
    const entries = ledger();
    const [one, two] = [await freshDb("pipe"), await freshDb("pipe")];
    dbs.push(one, two);
    const [sequential, pipelined] = [collections(one.db), collections(two.db)];
    await Promise.all([ensureIndexes(sequential), ensureIndexes(pipelined)]);
    const cuts = entries.map(() => 3);
    await runAll(sequential, entries, cuts, false);

    // A stock level under another `_id` for an item the ledger delivers: the unique (team, item)
    // index refuses the projection's insert of that item's level.
    await pipelined.stock.insertOne({ _id: "squatter", team: TEAM, item: "item-2", level: 99, seq: 0 });
    const ctx: BatchContext = { c: pipelined, transactions: false, heads: new Map(), decidedIds: new Map(), invoices: new Map(), lanes: new Map() };
    let failure: unknown;
    let i = 0;
    for (; i < entries.length && failure === undefined; i += 3) {
      const batch: BatchEntry[] = entries.slice(i, i + 3).map((e) => ({ key: e.id, raw: e, provenance: { segment: `seg-${e.device}`, device: e.device, change: null, actor: null } }));
      await processBatch(ctx, TEAM, batch, DEFAULT_SETTINGS, new Map(), NOW).catch((err: unknown) => (failure = err));
      await ctx.lanes!.get(TEAM)!.settled();
    }
    expect(String(failure)).toMatch(/duplicate key|E11000/i);
    // The batch that failed decided nothing: the journal holds only the batches before it.
    expect(await pipelined.journal.countDocuments({ team: TEAM })).toBe(i - 3);
    const state = await pipelined.teamState.findOne({ _id: TEAM });
    expect(state?.projectedSeq ?? 0).toBeLessThan(i - 3);

    await pipelined.stock.deleteOne({ _id: "squatter" });
    await catchUp(pipelined, TEAM);
    await runAll(pipelined, entries.slice(i - 3), cuts, true);
    const [want, got] = [await contents(sequential), await contents(pipelined)];
    for (const name of COMPARED) expect(got[name], name).toEqual(want[name]);
  }, 60_000);
});
