/**
 * A device holds its working set, not the team's history (client/working-set.ts): a new device
 * of a team with 2,000 old entries in 20 segments sells at once and loads only the segments of
 * open invoices, takes a payment on an old open invoice offline, lets that segment go once the
 * invoice is settled, and never lets go of an own segment before the relay acknowledged it. The
 * materializer runs in process, so the status document is the real one.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { randomUUID } from "node:crypto";
import type { DocHandle } from "@automerge/automerge-repo";
import type { Device } from "../../../client/device.js";
import { openDevice } from "../../../client/node.js";
import { buildSegment, shopLedger } from "../../../bench/lib/fixtures.js";
import { waitRelayHolds } from "../../../bench/lib/client.js";
import type { SegmentRegistryDoc, StatusDoc } from "../../../shared/docs.js";
import type { LedgerEntry, SaleEntry } from "../../../shared/domain/index.js";
import { connectClient, type TestClient } from "../relay/harness.js";
import { addItem, startShop, type Shop } from "../materializer/harness.js";
import { eventually, relayEntries, removeTmpDirs, tmpDir } from "./helpers.js";

const DEVICES = 4;
const PER_DEVICE = 500;
const SEGMENT = 100;
const HISTORY_START = Date.UTC(2026, 0, 5, 8);
/** hist-0 has the old credit sale besides its 500: six segments. */
const HISTORY_SEGMENTS = DEVICES * (PER_DEVICE / SEGMENT) + 1;

let shop: Shop;
const tills: TestClient[] = [];
const opened: Device[] = [];
/** An unpaid credit sale in the team's very first segment. */
let oldCredit: SaleEntry;

function token(device: string): string {
  return shop.relay.token({ sub: `clerk-${device}`, team: shop.team.team, role: "member", device });
}

async function open(device: string, extra: { dataDir?: string; now?: () => Date; segmentMaxEntries?: number; offline?: boolean } = {}): Promise<Device> {
  const d = await openDevice({
    serverUrl: shop.relay.service.url, token: token(device), rootUrl: shop.team.rootUrl, deviceId: device,
    dataDir: extra.dataDir ?? (await tmpDir(device)), publicKeyPem: shop.relay.service.tokens.publicKeyPem,
    backoff: { baseMs: 100, maxMs: 1000 }, ...extra,
  });
  opened.push(d);
  return d;
}

async function journaled(): Promise<number> {
  return shop.relay.db.db.collection("journal").countDocuments({ team: shop.team.team });
}

async function stockLevel(item: string): Promise<number | undefined> {
  const row = await shop.relay.db.db.collection("stock_levels").findOne({ team: shop.team.team, item });
  return row ? Number(row.level) : undefined;
}

beforeAll(async () => {
  shop = await startShop();
  await addItem(shop, "ws-tea", "Tea", 300);
  // The history: four tills' January, pushed as their segments, as a till's Repo pushes them.
  for (let d = 0; d < DEVICES; d++) {
    const device = `hist-${d}`;
    const ledger: LedgerEntry[] = shopLedger(device, PER_DEVICE, HISTORY_START + d * 7);
    if (d === 0) {
      oldCredit = {
        id: randomUUID(), kind: "sale", at: new Date(HISTORY_START + 1000).toISOString(), device, user: `clerk-${device}`,
        lines: [{ item: "old-item", quantity: 1, price: 1200, name: "Old crate" }], subtotal: 1200, tax: 0, discount: 0, total: 1200,
        customer: "customer-old", paid: 0,
      };
      ledger.splice(1, 0, oldCredit);
    }
    const till = await connectClient(shop.relay.service.syncUrl, token(device));
    tills.push(till);
    const registry = await till.repo.find<SegmentRegistryDoc>(shop.team.registryUrl);
    const handles: Array<DocHandle<unknown>> = [];
    for (let i = 0, n = 0; i < ledger.length; i += SEGMENT, n++) {
      const chunk = ledger.slice(i, i + SEGMENT);
      const handle = till.repo.import<unknown>(buildSegment({ team: shop.team.team, device, n, createdAt: chunk[0]!.at }, chunk));
      handles.push(handle);
      registry.change((r) => {
        r.segments[`${device}/${n}`] = handle.url;
      });
    }
    await waitRelayHolds(till.repo, [...handles, registry as DocHandle<unknown>], `${device}'s segments on the relay`, 60_000);
  }
  await eventually(async () => (await journaled()) >= DEVICES * PER_DEVICE + 1, "the history decided", 90_000, 500);
}, 150_000);

afterAll(async () => {
  for (const d of opened) await d.close();
  for (const t of tills) await t.close();
  await shop?.close();
  await removeTmpDirs();
});

