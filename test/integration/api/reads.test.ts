/**
 * Auditor reads and the journal change feed over HTTP, sync status, and /api/openapi.json:
 * every route registered in express is in the document and every answer seen here validates
 * against the schema it declares.
 */
import { Ajv2020 } from "ajv/dist/2020.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Device, sale } from "../materializer/harness.js";
import { startApiShop, type Answer, type ApiShop, type SyncBody } from "./harness.js";

let shop: ApiShop;
let openapi: { paths: Record<string, Record<string, { responses: Record<string, { content: { "application/json": { schema: object } } }> }>> };
const seen: { method: string; path: string; answer: Answer }[] = [];
let verdicts = 0;

/** Calls and remembers the answer for validation against the OpenAPI document. */
async function call<T = Record<string, unknown>>(method: string, path: string, opts: Parameters<ApiShop["call"]>[2] = {}): Promise<Answer<T>> {
  const answer = await shop.call<T>(method, path, opts);
  seen.push({ method, path, answer: answer as Answer });
  return answer;
}

beforeAll(async () => {
  shop = await startApiShop();
  // Verdicts of every kind: gateway sales and payments, a device's accepted, rejected and invalid entries.
  const r = await call<SyncBody>("POST", "/sync", {
    token: shop.member,
    body: {
      item: { create: [{ name: "Tea", price: 120, stock: 30 }, { name: "Mug", price: 800, stock: 2 }] },
      invoice: { create: [{ products: [{ itemName: "Cake", costPerUnit: 300, quantity: 2 }], clientCustomerId: "c-1", clientCustomerName: "Ravi", invoiceNumber: "R-1" }] },
      payment: { create: [{ invoiceId: "R-1", amount: 600 }] },
    },
  });
  expect(r.status, r.raw).toBe(200);
  const [tea, mug] = r.body.synced.itemsCreated as [string, string];
  for (let i = 0; i < 5; i++) {
    const s = await call<SyncBody>("POST", "/sync", { token: shop.member, body: { invoice: { create: [{ products: [{ productId: tea, quantity: 1 }], paidAmount: i * 10 }] } } });
    expect(s.status, s.raw).toBe(200);
  }
  const device = new Device(shop, "tab-a");
  const ids = [device.write(sale(mug, 1, 800)), device.write(sale(mug, 5, 800)), device.write({ kind: "sale", lines: "bogus" })];
  for (let i = 0; i < 12; i++) ids.push(device.write(sale(tea, 1, 120, { paid: 120 })));
  await device.online();
  const journal = shop.relay.db.db.collection<{ _id: string; [k: string]: unknown }>("journal");
  const deadline = Date.now() + 20_000;
  while ((await journal.countDocuments({ team: shop.team.team, entryId: { $in: ids } })) < ids.length && Date.now() < deadline) await new Promise((res) => setTimeout(res, 50));
  await device.close();
  verdicts = await journal.countDocuments({ team: shop.team.team });
  const doc = await call("GET", "/openapi.json");
  openapi = doc.body as never;
});
afterAll(async () => {
  await shop?.close();
});

describe("journal change feed", () => {
  it("returns every verdict exactly once, in seq order, with any page size", async () => {
    expect(verdicts).toBe(4 + 5 + 15);
    for (const limit of [1, 2, 7, 23, 500]) {
      const got: number[] = [];
      let after = 0;
      for (let guard = 0; guard < 100; guard++) {
        const r = await call<{ rows: { seq: number }[]; nextAfter: number; hasMore: boolean }>("GET", `/journal?after=${after}&limit=${limit}`, { token: shop.auditor });
        expect(r.status).toBe(200);
        got.push(...r.body.rows.map((x) => x.seq));
        after = r.body.nextAfter;
        if (!r.body.hasMore) break;
      }
      expect(got, `limit ${limit}`).toEqual(Array.from({ length: verdicts }, (_, i) => i + 1));
    }
    const tail = await call<{ rows: unknown[]; nextAfter: number }>("GET", `/journal?after=${verdicts}`, { token: shop.auditor });
    expect(tail.body).toMatchObject({ rows: [], nextAfter: verdicts, hasMore: false });
    expect((await call("GET", "/journal?limit=501", { token: shop.auditor })).status).toBe(400);
  });
});

