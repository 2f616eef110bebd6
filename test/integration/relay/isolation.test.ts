/**
 * Team isolation, handshake authentication, read-only documents and peer identity, seen from
 * real automerge-repo clients and raw protocol peers on 127.0.0.1.
 */
import { generateKeyPairSync, createHmac } from "node:crypto";
import { readFileSync } from "node:fs";
import jwt from "jsonwebtoken";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { next as A } from "@automerge/automerge";
import { generateAutomergeUrl, parseAutomergeUrl, type AutomergeUrl, type DocHandle, type DocumentId } from "@automerge/automerge-repo";
import type { CatalogDoc, LedgerSegmentDoc, StatusDoc, TeamRootDoc } from "../../../shared/docs.js";
import type { CreatedTeam } from "../../../server/relay/teams.js";
import { connectClient, eventually, handshake, rawPeer, sleep, startTestRelay, type TestClient, type TestRelay } from "./harness.js";

let relay: TestRelay;
let teamA: CreatedTeam;
let teamB: CreatedTeam;
const clients: TestClient[] = [];

async function client(claims: Parameters<TestRelay["token"]>[0], peerId?: string): Promise<TestClient> {
  const c = await connectClient(relay.service.syncUrl, relay.token(claims), peerId);
  clients.push(c);
  return c;
}

function docId(url: AutomergeUrl): DocumentId {
  return parseAutomergeUrl(url).documentId;
}

async function relayDoc<T>(url: AutomergeUrl): Promise<DocHandle<T>> {
  return relay.service.repo.find<T>(url);
}

beforeAll(async () => {
  relay = await startTestRelay();
  teamA = await relay.service.teams.createTeam("team-a");
  teamB = await relay.service.teams.createTeam("team-b");
  const catalogB = await relayDoc<CatalogDoc>(teamB.catalogUrl);
  catalogB.change((d) => {
    d.items["b-secret"] = { name: "team B only" };
  });
});

afterAll(async () => {
  for (const c of clients) await c.close();
  await relay?.close();
});

describe("teams", () => {
  it("creates root, registry, catalog and status, each registered to the team", async () => {
    const root = await relayDoc<{ catalog: string; status: string; registry: string; team: string }>(teamA.rootUrl);
    expect(root.doc()).toMatchObject({ type: "team-root", team: "team-a", catalog: teamA.catalogUrl, status: teamA.statusUrl });
    const catalog = await relayDoc<CatalogDoc>(teamA.catalogUrl);
    expect(catalog.doc()).toMatchObject({ items: {}, groups: {}, customers: {} });
    const regs = await relay.db.db.collection("documents").find({ team: "team-a" }).toArray();
    expect(regs.map((r) => r.kind).sort()).toEqual(["catalog", "segment-registry", "status", "team-root"]);
    expect(regs.find((r) => r.kind === "status")?.readOnly).toBe(true);
  });

  it("POST /api/teams with an admin token of that team returns the root URL; other tokens get 403", async () => {
    const admin = relay.token({ sub: "boss", team: "team-c", role: "admin" });
    const res = await fetch(`${relay.service.url}/api/teams`, {
      method: "POST",
      headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
      body: JSON.stringify({ team: "team-c" }),
    });
    expect(res.status).toBe(201);
    const body = (await res.json()) as { rootUrl: string };
    expect(body.rootUrl).toMatch(/^automerge:/);

    const member = relay.token({ sub: "m", team: "team-d", role: "member" });
    const denied = await fetch(`${relay.service.url}/api/teams`, {
      method: "POST",
      headers: { authorization: `Bearer ${member}`, "content-type": "application/json" },
      body: JSON.stringify({ team: "team-d" }),
    });
    expect(denied.status).toBe(403);
    const again = await fetch(`${relay.service.url}/api/teams`, {
      method: "POST",
      headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
      body: JSON.stringify({ team: "team-c" }),
    });
    expect(again.status).toBe(409);
    expect(((await again.json()) as { error: { message: string } }).error.message).toBe("team team-c exists");
  });
});

