/**
 * Peer identity: a peer id is whatever a peer announces, so the relay knows each session by that
 * id scoped to its token's team, user and device. Nobody else presenting a device's peer id can
 * take over its session or lock it out; the same device reconnecting replaces its old socket.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DocHandle } from "@automerge/automerge-repo";
import type { CatalogDoc } from "../../../shared/docs.js";
import type { CreatedTeam } from "../../../server/relay/teams.js";
import { connectClient, eventually, rawPeer, sleep, startTestRelay, type TestClient, type TestRelay } from "./harness.js";

let relay: TestRelay;
let teamA: CreatedTeam;
const clients: TestClient[] = [];

async function client(claims: Parameters<TestRelay["token"]>[0], peerId: string): Promise<TestClient> {
  const c = await connectClient(relay.service.syncUrl, relay.token(claims), peerId);
  clients.push(c);
  return c;
}

async function relayCatalog(): Promise<DocHandle<CatalogDoc>> {
  return relay.service.repo.find<CatalogDoc>(teamA.catalogUrl);
}

/** Writes an item on the device and waits until the relay holds it. */
async function writesThrough(device: TestClient, item: string): Promise<void> {
  const h = await device.repo.find<CatalogDoc>(teamA.catalogUrl);
  h.change((d) => {
    d.items[item] = { name: item };
  });
  const onRelay = await relayCatalog();
  await eventually(() => onRelay.doc().items[item] !== undefined, `${item} on the relay`, 15_000);
}

beforeAll(async () => {
  relay = await startTestRelay();
  teamA = await relay.service.teams.createTeam("team-a");
  await relay.service.teams.createTeam("team-b");
});

afterAll(async () => {
  for (const c of clients) await c.close();
  await relay?.close();
});

describe("peer identity", () => {
  it("a token of another team holding a device's peer id while the device is offline does not lock the device out", async () => {
    const peerId = "device-till-1-3f9a2c1b";
    const tillClaims = { sub: "ana", team: "team-a", role: "member" as const, device: "till-1" };
    const till = await client(tillClaims, peerId);
    await writesThrough(till, "before-offline");
    clients.splice(clients.indexOf(till), 1);
    await till.close();
    await eventually(() => relay.service.relay.sessionCount() === 0, "the till's session closed");

    const squatter = await rawPeer(relay.service.syncUrl, relay.token({ sub: "mallory", team: "team-b", role: "member", device: "m1" }), peerId);
    expect(squatter.received.map((m) => m.type)).toEqual(["peer"]);

    // The till comes back while the squatter stays connected: it joins and syncs (before, every
    // retry was closed with 4003 "peer id in use by another session").
    const back = await client(tillClaims, peerId);
    await writesThrough(back, "after-squat");
    expect(relay.logs.some((l) => l.msg === "closing connection" && l.code === 4003)).toBe(false);

    // The squatter is still connected and was sent nothing of the till's.
    await sleep(300);
    expect(squatter.ws.readyState).toBe(squatter.ws.OPEN);
    expect(squatter.received.map((m) => m.type)).toEqual(["peer"]);
    squatter.ws.close();
  });

  it("another team's token with the same user and device names does not replace a live device's session", async () => {
    const peerId = "device-till-2-77aa01cd";
    const device = await client({ sub: "bo", team: "team-a", role: "member", device: "till-2" }, peerId);
    const disconnects: string[] = [];
    device.repo.networkSubsystem.on("peer-disconnected", ({ peerId: p }) => disconnects.push(p));
    await writesThrough(device, "before-namesake");

    const namesake = await rawPeer(relay.service.syncUrl, relay.token({ sub: "bo", team: "team-b", role: "member", device: "till-2" }), peerId);
    expect(namesake.received.map((m) => m.type)).toEqual(["peer"]);
    await writesThrough(device, "after-namesake");
    expect(disconnects).toEqual([]);
    expect(namesake.received.map((m) => m.type)).toEqual(["peer"]);
    namesake.ws.close();
  });

  it("a team mate presenting a live device's peer id neither disconnects it nor receives its messages", async () => {
    const peerId = "olga-peer";
    const owner = await client({ sub: "olga", team: "team-a", role: "member", device: "o1" }, peerId);
    const disconnects: string[] = [];
    owner.repo.networkSubsystem.on("peer-disconnected", ({ peerId: p }) => disconnects.push(p));
    const thief = await rawPeer(relay.service.syncUrl, relay.token({ sub: "trudy", team: "team-a", role: "member", device: "t1" }), peerId);
    expect(thief.received.map((m) => m.type)).toEqual(["peer"]);

    await writesThrough(owner, "after-hijack");
    await sleep(300);
    expect(disconnects).toEqual([]);
    expect(thief.received.map((m) => m.type)).toEqual(["peer"]);
    thief.ws.close();
  });

  it("the same device reconnecting with its peer id replaces its old session (4003)", async () => {
    const token = relay.token({ sub: "cy", team: "team-a", role: "member", device: "till-3" });
    const old = await rawPeer(relay.service.syncUrl, token, "device-till-3-0001");
    const fresh = await rawPeer(relay.service.syncUrl, token, "device-till-3-0001");
    expect(fresh.received.map((m) => m.type)).toEqual(["peer"]);
    expect(await old.closed).toEqual({ code: 4003, reason: "replaced by a newer session of the same device" });
    expect(fresh.ws.readyState).toBe(fresh.ws.OPEN);
    fresh.ws.close();
  });
});
