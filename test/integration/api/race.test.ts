/**
 * The gateway and a CRDT device sell the same last unit: the materializer decides both, and
 * exactly one sale is accepted whichever arrives first. A gateway batch that loses answers 409
 * and leaves nothing of its own: no payment, no catalog change, no stock movement.
 */
import { pino } from "pino";
import type { CatalogDoc } from "../../../shared/docs.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Materializer } from "../../../server/materializer/materializer.js";
import { databaseInfo } from "../../helpers/db.js";
import { Device, eventually, sale, settled } from "../materializer/harness.js";
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

  it("a device sale the materializer has not decided yet wins over a later gateway batch: 409 after the write, and nothing of the batch counts", async () => {
    const created = await shop.call<SyncBody>("POST", "/sync", {
      token: shop.member,
      body: { item: { create: [{ name: "Contested", price: 500, stock: 1 }, { name: "Spare", price: 100, stock: 5 }, { name: "Bulk", price: 100, stock: 50 }] } },
    });
    const [item, spare, bulk] = created.body.synced.itemsCreated as [string, string, string];
    const older = await shop.call<SyncBody>("POST", "/sync", { token: shop.member, body: { invoice: { create: [{ products: [{ productId: bulk, quantity: 2 }], invoiceNumber: "OLD-1" }] } } });
    expect(older.status, older.raw).toBe(200);
    const olderId = older.body.synced.invoicesCreated![0]!;
    const team = shop.team.team;
    const before = await snapshot(shop, [spare]);
    // The materializer is down while both reach the server; the device's sale is older.
    await shop.materializer.stop();
    const device = new Device(shop, "tab-late");
    try {
      const deviceSale = device.write({ ...sale(item, 1, 500), at: "2020-01-01T00:00:00.000Z" });
      await device.online();
      const pending = shop.call<SyncBody>("POST", "/sync", {
        token: shop.member,
        body: {
          item: { update: [{ _id: spare, name: "Spare renamed", stock: 9 }] },
          invoice: { create: [{ products: [{ productId: spare, quantity: 2 }] }, { products: [{ productId: item, quantity: 1 }] }] },
          payment: { create: [{ invoiceId: "OLD-1", amount: 10 }] },
        },
      });
      await new Promise((r) => setTimeout(r, 500));
      shop.materializer = new Materializer({
        db: shop.relay.db.db, client: shop.relay.db.client, features: databaseInfo().features, repo: shop.service.repo,
        logger: pino({ level: "warn" }), teamPollMs: 200,
      });
      await shop.materializer.start();
      const gw = await pending;
      expect(gw.status, gw.raw).toBe(409);
      expect(gw.body.success).toBe(false);
      expect(gw.body.message).toBe(`insufficient stock for item ${item}: requested 1, available 0`);
      const body = gw.body as unknown as { verdicts: { kind: string; status: string }[] };
      expect(body.verdicts.map((v) => `${v.kind}:${v.status}`)).toEqual(["stock:rejected", "sale:rejected", "sale:rejected", "payment:rejected"]);
      const db = shop.relay.db.db;
      expect((await db.collection<{ _id: string; [k: string]: unknown }>("journal").findOne({ _id: `${team}:${deviceSale}` }))?.status).toBe("accepted");
      const after = await snapshot(shop, [spare]);
      expect(after.invoices[olderId]).toEqual(before.invoices[olderId]);
      expect(after.payments).toEqual(before.payments);
      expect(after.paymentsReceived).toEqual(before.paymentsReceived);
      expect(after.stock).toEqual(before.stock);
      expect(after.catalog).toEqual(before.catalog);
      expect(after.meta).toEqual(before.meta);
      expect(after.accepted).toBe(before.accepted + 1);
      expect((await db.collection<{ _id: string; [k: string]: unknown }>("stock_levels").findOne({ _id: `${team}:${item}` }))?.level).toBe(0);
    } finally {
      await device.close();
    }
  });

  it("the race run many times: a refused batch (a sale of the last unit, a payment on an older invoice, a rename) leaves MongoDB and the catalog as before", async () => {
    const team = shop.team.team;
    const setup = await shop.call<SyncBody>("POST", "/sync", { token: shop.member, body: { item: { create: [{ name: "Stockpile", price: 100, stock: 1000 }, { name: "Renamable", price: 100 }] } } });
    const [bulk, renamable] = setup.body.synced.itemsCreated as [string, string];
    const older = await shop.call<SyncBody>("POST", "/sync", { token: shop.member, body: { invoice: { create: [{ products: [{ productId: bulk, quantity: 100 }], invoiceNumber: "OLD-RACE" }] } } });
    expect(older.status, older.raw).toBe(200);
    const olderId = older.body.synced.invoicesCreated![0]!;
    const outcomes: number[] = [];
    let afterWrite = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const made = await shop.call<SyncBody>("POST", "/sync", { token: shop.member, body: { item: { create: [{ name: `Last unit ${round}`, price: 700, stock: 1 }] } } });
      expect(made.status, made.raw).toBe(200);
      const last = made.body.synced.itemsCreated![0]!;
      const before = await snapshot(shop, [renamable, last]);
      const device = new Device(shop, `racer-${round}`);
      try {
        const deviceSale = device.write(sale(last, 1, 700));
        // The device's upload is under way when the gateway's batch arrives.
        await device.online();
        const gw = await shop.call<SyncBody>("POST", "/sync", {
          token: shop.member,
          body: {
            item: { update: [{ _id: renamable, name: `Renamed ${round}` }] },
            invoice: { create: [{ products: [{ productId: last, quantity: 1 }] }] },
            payment: { create: [{ invoiceId: "OLD-RACE", amount: 10 }] },
          },
        });
        outcomes.push(gw.status);
        // Refused after its write (the materializer's verdict) rather than by the gateway's precheck.
        if (gw.status === 409 && "verdicts" in gw.body) afterWrite++;
        expect([200, 409], gw.raw).toContain(gw.status);
        await settled(shop, [deviceSale], 60_000);
        const after = await snapshot(shop, [renamable, last]);
        const deviceVerdict = (await shop.relay.db.db.collection<{ _id: string; status?: string }>("journal").findOne({ _id: `${team}:${deviceSale}` }))?.status;
        if (gw.status === 409) {
          expect(gw.body.success).toBe(false);
          expect(gw.body.message).toBe(`insufficient stock for item ${last}: requested 1, available 0`);
          expect(deviceVerdict).toBe("accepted");
          expect(after.invoices[olderId]).toEqual(before.invoices[olderId]);
          expect(after.payments).toEqual(before.payments);
          expect(after.paymentsReceived).toEqual(before.paymentsReceived);
          // Every invoice and every day's summary as before, but for the device's own sale.
          expect(Object.keys(after.invoices).sort()).toEqual([...Object.keys(before.invoices), deviceSale].sort());
          const deviceDay = String((await shop.relay.db.db.collection<{ _id: string; entry?: { at: string } }>("journal").findOne({ _id: `${team}:${deviceSale}` }))?.entry?.at).slice(0, 10);
          const otherDays = (x: Record<string, unknown>): Record<string, unknown> => Object.fromEntries(Object.entries(x).filter(([day]) => day !== deviceDay));
          expect(otherDays(after.summaries)).toEqual(otherDays(before.summaries));
          // The batch's entries are journaled, each rejected.
          const refused = (gw.body as unknown as { verdicts?: { id: string }[] }).verdicts ?? [];
          for (const r of refused) {
            expect((await shop.relay.db.db.collection<{ _id: string; status?: string }>("journal").findOne({ _id: `${team}:${r.id}` }))?.status).toBe("rejected");
          }
          expect(after.catalog).toEqual(before.catalog);
          expect(after.meta).toEqual(before.meta);
          expect(after.accepted).toBe(before.accepted + 1);
          expect(after.stock[last]).toBe(0);
        } else {
          expect(deviceVerdict).toBe("rejected");
          expect(after.invoices[olderId]?.paid).toBe((before.invoices[olderId]?.paid ?? 0) + 10);
          expect(after.payments.length).toBe(before.payments.length + 1);
          expect(after.catalog[renamable]).toMatchObject({ name: `Renamed ${round}` });
          // The sale and the payment; the rename is no ledger entry.
          expect(after.accepted).toBe(before.accepted + 2);
        }
        // Whoever won, the invoice was paid once per accepted batch and never more.
        const received = after.payments.filter((p) => p.invoice === olderId).reduce((sum, p) => sum + p.amount, 0);
        expect(received).toBe(outcomes.filter((s) => s === 200).length * 10);
      } finally {
        await device.close();
      }
    }
    console.log(`gateway vs device race: ${outcomes.filter((s) => s === 409).length} of ${ROUNDS} batches refused (${afterWrite} after their write), ${outcomes.filter((s) => s === 200).length} accepted`);
  }, 240_000);
});