describe("two teams", () => {
  it("a member syncs its own team's catalog with another device", async () => {
    const a1 = await client({ sub: "alice", team: "team-a", role: "member", device: "a1" });
    const a2 = await client({ sub: "alan", team: "team-a", role: "member", device: "a2" });
    const h1 = await a1.repo.find<CatalogDoc>(teamA.catalogUrl);
    h1.change((d) => {
      d.items["i1"] = { name: "tea" };
    });
    const h2 = await a2.repo.find<CatalogDoc>(teamA.catalogUrl);
    await eventually(() => h2.doc().items["i1"] !== undefined, "item to reach the other device");
    expect(h2.doc().items["i1"]).toEqual({ name: "tea" });
  });

  it("find, request, sync, announce and ephemeral naming team B's document get nothing; B's document is unchanged", async () => {
    const catalogB = await relayDoc<CatalogDoc>(teamB.catalogUrl);
    const headsBefore = A.getHeads(catalogB.doc());
    const b1 = await client({ sub: "bob", team: "team-b", role: "member", device: "b1" });
    const bHandle = await b1.repo.find<CatalogDoc>(teamB.catalogUrl);
    const ephemeralSeen: unknown[] = [];
    bHandle.on("ephemeral-message", (m) => ephemeralSeen.push(m.message));

    // find
    const a = await client({ sub: "mallory", team: "team-a", role: "member", device: "m1" });
    await expect(a.repo.find(teamB.catalogUrl)).rejects.toThrow(/unavailable/);

    // request and sync messages, compared with the answer for a document that does not exist
    const raw = await rawPeer(relay.service.syncUrl, relay.token({ sub: "mallory", team: "team-a", role: "member", device: "m2" }), "raw-m2");
    const unknown = docId(generateAutomergeUrl());
    const probe = A.generateSyncMessage(A.init(), A.initSyncState())[1]!;
    raw.send({ type: "request", senderId: "raw-m2", targetId: raw.relayPeerId, documentId: docId(teamB.catalogUrl), data: probe });
    raw.send({ type: "request", senderId: "raw-m2", targetId: raw.relayPeerId, documentId: unknown, data: probe });
    const forB = await raw.waitFor((m) => m.documentId === docId(teamB.catalogUrl));
    const forUnknown = await raw.waitFor((m) => m.documentId === unknown);
    expect({ ...forB, documentId: "x" }).toEqual({ ...forUnknown, documentId: "x" });
    expect(forB.type).toBe("doc-unavailable");

    // a sync message carrying changes, and an ephemeral broadcast
    let forged = A.from({ items: { forged: { name: "by team A" } } });
    forged = A.change(forged, (d) => {
      (d.items as Record<string, unknown>)["more"] = 1;
    });
    const [, withChanges] = A.generateSyncMessage(forged, A.initSyncState());
    raw.send({ type: "sync", senderId: "raw-m2", targetId: raw.relayPeerId, documentId: docId(teamB.catalogUrl), data: withChanges! });
    raw.send({
      type: "ephemeral",
      senderId: "raw-m2",
      targetId: raw.relayPeerId,
      documentId: docId(teamB.catalogUrl),
      count: 1,
      sessionId: "s1",
      data: new Uint8Array([0xa1, 0x61, 0x78, 0x01]),
    });

    // announce: a Repo of team A that holds a document under B's id offers it to the relay
    const announcer = await client({ sub: "mallory", team: "team-a", role: "member", device: "m3" });
    announcer.repo.import(A.save(forged), { docId: docId(teamB.catalogUrl) });

    await sleep(1000);
    expect(A.getHeads(catalogB.doc())).toEqual(headsBefore);
    expect(catalogB.doc().items).toEqual({ "b-secret": { name: "team B only" } });
    expect(bHandle.doc().items["forged"]).toBeUndefined();
    expect(ephemeralSeen).toEqual([]);
    expect(raw.received.filter((m) => m.type === "sync")).toEqual([]);
  });

  it("a request for a document not there yet is answered when it arrives, to its own team only", async () => {
    const url = generateAutomergeUrl();
    const early = await client({ sub: "a-early", team: "team-a", role: "member", device: "a-early" });
    const outsider = await client({ sub: "b-curious", team: "team-b", role: "member", device: "b-curious" });
    const waitingA = await early.repo.find<LedgerSegmentDoc>(url, { allowableStates: ["ready", "unavailable", "requesting"] });
    const waitingB = await outsider.repo.find<LedgerSegmentDoc>(url, { allowableStates: ["ready", "unavailable", "requesting"] });
    await eventually(() => waitingA.inState(["unavailable"]) && waitingB.inState(["unavailable"]), "both told the document is unavailable");

    const till = await client({ sub: "a-till", team: "team-a", role: "member", device: "a-till" });
    const bytes = A.save(A.from<Record<string, unknown>>({ type: "ledger-segment", team: "team-a", device: "a-till", n: 0, createdAt: "2026-11-22T08:00:00.000Z", entries: { e1: { kind: "note" } } }));
    till.repo.import(bytes, { docId: docId(url) });

    await eventually(() => waitingA.isReady() && Object.hasOwn(waitingA.doc().entries, "e1"), "team A's earlier request answered");
    await sleep(1000);
    expect(waitingB.isReady()).toBe(false);
  });
});

