/**
 * Two tablets linked with the service down show one picture: the same provisional stock (every
 * undecided sale counted, whoever made it), and the same catalog conflict when both repriced one
 * item while apart, with both prices and who set them, until a later edit settles it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Device } from "../../../client/device.js";
import { startShop, type Shop } from "../materializer/harness.js";
import { eventually, enrollForPeers, removeTmpDirs, shopDevice } from "./helpers.js";

let shop: Shop;
const opened: Device[] = [];

async function open(id: string): Promise<Device> {
  await enrollForPeers(shop.relay.db.db, shop.team.team, id);
  const d = await shopDevice(shop, id);
  opened.push(d);
  await d.peers.certify();
  return d;
}

/** a listens, b connects; resolves once the link is up. */
async function link(a: Device, b: Device): Promise<() => void> {
  const address = `ws://127.0.0.1:${await a.listen(0)}/`;
  b.connectPeer(address);
  await eventually(() => b.peerOnline(address), "the peer link", 30_000);
  return () => b.disconnectPeer(address);
}

beforeAll(async () => {
  shop = await startShop(`fig${globalThis.crypto.randomUUID().slice(0, 8)}`);
});

afterAll(async () => {
  for (const d of opened) await d.close().catch(() => undefined);
  await shop?.close();
  await removeTmpDirs();
});

describe("one picture on linked tablets", () => {
  it("shows the same provisional stock on both, counting each other's undecided sales", async () => {
    const a = await open("fig-a");
    const b = await open("fig-b");
    const tea = await a.catalogEditor.addItem({ name: "Tea", price: 300 });
    await a.recordStock({ item: tea.id, delta: 10, reason: "delivery" });
    await eventually(() => a.provisional().stock[tea.id] === 10 && b.provisional().stock[tea.id] === 10, "stock 10 decided on both", 60_000);

    a.goOffline();
    b.goOffline();
    await eventually(() => !a.online && !b.online, "both offline");
    const sa = await a.recordSale({ lines: [{ item: tea.id, quantity: 2 }] });
    const sb = await b.recordSale({ lines: [{ item: tea.id, quantity: 1 }] });
    expect([a.provisional().stock[tea.id], b.provisional().stock[tea.id]]).toEqual([8, 9]);

    const unlink = await link(a, b);
    const holdsBoth = (d: Device): boolean => [sa.id, sb.id].every((id) => d.entries().some((e) => e.id === id));
    await eventually(() => holdsBoth(a) && holdsBoth(b), "both sales on both tablets", 30_000);
    expect(a.provisional().stock[tea.id]).toBe(7);
    expect(b.provisional().stock[tea.id]).toBe(7);
    unlink();
  }, 180_000);

  it("shows concurrent reprices as a conflict with both prices and who set them, until a later edit", async () => {
    const a = await open("rep-a");
    const b = await open("rep-b");
    const cake = await a.catalogEditor.addItem({ name: "Cake", price: 450 });
    await eventually(() => b.items().some((i) => i.id === cake.id), "b sees the item", 30_000);
    a.goOffline();
    b.goOffline();
    await eventually(() => !a.online && !b.online, "both offline");
    await a.catalogEditor.repriceItem(cake.id, 500);
    await b.catalogEditor.repriceItem(cake.id, 520);
    expect(a.conflicts()).toEqual([]);

    const unlink = await link(a, b);
    await eventually(() => a.conflicts().length === 1 && b.conflicts().length === 1, "the conflict on both tablets", 30_000);
    const seen = a.conflicts()[0]!;
    expect(b.conflicts()).toEqual([seen]);
    expect(seen).toMatchObject({ map: "items", id: cake.id, field: "price" });
    expect(seen.values.map((v) => [v.value, v.device]).sort()).toEqual([[500, "rep-a"], [520, "rep-b"]]);
    // Both tablets show the same one of the two until someone decides.
    const shown = seen.values.find((v) => v.shown)!.value;
    expect(a.items().find((i) => i.id === cake.id)?.price).toBe(shown);
    expect(b.items().find((i) => i.id === cake.id)?.price).toBe(shown);

    await b.catalogEditor.repriceItem(cake.id, 510);
    await eventually(() => a.items().find((i) => i.id === cake.id)?.price === 510, "the settling edit reaches a", 30_000);
    expect(a.conflicts()).toEqual([]);
    expect(b.conflicts()).toEqual([]);
    unlink();
  }, 180_000);
});