const ROUNDS = 12;

interface Snapshot {
  invoices: Record<string, { paid: number; status: string; outstanding: number }>;
  payments: { id: string; invoice: string; amount: number }[];
  paymentsReceived: Record<string, number>;
  /** Daily summaries by day, whole. */
  summaries: Record<string, unknown>;
  stock: Record<string, number>;
  catalog: Record<string, unknown>;
  meta: { invoices: number; payments: number };
  accepted: number;
}

/** What an auditor or a classic client would read back: projections, the journal, the catalog document. */
async function snapshot(s: ApiShop, items: readonly string[]): Promise<Snapshot> {
  const team = s.team.team;
  const db = s.relay.db.db;
  type Row = { _id: string; [k: string]: unknown };
  const invoices: Snapshot["invoices"] = {};
  for (const d of await db.collection<Row>("invoices").find({ team }).toArray()) {
    invoices[String(d.id)] = { paid: Number(d.paid), status: String(d.status), outstanding: Number(d.outstanding) };
  }
  const payments = (await db.collection<Row>("payments").find({ team }).toArray())
    .map((d) => ({ id: String(d.id), invoice: String(d.invoice), amount: Number(d.amount) }))
    .sort((a, b) => (a.id < b.id ? -1 : 1));
  const paymentsReceived: Record<string, number> = {};
  // Days with money received (a device sale on a new day adds a summary with none).
  const summaries: Record<string, unknown> = {};
  for (const d of await db.collection<Row>("daily_summaries").find({ team }).toArray()) {
    if (Number(d.paymentsReceived) !== 0) paymentsReceived[String(d.day)] = Number(d.paymentsReceived);
    summaries[String(d.day)] = { salesCount: d.salesCount, voidCount: d.voidCount, revenue: d.revenue, paymentsReceived: d.paymentsReceived, outstanding: d.outstanding };
  }
  const stock: Record<string, number> = {};
  for (const id of items) stock[id] = Number((await db.collection<Row>("stock_levels").findOne({ _id: `${team}:${id}` }))?.level ?? 0);
  const catalogDoc = (await s.relay.service.repo.find<CatalogDoc>(s.team.catalogUrl)).doc();
  const catalog = JSON.parse(JSON.stringify(catalogDoc.items)) as Record<string, unknown>;
  const meta = {
    invoices: await db.collection<Row>("gateway_invoices").countDocuments({ team }),
    payments: await db.collection<Row>("gateway_payments").countDocuments({ team }),
  };
  const accepted = await db.collection<Row>("journal").countDocuments({ team, status: "accepted" });
  return { invoices, payments, paymentsReceived, summaries, stock, catalog, meta, accepted };
}