describe("handshake", () => {
  const claims = { sub: "eve", team: "team-a", role: "member" as const };
  const b64 = (o: object): string => Buffer.from(JSON.stringify(o)).toString("base64url");

  it("refuses expired, unsigned, wrongly signed, HS256-with-public-key, team-less and garbled tokens with 401", async () => {
    const now = Math.floor(Date.now() / 1000);
    const other = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const payload = { ...claims, exp: now + 600, iss: "ledger-sync", aud: "ledger-sync" };
    const hsBody = `${b64({ alg: "HS256", typ: "JWT" })}.${b64(payload)}`;
    const hs256 = `${hsBody}.${createHmac("sha256", relay.service.tokens.publicKeyPem).update(hsBody).digest("base64url")}`;
    const cases: Record<string, string | undefined> = {
      expired: relay.token({ ...claims, exp: now - 10 }),
      "alg none": `${b64({ alg: "none", typ: "JWT" })}.${b64(payload)}.`,
      "wrong key": jwt.sign(payload, other.privateKey.export({ type: "pkcs8", format: "pem" }).toString(), { algorithm: "ES256" }),
      "HS256 with the public key": hs256,
      "missing team": jwt.sign({ sub: "eve", role: "member", exp: now + 600, iss: "ledger-sync", aud: "ledger-sync" }, readPrivateKey(), { algorithm: "ES256" }),
      garbled: "not.a.token",
      missing: undefined,
    };
    const results: Record<string, { status: number; body: string }> = {};
    for (const [name, token] of Object.entries(cases)) results[name] = await handshake(relay.service.syncUrl, token);
    for (const [name, r] of Object.entries(results)) expect(r.status, name).toBe(401);
    expect(results.expired!.body).toBe("token refused: jwt expired");
    expect(results["alg none"]!.body).toMatch(/token refused: (jwt signature is required|invalid algorithm)/);
    expect(results["wrong key"]!.body).toBe("token refused: invalid signature");
    expect(results["HS256 with the public key"]!.body).toBe("token refused: invalid algorithm");
    expect(results["missing team"]!.body).toBe("token refused: invalid token claims: team missing or malformed");
    expect(results.garbled!.body).toMatch(/^token refused: /);
    expect(relay.logs.some((l) => l.msg === "handshake refused" && l.reason === "token refused: jwt expired")).toBe(true);
    // a valid one passes
    expect((await handshake(relay.service.syncUrl, relay.token(claims))).status).toBe(101);
  });

  it("closes a session when its token expires (4001)", async () => {
    const short = relay.token({ ...claims, exp: Math.floor(Date.now() / 1000) + 2 });
    const raw = await rawPeer(relay.service.syncUrl, short, "short-lived");
    const closed = await raw.closed;
    expect(closed).toEqual({ code: 4001, reason: "token expired" });
  });
});

function readPrivateKey(): string {
  // The relay keeps its generated key in the data folder; tests sign a malformed token with it.
  return readFileSyncText(`${relay.dataDir}/keys/jwt-es256.key`);
}

function readFileSyncText(p: string): string {
  return readFileSync(p, "utf8");
}

