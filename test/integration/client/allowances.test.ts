/**
 * Offline stock allowances end to end (relay, materializer, FerretDB, two tablets): each tablet
 * learns its allowance while online, sells offline within it and beyond it, and reconnects; every
 * sale within an allowance is accepted, the one beyond is flagged at risk on the tablet before
 * it syncs, stock in MongoDB stays ≥ 0, the journal shows every grant, and a tablet cannot raise
 * its own allowance by writing the status document.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Device } from "../../../client/device.js";
import type { StatusDoc } from "../../../shared/docs.js";
import type { SaleEntry } from "../../../shared/domain/index.js";
import { deepVerify } from "../../../server/audit/deep.js";
import { collections } from "../../../server/materializer/collections.js";
import { startShop, type Shop } from "../materializer/harness.js";
import { eventually, removeTmpDirs, shopDevice } from "./helpers.js";

let shop: Shop;
const opened: Device[] = [];

async function open(id: string): Promise<Device> {
  const d = await shopDevice(shop, id);
  opened.push(d);
  return d;
}

beforeAll(async () => {
  shop = await startShop(`alw${globalThis.crypto.randomUUID().slice(0, 8)}`);
});

afterAll(async () => {
  for (const d of opened) await d.close().catch((err: unknown) => console.error("close failed", err));
  await shop?.close();
  await removeTmpDirs();
});

/**
 * Both tablets hold 4 units of `item` (12 in stock), go offline, sell 4 each within their
 * allowances and one sale beyond each; `first` reconnects first. 4 units are unreserved: the
 * first sale at risk to arrive fits, the second does not.
 */
async function offlineDay(a: Device, b: Device, item: string, first: "a" | "b"): Promise<void> {
  const view = (d: Device) => d.allowances().find((x) => x.item === item);
  const left = (d: Device): number => view(d)?.left ?? 0;
  await eventually(() => left(a) === 4 && left(b) === 4 && view(a)?.stockKnown === 12 && view(b)?.stockKnown === 12, "allowances of 4 on both tablets", 45_000);

  a.goOffline();
  b.goOffline();
  await eventually(() => !a.online && !b.online, "both offline");
  const within: SaleEntry[] = [
    await a.recordSale({ lines: [{ item, quantity: 3 }] }),
    await a.recordSale({ lines: [{ item, quantity: 1 }] }),
    await b.recordSale({ lines: [{ item, quantity: 2 }] }),
    await b.recordSale({ lines: [{ item, quantity: 2 }] }),
  ];
  for (const s of within) expect(s.lines[0]!.claim).toBeTypeOf("number");
  expect(left(a)).toBe(0);
  // Beyond: marked at risk on the tablet before it syncs.
  const riskyB = await b.recordSale({ lines: [{ item, quantity: 3 }] });
  const riskyA = await a.recordSale({ lines: [{ item, quantity: 2 }] });
  expect(b.saleAtRisk(riskyB)).toEqual([{ item, quantity: 3, left: 0 }]);
  expect(a.saleAtRisk(riskyA)).toHaveLength(1);
  expect(view(a)).toMatchObject({ left: 0, atRisk: 2, stockKnown: 12 });

  const [early, late, earlyRisk, lateRisk] = first === "a" ? [a, b, riskyA, riskyB] : [b, a, riskyB, riskyA];
  early.goOnline();
  await eventually(() => early.entryStatus(earlyRisk.id).status !== "undecided", "the first tablet's sales decided", 45_000);
  late.goOnline();
  await eventually(() => late.entryStatus(lateRisk.id).status !== "undecided", "the second tablet's sales decided", 45_000);
  const statusOf = (s: SaleEntry): string => (s.device === a.deviceId ? a : b).entryStatus(s.id).status;
  await eventually(() => within.every((s) => statusOf(s) !== "undecided"), "every sale decided", 45_000);
  for (const s of within) expect(statusOf(s), s.id).toBe("accepted");
  expect(statusOf(earlyRisk)).toBe("accepted");
  expect(late.entryStatus(lateRisk.id)).toMatchObject({ status: "rejected", reason: expect.stringMatching(/^insufficient stock for item /) });

  // What an auditor reads in MongoDB: stock never negative, every grant in the journal, spent per device.
  const db = shop.relay.db.db;
  const team = shop.team.team;
  const level = (await db.collection("stock_levels").findOne({ team, item }))?.level as number;
  expect(level).toBe(12 - 8 - (first === "a" ? 2 : 3));
  const grants = await db.collection("journal").find({ team, kind: "allowance", status: "accepted", "entry.item": item }).toArray();
  expect(grants.length).toBeGreaterThanOrEqual(2);
  const rows = await db.collection("offline_allowances").find({ team, item }).toArray();
  expect(Object.fromEntries(rows.map((r) => [r.device, r.spent]))).toEqual({ "alw-a": 4, "alw-b": 4 });
}

