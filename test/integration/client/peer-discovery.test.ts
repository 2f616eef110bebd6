/**
 * Two tablets of a shop find each other on the local network: one listens on every interface and
 * announces itself, the other hears the announcement, dials the address with its pairing code and
 * links. A tablet of another team announcing on the same network is not offered, and no beacon
 * names a team. (UDP multicast with loopback, on a port of this test's own.)
 */
import dgram from "node:dgram";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { Device } from "../../../client/device.js";
import { DISCOVERY_GROUP } from "../../../client/peer/discovery.js";
import type { FoundPeer } from "../../../client/peer/types.js";
import { freePort } from "../../../server/db/free-port.js";
import { certifiedDevice, createTeam, eventually, removeTmpDirs, startTestRelay, type TestRelay, type TestTeam } from "./helpers.js";

let relay: TestRelay;
let shop: TestTeam;
let rival: TestTeam;
const opened: Device[] = [];
const sockets: dgram.Socket[] = [];

async function device(team: TestTeam, id: string): Promise<Device> {
  const d = await certifiedDevice(relay, team, id, { baseMs: 200, maxMs: 1000 });
  opened.push(d);
  d.goOffline();
  return d;
}

beforeAll(async () => {
  relay = await startTestRelay();
  shop = await createTeam(relay, "shop-disc");
  rival = await createTeam(relay, "rival-disc");
}, 60_000);

afterAll(async () => {
  for (const d of opened) await d.close();
  for (const s of sockets) s.close();
  await relay?.close();
  await removeTmpDirs();
});

it("a tablet finds its team mate on the network, links by the announced address and code, and ignores other teams", async () => {
  const udp = await freePort();
  const a = await device(shop, "disc-a");
  const b = await device(shop, "disc-b");
  const r = await device(rival, "disc-r");

  // What anyone on the network hears.
  const heard: string[] = [];
  const sniffer = dgram.createSocket({ type: "udp4", reuseAddr: true });
  sockets.push(sniffer);
  sniffer.on("message", (m) => heard.push(m.toString("utf8")));
  await new Promise<void>((resolve) => sniffer.bind(udp, () => resolve()));
  sniffer.addMembership(DISCOVERY_GROUP);

  const found: FoundPeer[] = [];
  await b.peers.discover((p) => found.push(p), { port: udp });
  await a.peers.announce(await a.listen(0, "0.0.0.0"), { port: udp });
  await r.peers.announce(await r.listen(0, "0.0.0.0"), { port: udp });

  await eventually(() => found.some((p) => p.device === "disc-a"), "disc-b hears disc-a", 30_000);
  await eventually(() => heard.some((h) => h.includes('"disc-r"')), "the rival's beacon was on the network", 30_000);
  expect(found.map((p) => p.device)).toEqual(["disc-a"]);
  for (const h of heard) {
    expect(h).not.toContain("shop-disc");
    expect(h).not.toContain("rival-disc");
  }
  const mate = found[0]!;
  expect(mate.code).toBe(await a.peers.pairingCode());

  b.connectPeer(mate.address);
  await eventually(() => b.peerOnline(mate.address), "disc-b linked to disc-a", 30_000);
  const sale = await a.recordSale({ lines: [{ item: `disc-${globalThis.crypto.randomUUID()}`, quantity: 1, price: 300, name: "Found tea" }] });
  await eventually(() => b.entries().some((e) => e.id === sale.id), "disc-b holds disc-a's sale", 30_000);
  b.disconnectPeer(mate.address);
}, 120_000);