describe("read-only documents", () => {
  it("an auditor reads the team's documents, but its changes never reach the relay", async () => {
    const writer = await client({ sub: "ann", team: "team-a", role: "member", device: "w1" });
    const wh = await writer.repo.find<CatalogDoc>(teamA.catalogUrl);
    wh.change((d) => {
      d.items["audited"] = { name: "visible to auditors" };
    });
    const auditor = await client({ sub: "audrey", team: "team-a", role: "auditor" });
    const ah = await auditor.repo.find<CatalogDoc>(teamA.catalogUrl);
    await eventually(() => ah.doc().items["audited"] !== undefined, "auditor to read the item");
    const status = await auditor.repo.find<StatusDoc>(teamA.statusUrl);
    expect(status.doc().type).toBe("status");

    ah.change((d) => {
      d.items["by-auditor"] = { name: "should not sync" };
    });
    await sleep(800);
    const relayCatalog = await relayDoc<CatalogDoc>(teamA.catalogUrl);
    expect(relayCatalog.doc().items["by-auditor"]).toBeUndefined();
    expect(wh.doc().items["by-auditor"]).toBeUndefined();
    // reading still works after the refused change
    wh.change((d) => {
      d.items["later"] = { name: "after" };
    });
    await eventually(() => ah.doc().items["later"] !== undefined, "auditor to keep reading");
    expect(relay.logs.some((l) => l.msg === "refused changes to a read-only document" && l.role === "auditor")).toBe(true);
  });

  it("a member cannot change the status document, but may carry another device's ledger segment", async () => {
    const member = await client({ sub: "mo", team: "team-a", role: "member", device: "d1" });
    const sh = await member.repo.find<StatusDoc>(teamA.statusUrl);
    sh.change((d) => {
      d.stock["i1"] = 1_000_000;
    });
    // a segment made by device d1 is registered to it on first sync
    const seg = member.repo.create<LedgerSegmentDoc>({ type: "ledger-segment", team: "team-a", device: "d1", n: 1, createdAt: "now", entries: {} });
    await eventually(async () => (await relay.db.db.collection("documents").findOne({ _id: seg.documentId as unknown as never })) !== null, "segment registration");
    const other = await client({ sub: "mo2", team: "team-a", role: "member", device: "d2" });
    const oh = await other.repo.find<LedgerSegmentDoc>(seg.url);
    // What a tablet does when it forwards a peer's segment it synced offline.
    oh.change((d) => {
      d.entries["forwarded"] = { kind: "sale" };
    });
    seg.change((d) => {
      d.entries["real"] = { kind: "sale" };
    });
    await eventually(async () => (await relayDoc<LedgerSegmentDoc>(seg.url)).doc().entries["real"] !== undefined, "owner's entry on the relay");
    await sleep(500);
    expect((await relayDoc<StatusDoc>(teamA.statusUrl)).doc().stock).toEqual({});
    await eventually(async () => (await relayDoc<LedgerSegmentDoc>(seg.url)).doc().entries["forwarded"] !== undefined, "forwarded entry on the relay");
    const rec = await relay.db.db.collection("documents").findOne({ _id: seg.documentId as unknown as never });
    expect(rec).toMatchObject({ team: "team-a", kind: "ledger-segment", owner: "mo/d1" });
  });

  it("an admin's change to its team root is refused: the root keeps its links and settings", async () => {
    const admin = await client({ sub: "root-admin", team: "team-a", role: "admin", device: "office" });
    const rh = await admin.repo.find<TeamRootDoc>(teamA.rootUrl);
    const relayRoot = await relayDoc<TeamRootDoc>(teamA.rootUrl);
    const before = A.getHeads(relayRoot.doc());
    // What a leaked id of team B's catalog would let an admin do if the root were writable.
    rh.change((d) => {
      d.catalog = teamB.catalogUrl;
      d.settings.oversell = "allow-negative";
    });
    await eventually(
      () => relay.logs.some((l) => l.msg === "refused changes to a read-only document" && l.role === "admin" && l.kind === "team-root"),
      "the relay to refuse the admin's root change",
    );
    await sleep(500);
    expect(A.getHeads(relayRoot.doc())).toEqual(before);
    expect(relayRoot.doc()).toMatchObject({ catalog: teamA.catalogUrl, settings: { oversell: "reject" } });
    // another device of the team still reads the untouched root
    const other = await client({ sub: "root-reader", team: "team-a", role: "member", device: "r1" });
    expect((await other.repo.find<TeamRootDoc>(teamA.rootUrl)).doc().catalog).toBe(teamA.catalogUrl);
  });
});

// Peer identity (join, peer-id reuse across identities and teams): peer-id.test.ts.
