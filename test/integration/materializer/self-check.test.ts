/**
 * The self-check: daily summaries and customer balances that differ from what the journal
 * implies (here, a day's parts that lost most of their invoices, as a kill between the old
 * delete and insert left them, and a balance edited by hand) are found on the next scheduled
 * check, logged, counted in the metrics, and repaired from the journal.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pino } from "pino";
import type { AggregateParts } from "../../../server/materializer/collections.js";
import { addItem, Device, eventually, sale, settled, startShop, type Shop } from "./harness.js";

let shop: Shop;
const devices: Device[] = [];
const logs: Record<string, unknown>[] = [];

beforeAll(async () => {
  const logger = pino({ level: "info" }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
  shop = await startShop(undefined, {}, { selfCheckMs: 500, logger });
  await addItem(shop, "tea", "Tea", 300);
  const a = new Device(shop, "till-a");
  devices.push(a);
  const written = [a.write({ kind: "stock", item: "tea", delta: 50, reason: "delivery", at: "2026-11-20T08:00:00.000Z" })];
  for (let i = 0; i < 10; i++) {
    written.push(a.write({ ...sale("tea", 1, 300, { customer: `c${i % 2}` }), at: `2026-11-20T10:00:${String(i).padStart(2, "0")}.000Z` }));
  }
  await a.online();
  await settled(shop, written);
}, 120_000);

afterAll(async () => {
  for (const d of devices) await d.close();
  await shop.close();
});

describe("self-check", () => {
  it("finds summaries and balances that differ from the journal, reports and repairs them", async () => {
    const { c } = shop.materializer;
    const team = shop.team.team;
    const summaryId = `${team}:2026-11-20`;
    const balanceId = `${team}:c0`;
    const goodSummary = await c.summaries.findOne({ _id: summaryId });
    const goodBalance = await c.balances.findOne({ _id: balanceId });
    expect(goodSummary?.revenue).toBe(3000);
    expect(goodBalance?.outstanding).toBe(1500);

    // Nothing differed before the edits below.
    expect(logs.filter((l) => l.msg === "self-check: repaired summaries and balances that differed from the journal")).toEqual([]);
    // A day's parts that kept only two invoices, its summary recomputed from them, and a balance changed.
    const partsId = `${team}:day:2026-11-20`;
    const parts = JSON.parse((await c.parts.findOne({ _id: partsId }))!.parts) as AggregateParts;
    await c.parts.replaceOne({ _id: partsId }, { team, parts: JSON.stringify({ ...parts, invoices: parts.invoices.slice(0, 2) }) });
    await c.summaries.updateOne({ _id: summaryId }, { $set: { revenue: 600, salesCount: 2, outstanding: 600 } });
    await c.balances.updateOne({ _id: balanceId }, { $set: { outstanding: 1 } });

    await eventually(async () => (await c.summaries.findOne({ _id: summaryId }))?.revenue === 3000, "summary repaired", 30_000);
    await eventually(async () => (await c.balances.findOne({ _id: balanceId }))?.outstanding === 1500, "balance repaired", 30_000);
    expect(await c.summaries.findOne({ _id: summaryId })).toEqual(goodSummary);
    expect(await c.balances.findOne({ _id: balanceId })).toEqual(goodBalance);
    expect(JSON.parse((await c.parts.findOne({ _id: partsId }))!.parts)).toEqual(parts);

    // A check may fall between the three edits above: together, the reports name all three.
    const reports = logs.filter((l) => l.msg === "self-check: repaired summaries and balances that differed from the journal");
    expect(reports.length).toBeGreaterThan(0);
    const ids = new Set(reports.flatMap((r) => (r.differences as { id: string; kind: string }[]).map((d) => `${d.kind} ${d.id}`)));
    expect([...ids].sort()).toEqual([`balance ${balanceId}`, `parts ${partsId}`, `summary ${summaryId}`]);
    const metrics = await shop.materializer.metrics.registry.metrics();
    expect(metrics).toMatch(/materializer_self_check_differences_total\{kind="summary"\} [1-9]/);
    expect(metrics).toMatch(/materializer_self_check_differences_total\{kind="balance"\} [1-9]/);

    // The next check finds nothing.
    await eventually(async () => (await c.teamState.findOne({ _id: team }))?.selfCheck?.differences === 0, "a clean self-check", 30_000);
  }, 120_000);
});
