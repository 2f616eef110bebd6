/**
 * Every error message of the reference document, produced over HTTP, and the all-or-nothing
 * rule: a refused batch leaves the catalog, the ledger and MongoDB as they were.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CatalogDoc } from "../../../shared/docs.js";
import { eventually } from "../materializer/harness.js";
import { startApiShop, type ApiShop, type SyncBody } from "./harness.js";

let shop: ApiShop;
let itemId: string;
let invoiceId: string;

beforeAll(async () => {
  shop = await startApiShop();
  const r = await shop.call<SyncBody>("POST", "/sync", {
    token: shop.member,
    body: {
      item: { create: [{ name: "Pen", price: 50, stock: 10 }] },
    },
  });
  expect(r.status, r.raw).toBe(200);
  itemId = r.body.synced.itemsCreated![0]!;
  const s = await shop.call<SyncBody>("POST", "/sync", {
    token: shop.member,
    body: { invoice: { create: [{ products: [{ productId: itemId, quantity: 2 }], invoiceNumber: "E-1" }] } },
  });
  expect(s.status, s.raw).toBe(200);
  invoiceId = s.body.synced.invoicesCreated![0]!;
});
afterAll(async () => {
  await shop?.close();
});

const cases: [string, Record<string, unknown>, number, string | (() => string)][] = [
  ["item create without price", { item: { create: [{ name: "x" }] } }, 400, "Item create at index 0 is missing name/price"],
  ["invoice without products", { invoice: { create: [{ paidAmount: 0 }] } }, 400, "Invoice create at index 0 missing products"],
  ["payment without data", { payment: { create: [{ amount: 5 }] } }, 400, "Payment create at index 0 missing data"],
  ["product with quantity 0", { invoice: { create: [{ products: [{ itemName: "a", costPerUnit: 1, quantity: 0 }] }] } }, 400, "Invoice product at index 0 must have quantity > 0"],
  ["payment of 0", { payment: { create: [{ invoiceId: "E-1", amount: 0 }] } }, 400, "Payment create at index 0 must have amount > 0"],
  ["negative paid amount", { invoice: { create: [{ products: [{ itemName: "a", costPerUnit: 10, quantity: 1 }], paidAmount: -1 }] } }, 400, "Paid amount cannot be negative"],
  ["paid amount over total", { invoice: { create: [{ products: [{ itemName: "a", costPerUnit: 10, quantity: 1 }], paidAmount: 11 }] } }, 400, "Paid amount cannot exceed total amount"],
  ["payment over outstanding", { payment: { create: [{ invoiceId: "E-1", amount: 101 }] } }, 400, "Payment exceeds outstanding balance"],
  ["update of an unknown item", { item: { update: [{ _id: "nope-1", price: 5 }] } }, 404, "Item not found for update: nope-1"],
  ["delete of an unknown item", { item: { delete: ["nope-2"] } }, 404, "Item not found for delete: nope-2"],
  ["payment of an unknown invoice", { payment: { create: [{ invoiceId: "INV-NOPE", amount: 5 }] } }, 404, "Invoice not found for payment: INV-NOPE"],
];

describe("documented validation errors", () => {
  for (const [name, body, status, message] of cases) {
    it(`${name}: ${status} ${String(message)}`, async () => {
      const r = await shop.call<SyncBody>("POST", "/sync", { token: shop.member, body });
      expect(r.status, r.raw).toBe(status);
      expect(r.body.success).toBe(false);
      expect(r.body.message).toBe(message);
      expect(r.body.error?.message).toBe(message);
    });
  }

  it("insufficient stock answers 409 with the rule's reason", async () => {
    const r = await shop.call<SyncBody>("POST", "/sync", {
      token: shop.member,
      body: { invoice: { create: [{ products: [{ productId: itemId, quantity: 9 }] }] } },
    });
    expect(r.status).toBe(409);
    expect(r.body.message).toBe(`insufficient stock for item ${itemId}: requested 9, available 8`);
  });

  it("a payment by invoice id works, and a wrong type answers 400 with the field", async () => {
    const ok = await shop.call<SyncBody>("POST", "/sync", { token: shop.member, body: { payment: { create: [{ invoiceId, amount: 40 }] } } });
    expect(ok.status, ok.raw).toBe(200);
    expect(ok.body.data.invoices!.find((i) => i._id === invoiceId)).toMatchObject({ paidAmount: 40, balance: 60, isFinalized: false });
    const bad = await shop.call<SyncBody>("POST", "/sync", { token: shop.member, body: { item: { create: [{ name: "x", price: "12" }] } } });
    expect(bad.status).toBe(400);
    expect(bad.body.message).toBe("Item create at index 0: price must be an integer of minor units (at most 1000000000000)");
    const notObject = await shop.call<SyncBody>("POST", "/sync", { token: shop.member, body: { item: "everything" } });
    expect(notObject.status).toBe(400);
    expect(notObject.body.message).toBe("item must be an object");
  });

  it("all or nothing: a batch with one bad operation writes nothing", async () => {
    const db = shop.relay.db.db;
    const team = shop.team.team;
    const before = {
      journal: await db.collection<{ _id: string; [k: string]: unknown }>("journal").countDocuments({ team }),
      meta: await db.collection<{ _id: string; [k: string]: unknown }>("gateway_invoices").countDocuments({ team }),
      catalog: Object.keys((await shop.relay.service.repo.find<CatalogDoc>(shop.team.catalogUrl)).doc().items).length,
    };
    const r = await shop.call<SyncBody>("POST", "/sync", {
      token: shop.member,
      body: {
        item: { create: [{ name: "Lamp", price: 900, stock: 3 }], update: [{ _id: itemId, name: "Blue pen" }] },
        invoice: { create: [{ products: [{ itemName: "Cup", costPerUnit: 300, quantity: 1 }], invoiceNumber: "E-2" }] },
        payment: { create: [{ invoiceId: "E-2", amount: 500 }] },
      },
    });
    expect(r.status).toBe(400);
    expect(r.body.message).toBe("Payment exceeds outstanding balance");
    await new Promise((res) => setTimeout(res, 300));
    const catalog = (await shop.relay.service.repo.find<CatalogDoc>(shop.team.catalogUrl)).doc();
    expect(Object.keys(catalog.items).length).toBe(before.catalog);
    expect((catalog.items[itemId] as { name: string }).name).toBe("Pen");
    expect(await db.collection<{ _id: string; [k: string]: unknown }>("journal").countDocuments({ team })).toBe(before.journal);
    expect(await db.collection<{ _id: string; [k: string]: unknown }>("gateway_invoices").countDocuments({ team })).toBe(before.meta);
  });

  it("after an item.update, the answer carries the item's new updatedAt", async () => {
    const made = await shop.call<SyncBody>("POST", "/sync", { token: shop.member, body: { item: { create: [{ name: "Mug", price: 300 }] } } });
    const mug = made.body.synced.itemsCreated![0]!;
    const items = shop.relay.db.db.collection<{ _id: string; updatedAt?: string }>("items");
    await eventually(async () => (await items.findOne({ _id: `${shop.team.team}:${mug}` })) !== null, "item projected");
    const asked = new Date().toISOString();
    const r = await shop.call<SyncBody>("POST", "/sync", { token: shop.member, body: { item: { update: [{ _id: mug, price: 350 }] } } });
    expect(r.status, r.raw).toBe(200);
    const row = r.body.data.items!.find((i) => i._id === mug) as { price: number; updatedAt: string | null };
    expect(row.price).toBe(350);
    expect(row.updatedAt! >= asked, `updatedAt ${row.updatedAt} is before the request (${asked})`).toBe(true);
  });

  it("updates and deletes change the catalog field by field", async () => {
    const r = await shop.call<SyncBody>("POST", "/sync", {
      token: shop.member,
      body: { item: { update: [{ _id: itemId, name: "Blue pen", stock: 20 }], delete: [] } },
    });
    expect(r.status, r.raw).toBe(200);
    expect(r.body.summary.itemsUpdated).toBe(1);
    expect(r.body.data.items!.find((i) => i._id === itemId)).toMatchObject({ name: "Blue pen", price: 50, stock: 20 });
    const d = await shop.call<SyncBody>("POST", "/sync", { token: shop.member, body: { item: { delete: [itemId] } } });
    expect(d.status, d.raw).toBe(200);
    expect(d.body.synced.itemsDeleted).toEqual([itemId]);
    expect(d.body.data.items!.find((i) => i._id === itemId)).toMatchObject({ isActive: false });
    const sale = await shop.call<SyncBody>("POST", "/sync", { token: shop.member, body: { invoice: { create: [{ products: [{ productId: itemId, quantity: 1 }] }] } } });
    expect(sale.status).toBe(400);
    expect(sale.body.message).toBe(`item ${itemId} is not active`);
  });
});