describe("auditor reads", () => {
  it("items with stock, paged by cursor", async () => {
    const all: Record<string, unknown>[] = [];
    let after = "";
    for (;;) {
      const r = await call<{ rows: Record<string, unknown>[]; nextAfter: string | null }>("GET", `/items?limit=1${after ? `&after=${after}` : ""}`, { token: shop.auditor });
      all.push(...r.body.rows);
      if (!r.body.nextAfter) break;
      after = r.body.nextAfter;
    }
    expect(all.map((i) => i.name).sort()).toEqual(["Cake", "Mug", "Tea"]);
    expect(all.find((i) => i.name === "Tea")).toMatchObject({ stock: 30 - 5 - 12 });
    expect(all.find((i) => i.name === "Mug")).toMatchObject({ stock: 1 });
  });

  it("invoices with balance and status, payments, history, balances, summaries, rejections, quarantine, tamper events", async () => {
    const open = await call<{ rows: { balance: number; status: string }[] }>("GET", "/invoices?status=open", { token: shop.auditor });
    expect(open.body.rows.length).toBe(5 + 1);
    expect(open.body.rows.every((r) => r.status === "open" && r.balance > 0)).toBe(true);
    const member = await call<{ rows: unknown[] }>("GET", "/invoices?limit=500", { token: shop.member });
    expect(member.body.rows.length).toBe(1 + 5 + 1 + 12);
    expect((await call<{ rows: unknown[] }>("GET", "/payments", { token: shop.adminToken })).body.rows.length).toBe(1);
    expect((await call<{ rows: { customer: string }[] }>("GET", "/purchase-history", { token: shop.auditor })).body.rows).toEqual([expect.objectContaining({ customer: "c-1", total: 600 })]);
    expect((await call<{ rows: unknown[] }>("GET", "/customer-balances", { token: shop.auditor })).body.rows).toEqual([expect.objectContaining({ customer: "c-1", outstanding: 0 })]);
    expect((await call<{ rows: unknown[] }>("GET", "/daily-summaries", { token: shop.auditor })).body.rows.length).toBeGreaterThan(0);
    const rejected = await call<{ rows: { reason: string }[] }>("GET", "/rejections", { token: shop.auditor });
    expect(rejected.body.rows.map((r) => r.reason)).toEqual([expect.stringMatching(/^insufficient stock for item .*: requested 5, available 1$/)]);
    expect((await call<{ rows: unknown[] }>("GET", "/quarantine", { token: shop.auditor })).body.rows).toHaveLength(1);
    expect((await call<{ rows: unknown[] }>("GET", "/tamper-events", { token: shop.auditor })).body.rows).toEqual([]);
    expect((await call("GET", `/items?team=${shop.team.team}`, { token: shop.serviceToken })).status).toBe(200);
    expect((await call("GET", "/items", { token: shop.serviceToken })).status).toBe(400);
  });

  it("sync status: per device segments, decided and undecided entries, rejections, last seen; materializer lag", async () => {
    const r = await call<{ devices: Record<string, unknown>[]; materializer: Record<string, number> }>("GET", "/sync-status", { token: shop.auditor });
    expect(r.status, r.raw).toBe(200);
    const tab = r.body.devices.find((d) => d.device === "tab-a")!;
    expect(tab).toMatchObject({ segments: 1, entries: 15, decided: 15, undecided: 0, rejected: 1, quarantined: 1 });
    expect(typeof tab.lastSeen).toBe("string");
    const gw = r.body.devices.find((d) => d.device === "gw-till-1")!;
    expect(gw).toMatchObject({ entries: 9, decided: 9, undecided: 0, rejected: 0 });
    expect(r.body.materializer).toMatchObject({ journalSeq: verdicts, projectedSeq: verdicts, behind: 0, undecided: 0, deferred: 0 });
  });
});

describe("OpenAPI document", () => {
  it("lists every route express serves under /api", async () => {
    const { apiRouter } = await import("../../../server/http/api.js");
    const { Gateway } = await import("../../../server/gateway/gateway.js");
    const { accounts } = await import("../../../server/accounts/store.js");
    const { RateLimiter } = await import("../../../server/accounts/rate-limit.js");
    const { collections } = await import("../../../server/materializer/collections.js");
    const s = shop.relay.service;
    const db = shop.relay.db.db;
    const router = apiRouter({
      db, repo: s.repo, teams: s.teams, registry: s.relay.registry, tokens: s.tokens, logger: (await import("pino")).pino({ level: "silent" }),
      tokenTtlSeconds: 60, accounts: accounts(db), loginLimiter: new RateLimiter({ limit: 1, windowMs: 1 }),
      gateway: new Gateway({ db, repo: s.repo, registry: s.relay.registry, logger: (await import("pino")).pino({ level: "silent" }) }), c: collections(db),
    });
    const served = (router.stack as { route?: { path: string; methods: Record<string, boolean> } }[])
      .filter((l) => l.route)
      .flatMap((l) => Object.keys(l.route!.methods).map((m) => `${m} /api${l.route!.path.replace(/:([A-Za-z0-9_]+)/g, "{$1}")}`));
    const documented = Object.entries(openapi.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m} ${p}`));
    expect(served.length).toBeGreaterThan(15);
    expect(documented.sort()).toEqual(served.sort());
  });

  it("every answer seen in these tests validates against its declared schema", () => {
    const ajv = new Ajv2020({ strict: false });
    const templates = Object.keys(openapi.paths).map((p) => ({ p, re: new RegExp(`^${p.replace(/\{[^}]+\}/g, "[^/]+")}$`) }));
    let checked = 0;
    for (const { method, path, answer } of seen) {
      const pathOnly = `/api${path.split("?")[0]}`;
      const t = templates.find((x) => x.re.test(pathOnly));
      expect(t, pathOnly).toBeDefined();
      const op = openapi.paths[t!.p]![method.toLowerCase()];
      const resp = op?.responses[String(answer.status)];
      expect(resp, `${method} ${path} → ${answer.status} is documented`).toBeDefined();
      const validate = ajv.compile(resp!.content["application/json"].schema);
      expect(validate(answer.body), `${method} ${path} → ${answer.status}: ${JSON.stringify(validate.errors)}`).toBe(true);
      checked++;
    }
    expect(checked).toBeGreaterThan(30);
  });
});