describe("offline allowances", () => {
  it("two offline tablets sell within their allowances, reconnect (b first), and every such sale is accepted", async () => {
    const a = await open("alw-a");
    const b = await open("alw-b");
    const tea = await a.catalogEditor.addItem({ name: "Tea", price: 300 });
    await a.recordStock({ item: tea.id, delta: 10, reason: "delivery" });
    await eventually(() => b.catalog().items.some((i) => i.id === tea.id), "the item on b", 30_000);
    await b.recordStock({ item: tea.id, delta: 2, reason: "delivery" });
    await eventually(() => a.provisional().stock[tea.id] === 12 && b.provisional().stock[tea.id] === 12 && b.pendingCount() === 0, "stock 12 on both", 45_000);
    // The shop owner puts every item under the policy: 80 % of 12 handed out, 4 units to each tablet.
    await shop.relay.service.teams.updateSettings(shop.team.team, { allowances: { items: "all" } });
    await offlineDay(a, b, tea.id, "b");
  }, 120_000);

  it("the same day with a new delivery, a reconnecting first; the journal replays to the same figures", async () => {
    const [a, b] = opened as [Device, Device];
    const coffee = await a.catalogEditor.addItem({ name: "Coffee", price: 500 });
    await a.recordStock({ item: coffee.id, delta: 12, reason: "delivery" });
    await offlineDay(a, b, coffee.id, "a");
    // Verdicts are published before the projections are written (projection-lane.ts): compare
    // once the projections hold the whole journal.
    const c = collections(shop.relay.db.db);
    const team = shop.team.team;
    await eventually(async () => {
      const head = await c.journal.find({ team }).sort({ seq: -1 }).limit(1).next();
      return (await c.teamState.findOne({ _id: team }))?.projectedSeq === head?.seq;
    }, "the projections caught up with the journal", 45_000);
    const report = await deepVerify(c, shop.relay.db.db, team);
    expect(report.problems).toEqual([]);
    expect(report.differences).toEqual([]);
  }, 120_000);

  it("an idle tablet gives its allowance back, and it is not topped up again until it sells", async () => {
    const [a, b] = opened as [Device, Device];
    const jam = await a.catalogEditor.addItem({ name: "Jam", price: 250 });
    await a.recordStock({ item: jam.id, delta: 20, reason: "delivery" });
    const left = (d: Device): number => d.allowances().find((x) => x.item === jam.id)?.left ?? 0;
    await eventually(() => left(a) === 8 && left(b) === 8, "allowances of 8 on both tablets", 45_000);
    expect(await b.returnIdleAllowances(0)).toEqual([jam.id]);
    expect(left(b)).toBe(0);
    const db = shop.relay.db.db;
    const row = async () => db.collection("offline_allowances").findOne({ team: shop.team.team, item: jam.id, device: "alw-b" });
    await eventually(async () => (await row())?.granted === 0, "the give-back journaled", 45_000);
    await new Promise((r) => setTimeout(r, 1000));
    expect((await row())?.granted).toBe(0);
    expect(left(a)).toBe(8);
    expect(await db.collection("journal").countDocuments({ team: shop.team.team, kind: "allowance", "entry.holder": "alw-b", "entry.device": "alw-b", status: "accepted" })).toBe(1);
    // What an auditor reads over HTTP: allowances by device.
    const auditor = shop.relay.token({ sub: "audrey", team: shop.team.team, role: "auditor" });
    const res = await fetch(`${shop.relay.service.url}/api/allowances?device=alw-b&limit=500`, { headers: { authorization: `Bearer ${auditor}` } });
    const body = (await res.json()) as { rows: { item: string; device: string; granted: number; spent: number; left: number }[] };
    expect(res.status).toBe(200);
    expect(body.rows.every((r) => r.device === "alw-b")).toBe(true);
    expect(body.rows.find((r) => r.item === jam.id)).toMatchObject({ granted: 0, spent: 0, left: 0 });
  }, 90_000);

  it("refuses a sale beyond the allowance on the tablet when the team says so", async () => {
    const a = opened[0]!;
    // Through the API, as an admin does; a bad value is refused with what is wrong.
    const admin = shop.relay.token({ sub: "boss", team: shop.team.team, role: "admin" });
    const patch = (body: unknown) => fetch(`${shop.relay.service.url}/api/teams/${shop.team.team}/settings`, {
      method: "PATCH", headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" }, body: JSON.stringify(body),
    });
    expect((await patch({ allowances: { items: "all", atRisk: "sometimes" } })).status).toBe(400);
    const ok = await patch({ allowances: { items: "all", atRisk: "refuse" } });
    expect(await ok.json()).toMatchObject({ settings: { allowances: { items: "all", atRisk: "refuse", sharePercent: 80 } } });
    const tea = a.catalog().items[0]!;
    const root = await a.repo.find<{ settings?: { allowances?: { atRisk?: string } } }>(shop.team.rootUrl);
    await eventually(() => root.doc().settings?.allowances?.atRisk === "refuse", "the setting on the tablet", 30_000);
    await expect(a.recordSale({ lines: [{ item: tea.id, quantity: 50 }] })).rejects.toThrow(/left in this device's offline allowance; the team refuses sales beyond it/);
  }, 60_000);

  it("a tablet cannot raise its own allowance: the relay refuses its change to the status document", async () => {
    const a = opened[0]!;
    const tea = a.catalog().items[0]!;
    const mine = await a.repo.find<StatusDoc>(shop.team.statusUrl);
    const before = mine.doc().allowances?.[tea.id]?.["alw-a"]?.granted;
    expect(before).toBeTypeOf("number");
    mine.change((d) => {
      d.allowances![tea.id]!["alw-a"]!.granted = 1_000;
    });
    await eventually(() => shop.relay.logs.some((l) => l.msg === "refused changes to a read-only document"), "the relay's refusal", 30_000);
    const relayCopy = await shop.relay.service.repo.find<StatusDoc>(shop.team.statusUrl);
    expect(relayCopy.doc().allowances?.[tea.id]?.["alw-a"]?.granted).toBe(before);
    // The device itself believes only the signed status: its forged grant does not count.
    expect(a.allowances().find((x) => x.item === tea.id)?.granted).toBe(before);
  }, 60_000);
});
