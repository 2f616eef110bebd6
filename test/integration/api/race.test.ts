/**
 * The gateway and a CRDT device sell the same last unit: the materializer decides both, and
 * exactly one sale is accepted whichever arrives first. A gateway sale that loses answers 409.
 */
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Materializer } from "../../../server/materializer/materializer.js";
import { databaseInfo } from "../../helpers/db.js";
import { Device, eventually, sale } from "../materializer/harness.js";
import { startApiShop, type ApiShop, type SyncBody } from "./harness.js";

let shop: ApiShop;
beforeAll(async () => {
  shop = await startApiShop();
});
afterAll(async () => {
  await shop?.close();
});

describe("gateway against a CRDT device", () => {
  for (const round of [1, 2, 3]) {
    it(`round ${round}: one of the two sales of the last unit is accepted`, async () => {
      const created = await shop.call<SyncBody>("POST", "/sync", { token: shop.member, body: { item: { create: [{ name: `Last ${round}`, price: 700, stock: 1 }] } } });
      expect(created.status, created.raw).toBe(200);
      const item = created.body.synced.itemsCreated![0]!;
      const device = new Device(shop, `tab-${round}`);
      try {
        // The device sold it offline; it comes online while the gateway sells it too.
        const deviceSale = device.write(sale(item, 1, 700));
        const [gw] = await Promise.all([
          shop.call<SyncBody>("POST", "/sync", { token: shop.member, body: { invoice: { create: [{ products: [{ productId: item, quantity: 1 }] }] } } }),
          device.online(),
        ]);
        expect([200, 409]).toContain(gw.status);
        const team = shop.team.team;
        const journal = shop.relay.db.db.collection<{ _id: string; [k: string]: unknown }>("journal");
        await eventually(async () => (await journal.countDocuments({ team, entryId: deviceSale })) === 1, "device sale decided", 20_000);
        const sales = await journal.find({ team, kind: "sale", "entry.lines.item": item }).toArray();
        const accepted = sales.filter((s) => s.status === "accepted");
        expect(accepted).toHaveLength(1);
        const level = await shop.relay.db.db.collection<{ _id: string; [k: string]: unknown }>("stock_levels").findOne({ _id: `${team}:${item}` });
        expect(level?.level).toBe(0);
        if (gw.status === 200) {
          expect(accepted[0]!.entryId).toBe(gw.body.synced.invoicesCreated![0]);
          expect((await device.verdict(deviceSale).catch(() => undefined))?.status ?? "rejected").toBe("rejected");
        } else {
          expect(accepted[0]!.entryId).toBe(deviceSale);
          expect(gw.body.message).toBe(`insufficient stock for item ${item}: requested 1, available 0`);
        }
      } finally {
        await device.close();
      }
    });
  }

  it("a device sale the materializer has not decided yet wins over a later gateway sale: 409 after the write, batch voided", async () => {
    const created = await shop.call<SyncBody>("POST", "/sync", { token: shop.member, body: { item: { create: [{ name: "Contested", price: 500, stock: 1 }, { name: "Spare", price: 100, stock: 5 }] } } });
    const [item, spare] = created.body.synced.itemsCreated as [string, string];
    // The materializer is down while both sales reach the server; the device's is older.
    await shop.materializer.stop();
    const device = new Device(shop, "tab-late");
    try {
      const deviceSale = device.write({ ...sale(item, 1, 500), at: "2020-01-01T00:00:00.000Z" });
      await device.online();
      const pending = shop.call<SyncBody>("POST", "/sync", {
        token: shop.member,
        body: { invoice: { create: [{ products: [{ productId: spare, quantity: 2 }] }, { products: [{ productId: item, quantity: 1 }] }] } },
      });
      await new Promise((r) => setTimeout(r, 500));
      shop.materializer = new Materializer({
        db: shop.relay.db.db, client: shop.relay.db.client, features: databaseInfo().features, repo: shop.service.repo,
        logger: pino({ level: "warn" }), teamPollMs: 200,
      });
      await shop.materializer.start();
      const gw = await pending;
      expect(gw.status, gw.raw).toBe(409);
      expect(gw.body.message).toBe(`insufficient stock for item ${item}: requested 1, available 0`);
      const body = gw.body as unknown as { verdicts: { status: string }[]; compensated: string[] };
      expect(body.verdicts.map((v) => v.status)).toEqual(["accepted", "rejected"]);
      expect(body.compensated).toHaveLength(1);
      const team = shop.team.team;
      const db = shop.relay.db.db;
      expect((await db.collection<{ _id: string; [k: string]: unknown }>("journal").findOne({ _id: `${team}:${deviceSale}` }))?.status).toBe("accepted");
      // The accepted half of the batch was voided: its stock is back.
      await eventually(async () => (await db.collection<{ _id: string; [k: string]: unknown }>("stock_levels").findOne({ _id: `${team}:${spare}` }))?.level === 5, "spare stock restored");
      expect((await db.collection<{ _id: string; [k: string]: unknown }>("stock_levels").findOne({ _id: `${team}:${item}` }))?.level).toBe(0);
    } finally {
      await device.close();
    }
  });
});
