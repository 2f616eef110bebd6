/**
 * Server statements over peer links: a real relay and materializer decide a shop's day, then a
 * team mate's tablet (same team, valid credentials) edits the stock, a balance and a verdict in
 * its own copy of the server-owned documents and links to the others with the service down. The
 * honest tablets drop those changes, before and after a restart and on an onward link to a third
 * tablet, while genuine, signed figures still travel from tablet to tablet.
 */
import type { AutomergeUrl } from "@automerge/automerge-repo";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Device, DeviceOptions } from "../../../client/device.js";
import { openDevice } from "../../../client/node.js";
import type { StatusDoc, VerdictsDoc } from "../../../shared/docs.js";
import { startShop, type Shop } from "../materializer/harness.js";
import { eventually, enrollForPeers, removeTmpDirs, tmpDir } from "./helpers.js";

let shop: Shop;
const opened: Device[] = [];

async function open(id: string, dataDir: string, extra: Partial<DeviceOptions> = {}): Promise<Device> {
  await enrollForPeers(shop.relay.db.db, shop.team.team, id);
  const d = await openDevice({
    serverUrl: shop.relay.service.url,
    token: shop.relay.token({ sub: `clerk-${id}`, team: shop.team.team, role: "member", device: id }),
    rootUrl: shop.team.rootUrl,
    deviceId: id,
    dataDir,
    publicKeyPem: shop.relay.service.tokens.publicKeyPem,
    backoff: { baseMs: 100, maxMs: 1000 },
    ...extra,
  });
  opened.push(d);
  // Offline, it links with the certificate it got when it was online (kept in its data folder).
  if (!extra.offline) await d.peers.certify();
  return d;
}

/** What the device's own copy of the status document holds, whatever the device believes. */
async function rawStock(d: Device, item: string): Promise<number | undefined> {
  return (await d.repo.find<StatusDoc>(shop.team.statusUrl)).doc().stock[item];
}

function drops(d: Device): string[] {
  const seen: string[] = [];
  d.on("dropped", (e) => seen.push(e.documentId));
  return seen;
}

beforeAll(async () => {
  shop = await startShop(`stmt${globalThis.crypto.randomUUID().slice(0, 8)}`);
});

afterAll(async () => {
  for (const d of opened) await d.close().catch(() => undefined);
  await shop?.close();
  await removeTmpDirs();
});

describe("server statements carried by peers", () => {
  it("a team mate's edits of stock, balances and verdicts change nothing on other tablets, across a restart and an onward link", async () => {
    const a = await open("tab-a", await tmpDir("stmt-a"));
    const bDir = await tmpDir("stmt-b");
    let b = await open("tab-b", bDir);
    // Enrolled now, offline until it links to b after the day's decisions: it can only get them from b.
    const c = await open("tab-c", await tmpDir("stmt-c"));
    c.goOffline();
    const statusId = (await a.repo.find<StatusDoc>(shop.team.statusUrl)).documentId;

    const tea = await a.catalogEditor.addItem({ name: "Tea", price: 300 });
    await a.recordStock({ item: tea.id, delta: 10, reason: "delivery" });
    await eventually(() => b.items().some((i) => i.id === tea.id), "b sees the item", 30_000);
    const open1 = await b.recordSale({ lines: [{ item: tea.id, quantity: 2 }], paid: 100 });
    const oversell = await b.recordSale({ lines: [{ item: tea.id, quantity: 100 }] });
    await eventually(
      () => b.entryStatus(open1.id).status === "accepted" && b.entryStatus(oversell.id).status === "rejected" && b.provisional().stock[tea.id] === 8,
      "the server's verdicts and stock on b",
      60_000,
    );
    await eventually(() => a.provisional().stock[tea.id] === 8, "the stock on a", 30_000);
    expect(b.invoices().find((i) => i.id === open1.id)?.authoritative).toMatchObject({ total: 600, paid: 100, outstanding: 500 });

    // The malicious tablet: b's verdicts document fetched while online, then its own copies edited offline.
    const aStatus = await a.repo.find<StatusDoc>(shop.team.statusUrl);
    const bSegment = b.currentSegment()!.url;
    await eventually(() => aStatus.doc().verdicts[bSegment] !== undefined, "a sees b's verdicts document", 30_000);
    const aVerdicts = await a.repo.find<VerdictsDoc>(aStatus.doc().verdicts[bSegment] as AutomergeUrl);
    await eventually(() => aVerdicts.doc().verdicts[oversell.id] !== undefined, "a holds b's verdicts", 30_000);
    a.goOffline();
    b.goOffline();
    await eventually(() => !a.online && !b.online, "a and b offline");
    aStatus.change((d) => {
      d.stock[tea.id] = 500;
      d.invoices[open1.id] = { total: 600, paid: 600, outstanding: 0, status: "open" };
    });
    aVerdicts.change((d) => {
      d.verdicts[oversell.id] = { status: "accepted", seq: 99, decidedAt: new Date().toISOString() };
    });
    expect(await rawStock(a, tea.id)).toBe(500);
    // Something genuine to carry, so the link is shown to work.
    const carried = await a.recordSale({ lines: [{ item: "biscuit", quantity: 1, price: 120, name: "Biscuit" }] });

    const bDrops = drops(b);
    const bPort = await b.listen(0);
    a.connectPeer(`ws://127.0.0.1:${bPort}/`);
    await eventually(() => b.entries().some((e) => e.id === carried.id), "a's sale reaches b over the link", 30_000);
    // Waits for the forgery to be dropped or (on code that does not drop it) to arrive.
    await eventually(
      async () => (bDrops.includes(statusId) && bDrops.includes(aVerdicts.documentId)) || (await rawStock(b, tea.id)) === 500,
      "b drops the forged status and verdicts",
      30_000,
    );
    const showsTruth = async (d: Device): Promise<void> => {
      expect(d.provisional().stock[tea.id]).toBe(8);
      expect(await rawStock(d, tea.id)).toBe(8);
    };
    await showsTruth(b);
    expect(b.entryStatus(oversell.id).status).toBe("rejected");
    expect(b.invoices().find((i) => i.id === open1.id)?.authoritative).toMatchObject({ paid: 100, outstanding: 500 });

    // After a restart, offline: nothing forged was stored either.
    a.disconnectPeer(`ws://127.0.0.1:${bPort}/`);
    await b.close();
    b = await open("tab-b", bDir, { offline: true });
    await eventually(() => b.entryStatus(oversell.id).status === "rejected", "b's verdicts after the restart", 30_000);
    await showsTruth(b);
    expect(b.invoices().find((i) => i.id === open1.id)?.authoritative).toMatchObject({ paid: 100, outstanding: 500 });

    // An onward link: c gets the genuine, signed figures from b, and nothing of a's forgery from either.
    const cDrops = drops(c);
    const bPort2 = await b.listen(0);
    c.connectPeer(`ws://127.0.0.1:${bPort2}/`);
    await eventually(async () => c.provisional().stock[tea.id] === 8 && (await rawStock(c, tea.id)) === 8, "c gets the signed stock from b", 30_000);
    const cPort = await c.listen(0);
    a.connectPeer(`ws://127.0.0.1:${cPort}/`);
    await eventually(() => c.entries().some((e) => e.id === carried.id), "a links to c", 30_000);
    await eventually(async () => cDrops.includes(statusId) || (await rawStock(c, tea.id)) === 500, "c drops a's forged status", 30_000);
    await showsTruth(c);
  }, 240_000);
});
