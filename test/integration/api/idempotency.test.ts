/**
 * `X-Idempotency-Key`: a retry returns the first response byte for byte and creates nothing
 * twice, also when the two requests race; a key reused for another request is refused.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CatalogDoc } from "../../../shared/docs.js";
import { startApiShop, type ApiShop, type SyncBody } from "./harness.js";

let shop: ApiShop;
beforeAll(async () => {
  shop = await startApiShop();
});
afterAll(async () => {
  await shop?.close();
});

async function counts(): Promise<{ journal: number; invoices: number; payments: number; catalogItems: number }> {
  const db = shop.relay.db.db;
  const team = shop.team.team;
  const catalog = (await shop.relay.service.repo.find<CatalogDoc>(shop.team.catalogUrl)).doc();
  return {
    journal: await db.collection<{ _id: string; [k: string]: unknown }>("journal").countDocuments({ team }),
    invoices: await db.collection<{ _id: string; [k: string]: unknown }>("invoices").countDocuments({ team }),
    payments: await db.collection<{ _id: string; [k: string]: unknown }>("payments").countDocuments({ team }),
    catalogItems: Object.keys(catalog.items).length,
  };
}

const batch = (n: string) => ({
  item: { create: [{ name: `Widget ${n}`, price: 300, stock: 5 }] },
  invoice: { create: [{ products: [{ itemName: `Gadget ${n}`, costPerUnit: 250, quantity: 1 }], invoiceNumber: `IDEM-${n}`, paidAmount: 50 }] },
  payment: { create: [{ invoiceId: `IDEM-${n}`, amount: 100 }] },
});

describe("idempotent sync", () => {
  it("a sequential retry replays the first response byte for byte and writes nothing", async () => {
    const headers = { "X-Idempotency-Key": "seq-1" };
    const first = await shop.call<SyncBody>("POST", "/sync", { token: shop.member, body: batch("a"), headers });
    expect(first.status, first.raw).toBe(200);
    const after = await counts();
    expect(after.journal).toBe(3);
    const again = await shop.call<SyncBody>("POST", "/sync", { token: shop.member, body: batch("a"), headers });
    expect(again.status).toBe(200);
    expect(again.raw).toBe(first.raw);
    await new Promise((r) => setTimeout(r, 300));
    expect(await counts()).toEqual(after);
  });

  it("two racing requests with one key execute once and both get the same bytes", async () => {
    const before = await counts();
    const headers = { "X-Idempotency-Key": "race-1" };
    const [a, b] = await Promise.all([
      shop.call<SyncBody>("POST", "/sync", { token: shop.member, body: batch("b"), headers }),
      shop.call<SyncBody>("POST", "/sync", { token: shop.member, body: batch("b"), headers }),
    ]);
    expect(a.status, a.raw).toBe(200);
    expect(b.raw).toBe(a.raw);
    await new Promise((r) => setTimeout(r, 300));
    const after = await counts();
    expect(after.journal - before.journal).toBe(3);
    expect(after.invoices - before.invoices).toBe(1);
    expect(after.payments - before.payments).toBe(1);
    expect(after.catalogItems - before.catalogItems).toBe(2);
    expect(await shop.relay.db.db.collection<{ _id: string; [k: string]: unknown }>("idempotency_keys").countDocuments({ team: shop.team.team, key: "race-1" })).toBe(1);
  });

  it("a refusal is replayed too, and a key reused for another body answers 422", async () => {
    const headers = { "X-Idempotency-Key": "bad-1" };
    const bad = { payment: { create: [{ invoiceId: "NOPE", amount: 1 }] } };
    const first = await shop.call("POST", "/sync", { token: shop.member, body: bad, headers });
    expect(first.status).toBe(404);
    const again = await shop.call("POST", "/sync", { token: shop.member, body: bad, headers });
    expect(again.raw).toBe(first.raw);
    const other = await shop.call("POST", "/sync", { token: shop.member, body: batch("c"), headers });
    expect(other.status).toBe(422);
    expect((other.body as { error: { message: string } }).error.message).toBe("X-Idempotency-Key was already used for a different request");
  });
});
