/**
 * An auditor's own tool over HTTP (docs/AUDIT.md): every journal row verifies as
 * `GET /api/journal` serves it, and `GET /api/journal/checkpoints` serves signed checkpoints
 * that anchor the chain; checked with the second implementation written from the document.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as independent from "../../helpers/independent-audit.js";
import { addItem, Device, eventually, sale, settled } from "../materializer/harness.js";
import { startApiShop, type Answer, type ApiShop } from "./harness.js";

let shop: ApiShop;
let device: Device;
let refund: string;
let hostile: string;
let waiting: string;

beforeAll(async () => {
  shop = await startApiShop({}, { checkpoints: { everyRecords: 4, everyMs: 500 }, deferCheckMs: 300 });
  await addItem(shop, "tea", "Tea", 300);
  device = new Device(shop, "till-1", "bob");
  const ids = [device.write({ kind: "stock", item: "tea", delta: 5, reason: "delivery", at: "2026-11-20T08:00:00.000Z" })];
  for (let i = 0; i < 6; i++) ids.push(device.write({ ...sale("tea", 1, 300, { customer: "c1", paid: 100 }), at: `2026-11-20T10:00:0${i}.000Z` }));
  ids.push(device.write({ kind: "payment", invoice: ids[1]!, amount: 200, at: "2026-11-20T11:00:00.000Z" }));
  refund = device.write({ kind: "refund", amount: 5, note: "ünïcode \u0001" });
  // Field names MongoDB refuses, and far more than the bound.
  hostile = device.write({ kind: "sale", $where: "1", "a.b": 2, lines: "x".repeat(20_000) });
  waiting = device.write({ kind: "payment", invoice: "no-such-invoice", amount: 100, at: "2026-11-20T12:00:00.000Z" });
  ids.push(refund, hostile);
  await device.online();
  await settled(shop, ids);
  await eventually(async () => (await shop.materializer.c.deferred.countDocuments({ team: shop.team.team })) === 1, "the payment deferred", 20_000);
  const head = await shop.materializer.c.journal.countDocuments({ team: shop.team.team });
  await eventually(async () => (await shop.materializer.c.journalCheckpoints.countDocuments({ team: shop.team.team, seq: head })) === 1, "the head checkpointed", 30_000);
});

afterAll(async () => {
  await device?.close();
  await shop?.close();
});

async function all<T>(path: string): Promise<{ rows: T[]; publicKey?: string }> {
  const rows: T[] = [];
  let after: number | string = "";
  let publicKey: string | undefined;
  for (;;) {
    const r: Answer<{ rows: T[]; nextAfter: number | string; hasMore: boolean; publicKey?: string }> = await shop.call("GET", `${path}?after=${after}&limit=3`, { token: shop.auditor });
    expect(r.status).toBe(200);
    rows.push(...r.body.rows);
    publicKey ??= r.body.publicKey;
    if (!r.body.hasMore) return { rows, ...(publicKey ? { publicKey } : {}) };
    after = r.body.nextAfter;
  }
}

describe("the journal as served verifies from docs/AUDIT.md alone", () => {
  it("every row of GET /api/journal verifies as served, accepted, rejected and invalid alike", async () => {
    const { rows } = await all<Record<string, unknown>>("/journal");
    expect(rows.length).toBe(10);
    expect(new Set(rows.map((r) => r.status))).toEqual(new Set(["accepted", "rejected", "invalid"]));
    expect(independent.checkChain(rows)).toEqual([]);
  });

  it("GET /api/journal/checkpoints serves signed checkpoints that anchor the served chain", async () => {
    const journal = (await all<{ seq: number; recordHash: string }>("/journal")).rows;
    const { rows, publicKey } = await all<{ team: string; seq: number; head: string; at: string; keyId: string; sig: string; source: string }>("/journal/checkpoints");
    expect(publicKey).toContain("BEGIN PUBLIC KEY");
    expect(rows.length).toBeGreaterThanOrEqual(1);
    for (const cp of rows) {
      expect(cp).toMatchObject({ team: shop.team.team, source: "signed" });
      expect(independent.checkpointValid(cp, publicKey!)).toBe(true);
      expect(journal.find((r) => r.seq === cp.seq)?.recordHash).toBe(cp.head);
    }
    expect(rows.at(-1)!.seq).toBe(journal.at(-1)!.seq);
  });

  it("invalid entries keep what was submitted, bounded, in the journal and the quarantine", async () => {
    const { rows: quarantine } = await all<{ entryId: string; submitted?: string }>("/quarantine");
    const journal = (await all<{ entryId: string; submitted?: string }>("/journal")).rows;
    const r = quarantine.find((q) => q.entryId === refund)!;
    expect(JSON.parse(r.submitted!)).toMatchObject({ id: refund, kind: "refund", amount: 5, note: "ünïcode \u0001" });
    const h = quarantine.find((q) => q.entryId === hostile)!;
    expect(h.submitted).toContain('"$where":"1","a.b":2');
    expect(h.submitted).toMatch(/…\(truncated from \d+ characters\)$/);
    expect(h.submitted!.length).toBeLessThan(4200);
    for (const q of quarantine) expect(journal.find((j) => j.entryId === q.entryId)?.submitted).toBe(q.submitted);
  });

  it("GET /api/deferred shows a payment waiting for its invoice, which the journal does not have yet", async () => {
    const { rows } = await all<{ entryId: string; entry: { invoice: string; amount: number }; since: string }>("/deferred");
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ entryId: waiting, entry: { invoice: "no-such-invoice", amount: 100 } });
    expect((await all<{ entryId: string }>("/journal")).rows.map((j) => j.entryId)).not.toContain(waiting);
  });
});
