/**
 * The reference document's sync workflow end to end: readytosync, then one sync that creates an
 * item, an invoice whose product has no productId (auto-creating an item) and a payment that
 * finalizes it; the documented response shape, and the records in MongoDB.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startApiShop, type ApiShop, type SyncBody } from "./harness.js";

let shop: ApiShop;
beforeAll(async () => {
  shop = await startApiShop();
});
afterAll(async () => {
  await shop?.close();
});

describe("classic sync workflow", () => {
  it("readytosync answers OK with the client id", async () => {
    const r = await shop.call("POST", "/readytosync", { token: shop.member });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ success: true, message: "OK", clientId: shop.team.team });
  });

  it("creates an item, an invoice that auto-creates an item, and a payment finalizing it", async () => {
    const r = await shop.call<SyncBody>("POST", "/sync", {
      token: shop.member,
      body: {
        item: { create: [{ name: "Item A", price: 100, stock: 50, unit: "nos", description: "first" }] },
        invoice: {
          create: [{
            products: [{ itemName: "Product", costPerUnit: 100, quantity: 2, itemGroup: "Group" }],
            clientCustomerId: "cust-1", clientCustomerName: "Asha", clientCustomerPhone: "555-0100",
            invoiceNumber: "INV-001", invoiceDate: "2025-01-12", dueDate: "2025-02-12", paidAmount: 100, notes: "first sale",
          }],
        },
        payment: { create: [{ invoiceId: "INV-001", amount: 100, method: "cash", note: "rest" }] },
      },
    });
    expect(r.status, r.raw).toBe(200);
    const b = r.body;
    expect(b.success).toBe(true);
    expect(b.message).toBe("Sync completed successfully");
    expect(b.summary).toEqual({ itemsCreated: 2, itemsUpdated: 0, itemsDeleted: 0, invoicesCreated: 1, paymentsCreated: 1 });
    expect(b.synced.itemsCreated).toHaveLength(2);
    expect(b.synced.invoicesCreated).toHaveLength(1);
    expect(b.synced.paymentsCreated).toHaveLength(1);
    expect(Object.keys(b.data).sort()).toEqual(["clientCustomers", "invoices", "itemGroups", "items", "payments", "purchaseHistory"]);

    const [itemA, auto] = b.synced.itemsCreated as [string, string];
    const items = b.data.items!;
    const a = items.find((i) => i._id === itemA)!;
    expect(a).toMatchObject({ _id: itemA, productId: itemA, name: "Item A", price: 100, stock: 50, unit: "nos", groupId: null, dealerIds: [], isActive: true });
    const p = items.find((i) => i._id === auto)!;
    expect(p).toMatchObject({ productId: auto, name: "Product", price: 100, stock: 0 });
    expect(typeof p.groupId).toBe("string");
    expect(b.data.itemGroups!.find((g) => g._id === p.groupId)).toMatchObject({ name: "Group" });

    const invoiceId = b.synced.invoicesCreated![0]!;
    const inv = b.data.invoices!.find((i) => i._id === invoiceId)!;
    expect(inv).toMatchObject({
      invoiceNumber: "INV-001", clientCustomerId: "cust-1", subtotal: 200, totalAmount: 200, paidAmount: 200, balance: 0,
      isFinalized: true, status: "finalized", invoiceDate: "2025-01-12", dueDate: "2025-02-12", notes: "first sale",
    });
    expect(inv.products).toEqual([{ productId: auto, itemName: "Product", costPerUnit: 100, quantity: 2 }]);
    expect(b.data.payments!.find((x) => x._id === b.synced.paymentsCreated![0])).toMatchObject({ invoiceId, amount: 100, method: "cash", note: "rest" });
    expect(b.data.purchaseHistory).toEqual([expect.objectContaining({ clientCustomerId: "cust-1", invoiceId, totalAmount: 200 })]);
    expect(b.data.clientCustomers).toEqual([expect.objectContaining({ _id: "cust-1", name: "Asha", phone: "555-0100" })]);

    // The authoritative records, in MongoDB.
    const db = shop.relay.db.db;
    const team = shop.team.team;
    const journal = await db.collection<{ _id: string; [k: string]: unknown }>("journal").find({ team }).sort({ seq: 1 }).toArray();
    expect(journal.map((j) => [j.kind, j.status])).toEqual([["stock", "accepted"], ["sale", "accepted"], ["payment", "accepted"]]);
    expect(await db.collection<{ _id: string; [k: string]: unknown }>("invoices").findOne({ _id: `${team}:${invoiceId}` })).toMatchObject({ status: "finalized", paid: 200, total: 200 });
    expect(await db.collection<{ _id: string; [k: string]: unknown }>("stock_levels").findOne({ _id: `${team}:${itemA}` })).toMatchObject({ level: 50 });
    expect(await db.collection<{ _id: string; [k: string]: unknown }>("purchase_history").countDocuments({ team })).toBe(1);
    expect(await db.collection<{ _id: string; [k: string]: unknown }>("items").findOne({ _id: `${team}:${auto}` })).toMatchObject({ name: "Product", price: 100 });
    expect(await db.collection<{ _id: string; [k: string]: unknown }>("payments").countDocuments({ team })).toBe(1);
    // The gateway's segment is registered to the team like a device's.
    const seg = await db.collection<{ _id: string; [k: string]: unknown }>("documents").findOne({ team, kind: "ledger-segment" });
    expect(seg?.owner).toBe("~gateway/gw-till-1");
  });
});