it("a new device of a 2,000-entry team sells at once and holds only the open invoices' segments", async () => {
  // Each till's last segment holds open credit sales, and hist-0/0 the old one.
  const status = await shop.admin.repo.find<StatusDoc>(shop.team.statusUrl);
  const openSegments = (): Set<string | undefined> =>
    new Set(Object.values(status.doc().invoices).map((inv) => (typeof inv.segment === "string" ? inv.segment : inv.segment?.val)));
  await eventually(() => openSegments().size === DEVICES + 1 && !openSegments().has(undefined), "five segments with open invoices in the status", 30_000);

  const t0 = Date.now();
  const device = await open("new-till");
  await device.recordStock({ item: "ws-tea", delta: 10, reason: "delivery" });
  const sale = await device.recordSale({ lines: [{ item: "ws-tea", quantity: 3, price: 300 }], paid: 900 });
  console.log(`[working-set] new device of a ${DEVICES * PER_DEVICE}-entry team: enrolled and sold in ${Date.now() - t0} ms`);
  expect(device.provisional().stock["ws-tea"]).toBe(7);

  // Its working set: its own segment and the five segments holding open invoices, of 21.
  await eventually(() => device.heldSegments().held === DEVICES + 2, "the open invoices' segments held", 30_000);
  await new Promise((r) => setTimeout(r, 1000));
  expect(device.heldSegments()).toEqual({ held: DEVICES + 2, loading: 0, registered: HISTORY_SEGMENTS + 1 });
  const loaded = Object.values(device.repo.handles).filter((h) => h.isReady());
  // root, registry, catalog, status; 6 segments; at most their 6 verdicts documents.
  expect(loaded.length).toBeLessThanOrEqual(4 + 2 * (DEVICES + 2));
  expect(device.heldEntryCount()).toBeLessThanOrEqual((DEVICES + 1) * SEGMENT + 2);
  expect(device.invoices().map((i) => i.id)).toContain(oldCredit.id);

  // Provisional figures: the server's as the base, not history replayed.
  await device.whenSynced(30_000);
  await eventually(() => device.entryStatus(sale.id).status === "accepted", "the sale accepted", 30_000);
  await eventually(async () => (await stockLevel("ws-tea")) === 7, "stock level 7 in MongoDB", 30_000);
  await eventually(() => device.provisional().stock["ws-tea"] === 7, "provisional stock from the status", 10_000);
  for (const item of ["hist-1-item-3", "hist-2-item-5"]) expect(device.provisional().stock[item]).toBe(await stockLevel(item));

  // Older history on demand.
  expect(await device.fetchHistory({ keys: ["hist-3/0"] })).toBe(1);
  expect(device.heldSegments().held).toBe(DEVICES + 3);
}, 120_000);

it("takes a payment on an old open invoice offline, and lets the segment go once the invoice is settled", async () => {
  const device = opened[0]!;
  const before = device.heldSegments().held;
  device.goOffline();
  const payment = await device.recordPayment({ invoice: oldCredit.id, amount: 1200 });
  expect(device.provisional().invoices[oldCredit.id]).toMatchObject({ outstanding: 0, status: "finalized" });
  await expect(device.recordPayment({ invoice: oldCredit.id, amount: 1 })).rejects.toThrow(/exceeds outstanding/);

  device.goOnline();
  await device.whenSynced(30_000);
  await eventually(() => device.entryStatus(payment.id).status === "accepted", "the payment accepted", 30_000);
  // Finalized: it leaves the status, so hist-0/0 leaves the working set (hist-3/0 was asked for: kept).
  await eventually(() => device.heldSegments().held === before - 1, "hist-0/0 let go", 30_000);
  expect(device.entries().some((e) => e.id === oldCredit.id)).toBe(false);
  expect((await relayEntries(shop.relay, shop.team.registryUrl)).entries.has(oldCredit.id)).toBe(true);
}, 90_000);

it("never lets go of its own segments before the relay acknowledged them, and does after", async () => {
  let clock = Date.UTC(2026, 5, 10, 9);
  const dataDir = await tmpDir("own");
  const device = await open("own-till", { dataDir, now: () => new Date(clock), segmentMaxEntries: 2 });
  device.goOffline();
  const accepted = new Set<string>();
  device.on("verdict", (e) => {
    if (e.verdict.status === "accepted") accepted.add(e.entryId);
  });
  const written: string[] = [];
  for (let i = 0; i < 5; i++) written.push((await device.recordSale({ lines: [{ item: `own-${i}`, quantity: 1, price: 100, name: "Pen" }], paid: 100 })).id);
  // A month on, still offline: three own segments, none on the relay, so all stay.
  clock = Date.UTC(2026, 6, 20, 9);
  written.push((await device.recordSale({ lines: [{ item: "own-5", quantity: 1, price: 100, name: "Pen" }], paid: 100 })).id);
  expect(device.pendingCount()).toBe(6);
  expect(device.heldSegments().held).toBeGreaterThanOrEqual(4);
  expect(device.entries().filter((e) => e.device === "own-till")).toHaveLength(6);

  device.goOnline();
  await device.whenSynced(30_000);
  // Verdict events: an entry whose segment is let go of no longer shows its verdict here.
  await eventually(() => written.every((id) => accepted.has(id)), "own sales accepted", 30_000);
  // Acknowledged, decided and a month old: only the segment written to stays.
  await eventually(() => device.entries().filter((e) => e.device === "own-till").length === 1, "old own segments let go", 30_000);
  const onRelay = (await relayEntries(shop.relay, shop.team.registryUrl)).entries;
  expect(written.every((id) => onRelay.has(id))).toBe(true);

  // Settled segments are not loaded again after a restart.
  await device.close();
  const again = await open("own-till", { dataDir, now: () => new Date(clock), offline: true });
  expect(again.entries().filter((e) => e.device === "own-till").map((e) => e.id)).toEqual([written[5]]);
  expect(again.pendingCount()).toBe(0);
  const next = await again.recordSale({ lines: [{ item: "own-6", quantity: 1, price: 100, name: "Pen" }], paid: 100 });
  expect(again.currentSegment()?.size).toBe(2);
  expect(again.entries().map((e) => e.id)).toContain(next.id);
}, 90_000);
