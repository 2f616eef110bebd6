/**
 * Peer authentication against hostile peers, on real sockets: a fake listener a tablet dials
 * captures no token, no certificate and no document message; a listener refuses a peer of another
 * team, an expired certificate, a certificate presented without its key, and a handshake recorded
 * from an earlier session, and tells the refused side nothing about the team. A certificate is
 * never a token for the relay or the API. A pairing code pins the device a tablet links to.
 */
import type { AddressInfo } from "node:net";
import type { IncomingMessage } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket, { WebSocketServer } from "ws";
import { cbor } from "@automerge/automerge-repo";
import type { Device } from "../../../client/device.js";
import { openDevice } from "../../../client/node.js";
import { connectorHandshake, FrameQueue, REFUSED_CODE, type PeerCredentials, type PeerPolicy } from "../../../client/peer/handshake.js";
import { ephemeralKey } from "../../../client/peer/channel.js";
import { generateDeviceKey } from "../../../client/peer/keys.js";
import { handshake } from "../relay/harness.js";
import { certifiedDevice, createTeam, eventually, removeTmpDirs, startTestRelay, tmpDir, type TestRelay, type TestTeam } from "./helpers.js";

let relay: TestRelay;
let shop: TestTeam;
let rival: TestTeam;
let tabA: Device;
let tabB: Device;
let portA: number;
const refusedAtA: string[] = [];
const opened: Device[] = [];
const servers: WebSocketServer[] = [];

async function device(team: TestTeam, id: string): Promise<Device> {
  const d = await certifiedDevice(relay, team, id, { baseMs: 200, maxMs: 1000 });
  opened.push(d);
  d.goOffline();
  return d;
}

function policyFor(team: string): PeerPolicy {
  const t = relay.service.tokens;
  return { trust: { publicKeyPem: t.publicKeyPem, issuer: t.issuer, audience: t.audience }, team };
}

/** A test peer that speaks the handshake with whatever credentials it is given. */
async function dial(url: string, creds: PeerCredentials, policy: PeerPolicy): Promise<{ error?: string; close: { code: number; reason: string } }> {
  const ws = new WebSocket(url);
  ws.on("error", () => undefined);
  const queue = new FrameQueue(10_000);
  ws.on("message", (data, isBinary) => (isBinary ? queue.fail(new Error("binary")) : queue.push(data.toString())));
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.once("close", (code, reason) => {
    queue.fail(new Error(`closed ${code}`));
    resolve({ code, reason: reason.toString("utf8") });
  }));
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  let error: string | undefined;
  try {
    await connectorHandshake({ send: (t) => ws.send(t), receive: () => queue.receive() }, creds, policy);
  } catch (err) {
    error = err instanceof Error ? err.message : String(err);
  }
  ws.close();
  return { ...(error ? { error } : {}), close: await closed };
}

