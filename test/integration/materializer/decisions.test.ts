/**
 * The materializer against the real relay and the real MongoDB-wire server: what a shop owner
 * and an auditor would check after devices come back online.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addItem, Device, eventually, sale, settled, startShop, type Shop } from "./harness.js";

let shop: Shop;
const devices: Device[] = [];
beforeAll(async () => {
  shop = await startShop();
});
afterAll(async () => {
  for (const d of devices) await d.close();
  await shop.close();
});

function device(id: string): Device {
  const d = new Device(shop, id);
  devices.push(d);
  return d;
}

describe("materializer", () => {
  it("oversell storm: of 10 offline devices selling the last 3 units, exactly one sale is accepted", async () => {
    const c = shop.materializer.c;
    const team = shop.team.team;
    await addItem(shop, "lamp", "Desk lamp", 2500);
    const office = device("office-till");
    const receipt = office.write({ kind: "stock", item: "lamp", delta: 3, reason: "delivery", at: "2026-11-22T08:00:00.000Z" });
    await office.online();
    await settled(shop, [receipt]);

    const tablets = Array.from({ length: 10 }, (_, i) => device(`tablet-${i}`));
    const sales = tablets.map((t, i) => t.write({ ...sale("lamp", 3, 2500), at: `2026-11-22T10:00:0${i}.000Z` }));
    await Promise.all(tablets.map((t) => t.online()));
    await settled(shop, sales);

    const records = await c.journal.find({ team, entryId: { $in: sales } }).sort({ seq: 1 }).toArray();
    const accepted = records.filter((r) => r.status === "accepted");
    const rejected = records.filter((r) => r.status === "rejected");
    expect(accepted).toHaveLength(1);
    // Which sale wins is arrival order: (at, id) within a batch, and the tablets' sales may reach
    // the materializer in more than one batch (it waits only 30 ms for more after a change).
    const winner = sales.indexOf(accepted[0]!.entryId);
    expect(rejected).toHaveLength(9);
    for (const r of rejected) expect(r.reason).toBe("insufficient stock for item lamp: requested 3, available 0");
    expect((await c.stock.findOne({ team, item: "lamp" }))?.level).toBe(0);
    expect(await c.rejections.countDocuments({ team })).toBe(9);

    // Each tablet shows its own verdict, synced back through the relay.
    for (const [i, t] of tablets.entries()) {
      await eventually(async () => (await t.verdict(sales[i]!))?.status !== undefined, `verdict on tablet ${i}`, 20_000);
      const v = await t.verdict(sales[i]!);
      if (i === winner) expect(v).toMatchObject({ status: "accepted" });
      else expect(v).toEqual(expect.objectContaining({ status: "rejected", reason: "insufficient stock for item lamp: requested 3, available 0" }));
    }
  });

  it("overpayment from two devices: the accepted payments never exceed the invoice", async () => {
    const c = shop.materializer.c;
    const team = shop.team.team;
    await addItem(shop, "chair", "Chair", 4000);
    const a = device("pay-a");
    const b = device("pay-b");
    a.write({ kind: "stock", item: "chair", delta: 5, reason: "delivery", at: "2026-11-22T08:00:00.000Z" });
    const invoice = a.write({ ...sale("chair", 1, 4000, { customer: "cust-1" }), at: "2026-11-22T11:00:00.000Z" });
    await a.online();
    await settled(shop, [invoice]);

    const p1 = a.write({ kind: "payment", invoice, amount: 3000, at: "2026-11-22T12:00:00.000Z" });
    const p2 = b.write({ kind: "payment", invoice, amount: 3000, at: "2026-11-22T12:00:01.000Z" });
    await b.online();
    await settled(shop, [p1, p2]);
    const [r1, r2] = await Promise.all([c.journal.findOne({ team, entryId: p1 }), c.journal.findOne({ team, entryId: p2 })]);
    expect(r1?.status).toBe("accepted");
    expect(r2).toMatchObject({ status: "rejected", reason: "Payment exceeds outstanding balance" });
    const inv = await c.invoices.findOne({ team, id: invoice });
    expect(inv).toMatchObject({ total: 4000, paid: 3000, outstanding: 1000, status: "open" });
    expect(await c.balances.findOne({ team, customer: "cust-1" })).toMatchObject({ outstanding: 1000, openInvoices: 1 });
  });

  it("a payment that reaches the server before its invoice is deferred, then accepted", async () => {
    const c = shop.materializer.c;
    const team = shop.team.team;
    await addItem(shop, "mug", "Mug", 800);
    const seller = device("seller");
    const collector = device("collector");
    seller.write({ kind: "stock", item: "mug", delta: 10, reason: "delivery", at: "2026-11-22T08:00:00.000Z" });
    const invoice = seller.write({ ...sale("mug", 2, 800), at: "2026-11-22T13:00:00.000Z" });
    // The collector learned the invoice id out of band (a printed receipt) and is online first.
    const payment = collector.write({ kind: "payment", invoice, amount: 1600, at: "2026-11-22T13:05:00.000Z" });
    await collector.online();
    await eventually(async () => (await collector.verdict(payment))?.status === "deferred", "payment deferred", 20_000);
    expect(await c.journal.countDocuments({ team, entryId: payment })).toBe(0);
    expect(await c.deferred.countDocuments({ team, entryId: payment })).toBe(1);

    await seller.online();
    await eventually(async () => (await collector.verdict(payment))?.status === "accepted", "payment accepted after its invoice", 20_000);
    await settled(shop, [invoice, payment]);
    expect(await c.deferred.countDocuments({ team, entryId: payment })).toBe(0);
    expect(await c.invoices.findOne({ team, id: invoice })).toMatchObject({ paid: 1600, outstanding: 0, status: "finalized" });
    const summary = await c.summaries.findOne({ team, day: "2026-11-22" });
    expect(summary?.paymentsReceived).toBeGreaterThanOrEqual(1600);
  });
});
