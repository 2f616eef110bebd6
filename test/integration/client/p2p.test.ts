/**
 * Peer to peer: two tablets of one team link with their certified device keys and sync with the
 * relay unreachable, then only one goes online and carries the other's entries to the relay; a
 * device of another team is refused in both directions (whichever side checks the certificate).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Device } from "../../../client/device.js";
import { certifiedDevice, createTeam, eventually, relayEntries, removeTmpDirs, startTestRelay, type TestRelay, type TestTeam } from "./helpers.js";

let relay: TestRelay;
let shop: TestTeam;
let rival: TestTeam;
const opened: Device[] = [];

async function device(team: TestTeam, id: string): Promise<Device> {
  const d = await certifiedDevice(relay, team, id);
  opened.push(d);
  return d;
}

async function sell(d: Device, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const sale = await d.recordSale({ lines: [{ item: `p2p-${globalThis.crypto.randomUUID()}`, quantity: 1, price: 500, name: "Tea" }] });
    ids.push(sale.id);
  }
  return ids;
}

beforeAll(async () => {
  relay = await startTestRelay();
  shop = await createTeam(relay, "shop-p2p");
  rival = await createTeam(relay, "rival-p2p");
});

afterAll(async () => {
  for (const d of opened) await d.close();
  await relay?.close();
  await removeTmpDirs();
});

describe("peer to peer", () => {
  it("two devices sync without the relay; one carries both ledgers to the relay later", async () => {
    const a = await device(shop, "tab-a");
    const b = await device(shop, "tab-b");
    a.goOffline();
    b.goOffline();
    await eventually(() => !a.online && !b.online, "both offline");

    const port = await a.listen(0);
    const dialled = Date.now();
    b.connectPeer(`ws://127.0.0.1:${port}/`);
    await eventually(() => b.peerOnline(`ws://127.0.0.1:${port}/`), "b connected to a", 15_000, 5);
    const linkedMs = Date.now() - dialled;

    const fromA = await sell(a, 20);
    const fromB = await sell(b, 20);
    const all = [...fromA, ...fromB];
    const holds = (d: Device): boolean => {
      const ids = new Set(d.entries().map((e) => e.id));
      return all.every((id) => ids.has(id));
    };
    const selling = Date.now();
    await eventually(() => holds(a) && holds(b), "both devices hold all 40 entries", 30_000, 20);
    console.log(`[p2p] linked (handshake, sealed channel) in ${linkedMs} ms; 40 entries held on both ${Date.now() - selling} ms after the last write`);
    expect((await relayEntries(relay, shop.registryUrl)).entries.size).toBe(0);

    // Only b reaches the relay; a stays offline (and its peer link is cut too).
    b.disconnectPeer(`ws://127.0.0.1:${port}/`);
    b.goOnline();
    await eventually(async () => {
      const held = await relayEntries(relay, shop.registryUrl);
      return all.every((id) => held.entries.has(id));
    }, "the relay holds a's and b's entries", 60_000, 250);
    const held = await relayEntries(relay, shop.registryUrl);
    expect(held.segments.sort()).toEqual(["tab-a/0", "tab-b/0"]);
  }, 120_000);

  it("refuses a device of another team, whichever side connects", async () => {
    const mine = await device(shop, "tab-c");
    const theirs = await device(rival, "rival-1");
    mine.goOffline();
    theirs.goOffline();
    await sell(mine, 3);
    await sell(theirs, 3);
    const statuses: string[] = [];
    theirs.on("peer", (e) => statuses.push(e.status.state === "offline" ? e.status.reason : "online"));
    mine.on("peer", (e) => statuses.push(e.status.state === "offline" ? e.status.reason : "online"));

    const myPort = await mine.listen(0);
    const theirPort = await theirs.listen(0);
    theirs.connectPeer(`ws://127.0.0.1:${myPort}/`);
    mine.connectPeer(`ws://127.0.0.1:${theirPort}/`);
    await eventually(() => statuses.length >= 4, "refused attempts on both sides", 30_000);
    expect(statuses).not.toContain("online");
    // Each dialling side sees the listener's certificate is for another team and hangs up.
    expect(statuses.join(" ")).toMatch(/peer refused: certificate is for team shop-p2p, not rival-p2p/);
    expect(statuses.join(" ")).toMatch(/peer refused: certificate is for team rival-p2p, not shop-p2p/);
    expect(mine.peerOnline(`ws://127.0.0.1:${theirPort}/`)).toBe(false);
    expect(theirs.peerOnline(`ws://127.0.0.1:${myPort}/`)).toBe(false);
    expect(mine.entries().every((e) => e.device === "tab-c" || e.device.startsWith("tab-"))).toBe(true);
    expect(theirs.entries().every((e) => e.device === "rival-1")).toBe(true);
    theirs.disconnectPeer(`ws://127.0.0.1:${myPort}/`);
    mine.disconnectPeer(`ws://127.0.0.1:${theirPort}/`);
  }, 60_000);
});