/** A plain WebSocket server that records what connects and what it is sent, and can answer. */
async function fakeListener(answer?: (ws: WebSocket, frame: string) => void): Promise<{ url: string; requests: IncomingMessage[]; frames: Array<{ binary: boolean; text: string }> }> {
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  servers.push(wss);
  await new Promise<void>((resolve) => wss.once("listening", () => resolve()));
  const requests: IncomingMessage[] = [];
  const frames: Array<{ binary: boolean; text: string }> = [];
  wss.on("connection", (ws, req) => {
    ws.on("error", () => undefined);
    requests.push(req);
    ws.on("message", (data: Buffer, isBinary) => {
      frames.push({ binary: isBinary, text: data.toString(isBinary ? "base64" : "utf8") });
      if (!isBinary) answer?.(ws, data.toString("utf8"));
    });
  });
  return { url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/`, requests, frames };
}

/**
 * A machine in the middle: relays every frame between a tablet and `upstream` (so the handshake
 * succeeds), records them, and can alter the next binary frame from the tablet.
 */
async function middleman(upstream: string): Promise<{ url: string; recorded: string[]; binary: Buffer[]; tamperNext(): void }> {
  const recorded: string[] = [];
  const binary: Buffer[] = [];
  let tamper = false;
  const proxy = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  servers.push(proxy);
  await new Promise<void>((resolve) => proxy.once("listening", () => resolve()));
  proxy.on("connection", (down) => {
    down.on("error", () => undefined);
    const up = new WebSocket(upstream);
    up.on("error", () => undefined);
    const early: Array<{ data: Buffer; isBinary: boolean }> = [];
    down.on("message", (data: Buffer, isBinary) => {
      if (!isBinary) recorded.push(data.toString("utf8"));
      else {
        binary.push(Buffer.from(data));
        if (tamper) {
          tamper = false;
          data = Buffer.from(data);
          data[data.length - 1] = (data[data.length - 1] ?? 0) ^ 0x01;
        }
      }
      if (up.readyState === WebSocket.OPEN) up.send(data, { binary: isBinary });
      else early.push({ data, isBinary });
    });
    up.on("open", () => {
      for (const m of early.splice(0)) up.send(m.data, { binary: m.isBinary });
    });
    up.on("message", (data: Buffer, isBinary) => {
      if (isBinary) binary.push(Buffer.from(data));
      if (down.readyState === WebSocket.OPEN) down.send(data, { binary: isBinary });
    });
    up.on("close", () => down.close());
    down.on("close", () => up.close());
  });
  return { url: `ws://127.0.0.1:${(proxy.address() as AddressInfo).port}/`, recorded, binary, tamperNext: () => (tamper = true) };
}

beforeAll(async () => {
  relay = await startTestRelay();
  shop = await createTeam(relay, "shop-pa");
  rival = await createTeam(relay, "rival-pa");
  tabA = await device(shop, "tab-a");
  tabB = await device(shop, "tab-b");
  tabA.on("peer-refused", (e) => refusedAtA.push(e.reason));
  portA = await tabA.listen(0);
}, 60_000);

afterAll(async () => {
  for (const d of opened) await d.close();
  for (const s of servers) s.close();
  await relay?.close();
  await removeTmpDirs();
});

describe("peer authentication", () => {
  it("a fake listener a tablet dials captures no token, no certificate and no document message", async () => {
    const fake = await fakeListener();
    const refused: string[] = [];
    tabB.on("peer-refused", (e) => e.address === fake.url && refused.push(e.reason));
    tabB.connectPeer(fake.url);
    await eventually(() => fake.requests.length >= 2 && refused.length >= 1, "two attempts at the fake listener, refused", 45_000);
    tabB.disconnectPeer(fake.url);

    const token = shop.token("tab-b");
    const certificate = tabB.peers.certificate?.certificate ?? "missing";
    for (const req of fake.requests) {
      expect(req.headers.authorization).toBeUndefined();
      expect(req.url).toBe("/");
      expect(JSON.stringify(req.headers)).not.toContain(token.split(".")[1]);
    }
    expect(fake.frames.length).toBeGreaterThan(0);
    for (const f of fake.frames) {
      expect(f.binary).toBe(false); // no automerge-repo message (CBOR, binary) ever went out
      const frame = JSON.parse(f.text) as Record<string, unknown>;
      expect(Object.keys(frame).sort()).toEqual(["ephemeral", "nonce", "type", "v"]);
      expect(frame.type).toBe("peer-hello");
      expect(f.text).not.toContain(token.split(".")[1]);
      expect(f.text).not.toContain(certificate.split(".")[1]);
    }
    expect(refused[0]).toMatch(/handshake not finished|closed/);
    expect(tabB.peerOnline(fake.url)).toBe(false);
  }, 60_000);

  it("a listener's answer recorded from another session is refused by the tablet, which shows nothing", async () => {
    // The fake listener asked tab-a's real listener once and replays that signed answer to tab-b.
    let recorded = "";
    const probe = new WebSocket(`ws://127.0.0.1:${portA}/`);
    probe.on("error", () => undefined);
    await new Promise<void>((resolve) => probe.once("open", () => resolve()));
    probe.send(JSON.stringify({ type: "peer-hello", v: 1, nonce: "A".repeat(43), ephemeral: (await ephemeralKey()).publicRaw }));
    await new Promise<void>((resolve) => probe.once("message", (data: Buffer) => {
      recorded = data.toString("utf8");
      resolve();
    }));
    probe.close();
    expect(JSON.parse(recorded).certificate).toBeTypeOf("string");

    const fake = await fakeListener((ws, frame) => {
      if ((JSON.parse(frame) as { type?: string }).type === "peer-hello") ws.send(recorded);
    });
    const refused: string[] = [];
    tabB.on("peer-refused", (e) => e.address === fake.url && refused.push(e.reason));
    tabB.connectPeer(fake.url);
    await eventually(() => refused.length >= 1, "tab-b refuses the replayed answer", 30_000);
    tabB.disconnectPeer(fake.url);
    expect(refused[0]).toMatch(/signature of device tab-a does not verify for this session/);
    expect(fake.frames.map((f) => (JSON.parse(f.text) as { type: string }).type).every((t) => t === "peer-hello")).toBe(true);
  }, 60_000);

  it("the listener refuses another team, an expired certificate, a certificate without its key, and a replayed answer", async () => {
    const url = `ws://127.0.0.1:${portA}/`;
    const tokens = relay.service.tokens;
    const own = await generateDeviceKey();

    // Another team's device, properly certified.
    await rival.enroll("rival-1");
    const rivalCert = tokens.certify({ sub: "clerk-rival-1", team: "rival-pa", role: "member", device: "rival-1" }, own.key.publicJwk).certificate;
    const otherTeam = await dial(url, { key: own.key, certificate: rivalCert }, policyFor("shop-pa"));
    // Expired yesterday.
    const expiredCert = tokens.certify({ sub: "clerk-x", team: "shop-pa", role: "member", device: "tab-x", exp: Math.floor(Date.now() / 1000) - 86_400 }, own.key.publicJwk).certificate;
    const expired = await dial(url, { key: own.key, certificate: expiredCert }, policyFor("shop-pa"));
    // tab-b's real certificate (any listener it dials sees it) with a key that is not tab-b's.
    const stolen = await dial(url, { key: own.key, certificate: tabB.peers.certificate!.certificate }, policyFor("shop-pa"));
    // A certificate signed by some other key than the service's.
    const forgedCert = tokens.certify({ sub: "clerk-y", team: "shop-pa", role: "member", device: "tab-y" }, own.key.publicJwk).certificate.replace(/\.[^.]+$/, `.${"A".repeat(86)}`);
    const forged = await dial(url, { key: own.key, certificate: forgedCert }, policyFor("shop-pa"));

    for (const r of [otherTeam, expired, stolen, forged]) {
      expect(r.error).toBeDefined();
      // What the refused side learns: a close code and "peer refused", nothing about the team.
      expect(r.close).toEqual({ code: REFUSED_CODE, reason: "peer refused" });
    }
    await eventually(() => refusedAtA.length >= 4, "tab-a logged four refusals", 10_000);
    const log = refusedAtA.join("\n");
    expect(log).toMatch(/certificate is for team rival-pa, not shop-pa/);
    expect(log).toMatch(/jwt expired/);
    expect(log).toMatch(/signature of device tab-b does not verify for this session/);
    expect(log).toMatch(/invalid signature/);
  }, 60_000);

  it("a tablet's proof recorded on the wire does not open another session", async () => {
    // A transparent proxy between tab-b and tab-a records tab-b's real handshake frames.
    const upstream = `ws://127.0.0.1:${portA}/`;
    const { url: proxyUrl, recorded } = await middleman(upstream);
    tabB.connectPeer(proxyUrl);
    await eventually(() => tabB.peerOnline(proxyUrl), "tab-b linked to tab-a through the proxy", 30_000);
    tabB.disconnectPeer(proxyUrl);
    const hello = recorded.find((f) => f.includes('"peer-hello"'))!;
    const auth = recorded.find((f) => f.includes('"peer-auth"'))!;
    expect(auth).toBeDefined();

    // Replay both recorded frames to tab-a's listener in a new session.
    const before = refusedAtA.length;
    const ws = new WebSocket(upstream);
    ws.on("error", () => undefined);
    const got: Array<{ binary: boolean }> = [];
    ws.on("message", (_d, isBinary) => got.push({ binary: isBinary }));
    const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.once("close", (code, reason) => resolve({ code, reason: reason.toString() })));
    await new Promise<void>((resolve) => ws.once("open", () => resolve()));
    ws.send(hello);
    await eventually(() => got.length >= 1, "tab-a's answer", 10_000);
    ws.send(auth);
    expect(await closed).toEqual({ code: REFUSED_CODE, reason: "peer refused" });
    expect(got.every((g) => !g.binary)).toBe(true);
    await eventually(() => refusedAtA.length > before, "tab-a logged the refusal", 10_000);
    expect(refusedAtA.at(-1)).toMatch(/signature of device tab-b does not verify for this session/);
  }, 60_000);

  it("a machine in the middle that relays the handshake can neither read nor alter the sync", async () => {
    const mitm = await middleman(`ws://127.0.0.1:${portA}/`);
    const statuses: string[] = [];
    tabB.on("peer", (e) => e.address === mitm.url && statuses.push(e.status.state === "online" ? "online" : e.status.reason));
    tabB.connectPeer(mitm.url);
    await eventually(() => tabB.peerOnline(mitm.url), "tab-b linked to tab-a through the middleman", 30_000);
    const sale = await tabB.recordSale({ lines: [{ item: `mitm-${globalThis.crypto.randomUUID()}`, quantity: 1, price: 700, name: "Sealed tea" }] });
    await eventually(() => tabA.entries().some((e) => e.id === sale.id), "tab-a holds tab-b's sale", 30_000);

    // Everything after the handshake is sealed: no frame the middleman saw is an automerge-repo message.
    expect(mitm.binary.length).toBeGreaterThan(0);
    for (const frame of mitm.binary) {
      let decoded: unknown;
      try {
        decoded = cbor.decode(new Uint8Array(frame));
      } catch {
        decoded = undefined;
      }
      expect(["join", "peer", "sync", "request", "doc-unavailable"]).not.toContain((decoded as { type?: unknown } | undefined)?.type);
      expect(frame.includes(Buffer.from(sale.id))).toBe(false);
    }

    // One altered frame from tab-b: tab-a drops the link rather than apply it, and says why.
    const before = refusedAtA.length;
    mitm.tamperNext();
    const second = await tabB.recordSale({ lines: [{ item: `mitm-${globalThis.crypto.randomUUID()}`, quantity: 1, price: 700, name: "Sealed tea" }] });
    await eventually(() => refusedAtA.length > before, "tab-a dropped the tampered link", 30_000);
    expect(refusedAtA.at(-1)).toMatch(/link with device tab-b dropped: a frame failed its integrity check/);
    await eventually(() => statuses.some((s) => s !== "online"), "tab-b saw the link go down", 30_000);
    // The next session starts a fresh channel: the sale still arrives, intact.
    await eventually(() => tabA.entries().some((e) => e.id === second.id), "tab-a holds the second sale after relinking", 45_000);
    tabB.disconnectPeer(mitm.url);
  }, 120_000);

  it("a stranger cannot make the listener buffer a large frame before proving anything", async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${portA}/`);
    ws.on("error", () => undefined);
    const closed = new Promise<number>((resolve) => ws.once("close", (code) => resolve(code)));
    await new Promise<void>((resolve) => ws.once("open", () => resolve()));
    ws.send("x".repeat(1024 * 1024));
    expect(await closed).toBe(1009); // "message too big", at 16 KiB rather than the 16 MiB sync limit
    // The listener still serves its team.
    const url = `ws://127.0.0.1:${portA}/`;
    tabB.connectPeer(url);
    await eventually(() => tabB.peerOnline(url), "tab-b still links to tab-a", 30_000);
    tabB.disconnectPeer(url);
  }, 60_000);

  it("a certificate opens neither the relay nor the API", async () => {
    const cert = tabB.peers.certificate!.certificate;
    const api = await fetch(`${relay.service.url}/api/items`, { headers: { authorization: `Bearer ${cert}` } });
    expect(api.status).toBe(401);
    expect((await handshake(relay.service.syncUrl, cert)).status).toBe(401);
  });

  it("the service certifies only an enrolled device's own key, with its own token", async () => {
    const post = (token: string, body: unknown): Promise<Response> =>
      fetch(`${relay.service.url}/api/devices/certificate`, {
        method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify(body),
      });
    const key = (await generateDeviceKey()).key.publicJwk;
    const notEnrolled = await post(shop.token("tab-unknown"), { publicKey: key });
    expect(notEnrolled.status).toBe(403);
    expect(((await notEnrolled.json()) as { error: { message: string } }).error.message).toBe("device tab-unknown is not enrolled for user clerk-tab-unknown in team shop-pa");
    const badKey = await post(shop.token("tab-a"), { publicKey: { kty: "EC", crv: "P-384", x: "a", y: "b" } });
    expect(badKey.status).toBe(400);
    expect(((await badKey.json()) as { error: { message: string } }).error.message).toBe("body.publicKey: public key must be an EC P-256 JWK");
    const noDevice = await post(relay.token({ sub: "clerk-tab-a", team: "shop-pa", role: "member" }), { publicKey: key });
    expect(noDevice.status).toBe(403);
    const ok = await post(shop.token("tab-a"), { publicKey: key });
    expect(ok.status).toBe(201);
  });

  it("an enrolled device online gets its certificate by itself, and keeps it across a restart", async () => {
    await shop.enroll("tab-auto");
    const dataDir = await tmpDir("tab-auto");
    const opts = {
      serverUrl: relay.service.url, token: shop.token("tab-auto"), rootUrl: shop.rootUrl, deviceId: "tab-auto", dataDir,
      publicKeyPem: relay.service.tokens.publicKeyPem,
    };
    const first = await openDevice(opts);
    opened.push(first);
    await eventually(() => first.peers.certificate !== undefined, "a certificate without asking", 30_000);
    const cert = first.peers.certificate!.certificate;
    const code = await first.peers.pairingCode();
    await first.close();
    const again = await openDevice({ ...opts, offline: true });
    opened.push(again);
    expect(again.peers.certificate?.certificate).toBe(cert);
    expect(await again.peers.pairingCode()).toBe(code);
  }, 60_000);

  it("a pairing code links only to the device it names", async () => {
    const code = await tabA.peers.pairingCode();
    expect(code).toMatch(/^[A-Z2-9]{4}-[A-Z2-9]{4}$/);
    const right = `ws://127.0.0.1:${portA}/#code=${code}`;
    tabB.connectPeer(right);
    await eventually(() => tabB.peerOnline(right), "tab-b linked to the paired tab-a", 30_000);
    tabB.disconnectPeer(right);

    const wrongCode = code === "ABCD-EFGH" ? "ABCD-EFGJ" : "ABCD-EFGH";
    const wrong = `ws://127.0.0.1:${portA}/`;
    const refused: string[] = [];
    tabB.on("peer-refused", (e) => e.address === wrong && refused.push(e.reason));
    tabB.connectPeer(wrong, wrongCode);
    await eventually(() => refused.length >= 1, "tab-b refuses a listener whose key is not the paired one", 30_000);
    tabB.disconnectPeer(wrong);
    expect(refused[0]).toBe(`device tab-a has key ${code}, not the paired ${wrongCode}`);
    expect(tabB.peerOnline(wrong)).toBe(false);
  }, 60_000);
});
