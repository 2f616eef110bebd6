/**
 * A team root pointed at another team's documents (what a careless or compromised writer of the
 * root would do; admins can no longer write it over the relay): the materializer, the gateway
 * and the reads refuse the foreign document, the other team's documents stay untouched, rows
 * an earlier version left behind are reported, `npm run rebuild` drops them, and admins change
 * settings through the API instead.
 */
import { execFile } from "node:child_process";
import path from "node:path";
import { Writable } from "node:stream";
import { promisify } from "node:util";
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pino } from "pino";
import { next as A } from "@automerge/automerge";
import { parseAutomergeUrl, type DocHandle } from "@automerge/automerge-repo";
import type { CatalogDoc, LedgerSegmentDoc, SegmentRegistryDoc, StatusDoc, TeamRootDoc } from "../../../shared/docs.js";
import { teamKey } from "../../../server/materializer/collections.js";
import { Materializer } from "../../../server/materializer/materializer.js";
import type { CreatedTeam } from "../../../server/relay/teams.js";
import { databaseInfo } from "../../helpers/db.js";
import { addItem, Device, eventually, sale, settled } from "../materializer/harness.js";
import { connectClient, sleep, type LogLine } from "../relay/harness.js";
import { startApiShop, type ApiShop } from "./harness.js";

const run = promisify(execFile);
const repoRoot = path.resolve(import.meta.dirname, "../../..");

let shop: ApiShop;
let teamB: CreatedTeam;
let rootA: DocHandle<TeamRootDoc>;
let materializer: Materializer | null = null;
const logs: LogLine[] = [];
const devices: Device[] = [];
/** Team A's entries written while its root named B's status: a delivery of 5 and a sale of 2. */
let undecided: string[] = [];

/** A materializer like the service's, logging into `logs`. */
async function startMaterializer(): Promise<Materializer> {
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString("utf8").split("\n")) if (line) logs.push(JSON.parse(line) as LogLine);
      cb();
    },
  });
  const m = new Materializer({
    db: shop.relay.db.db,
    client: shop.relay.db.client,
    features: databaseInfo().features,
    repo: shop.service.repo,
    logger: pino({ level: "info" }, sink),
    teamPollMs: 200,
  });
  await m.start();
  materializer = m;
  return m;
}

async function stopMaterializer(): Promise<void> {
  await materializer?.stop();
  materializer = null;
}

const refusals = (kind: string): LogLine[] =>
  logs.filter((l) => l.msg === "refused a linked document not registered to the team" && l.team === shop.team.team && l.kind === kind);

async function itemIds(): Promise<string[]> {
  const r = await shop.call<{ rows: { id: string }[] }>("GET", "/items?limit=500", { token: shop.member });
  expect(r.status, r.raw).toBe(200);
  return r.body.rows.map((row) => row.id).sort();
}

async function relayDoc<T>(url: CreatedTeam["rootUrl"]): Promise<DocHandle<T>> {
  return shop.relay.service.repo.find<T>(url);
}

beforeAll(async () => {
  shop = await startApiShop();
  teamB = await shop.relay.service.teams.createTeam(`b${randomUUID().slice(0, 8)}`);
  (await relayDoc<CatalogDoc>(teamB.catalogUrl)).change((d) => {
    d.items["b-secret"] = { id: "b-secret", name: "Team B only", price: 999, unit: "pcs", group: null, description: "", active: true };
  });
  await addItem(shop, "a-tea", "Tea", 300);
  const { c } = shop.materializer;
  await eventually(
    async () => (await c.items.countDocuments({ _id: { $in: [teamKey(shop.team.team, "a-tea"), teamKey(teamB.team, "b-secret")] } })) === 2,
    "both teams' catalogs projected",
    30_000,
  );
  // The harness's materializer stops here; each test starts one after changing the root, as a
  // service restart would.
  await shop.materializer.stop();
  rootA = await relayDoc<TeamRootDoc>(shop.team.rootUrl);
}, 120_000);

afterAll(async () => {
  await stopMaterializer();
  for (const d of devices) await d.close();
  await shop?.close();
});

describe("a team root linking another team's documents", () => {
  it("to B's catalog: the materializer refuses it, A's items never list B's, and the gateway writes nothing into B's catalog", async () => {
    rootA.change((d) => {
      d.catalog = teamB.catalogUrl;
    });
    await shop.relay.service.repo.flush([rootA.documentId]);
    const m = await startMaterializer();
    // B keeps materializing; a new B item reaches B's projections, and never A's.
    const catalogB = await relayDoc<CatalogDoc>(teamB.catalogUrl);
    catalogB.change((d) => {
      d.items["b-later"] = { id: "b-later", name: "Also B's", price: 100, unit: "pcs", group: null, description: "", active: true };
    });
    await eventually(async () => (await m.c.items.countDocuments({ _id: teamKey(teamB.team, "b-later") })) === 1, "B's new item projected for B", 30_000);
    await eventually(
      async () => refusals("catalog").length > 0 || (await itemIds()).some((id) => id.startsWith("b-")),
      "team A's start to refuse B's catalog (or to project it)",
      30_000,
    );
    expect(await itemIds()).toEqual(["a-tea"]);
    expect(refusals("catalog")[0]).toMatchObject({
      documentId: parseAutomergeUrl(teamB.catalogUrl).documentId,
      reason: `registered to team ${teamB.team}`,
    });
    expect((await m.metrics.foreignDocuments.get()).values.find((v) => v.labels.kind === "catalog")?.value).toBeGreaterThanOrEqual(1);

    // The classic gateway follows the same root: refused with a clear error, B's catalog unchanged.
    const headsB = A.getHeads(catalogB.doc());
    const r = await shop.call<{ error: { code: string; message: string } }>("POST", "/sync", {
      token: shop.member,
      body: { item: { create: [{ name: "Planted", price: 1, stock: 1 }] } },
    });
    expect(r.status, r.raw).toBe(500);
    expect(r.body.error).toEqual({ code: "foreign-document", message: `team ${shop.team.team}: its catalog link is refused (not a document of this team)` });
    expect(A.getHeads(catalogB.doc())).toEqual(headsB);
    expect(Object.keys(catalogB.doc().items).sort()).toEqual(["b-later", "b-secret"]);
    expect(shop.relay.logs.some((l) => l.msg === "refused a linked document not registered to the team" && l.kind === "catalog" && l.team === shop.team.team)).toBe(true);

    // Sync status follows the root's registry link: refused the same way.
    rootA.change((d) => {
      d.registry = teamB.registryUrl;
    });
    const st = await shop.call<{ error: { code: string; message: string } }>("GET", "/sync-status", { token: shop.auditor });
    expect(st.status, st.raw).toBe(500);
    expect(st.body.error).toEqual({ code: "foreign-document", message: `team ${shop.team.team}: its segment-registry link is refused (not a document of this team)` });
    rootA.change((d) => {
      d.registry = shop.team.registryUrl;
    });
  }, 120_000);

  it("to B's status: A's sequence and verdicts are not written into B's status document", async () => {
    await stopMaterializer();
    rootA.change((d) => {
      d.catalog = shop.team.catalogUrl;
      d.status = teamB.statusUrl;
    });
    await shop.relay.service.repo.flush([rootA.documentId]);
    const statusB = await relayDoc<StatusDoc>(teamB.statusUrl);
    const before = { heads: A.getHeads(statusB.doc()), seq: statusB.doc().seq, verdicts: Object.keys(statusB.doc().verdicts) };

    const till = new Device(shop, "till-a");
    devices.push(till);
    const stock = till.write({ kind: "stock", item: "a-tea", delta: 5, reason: "delivery" });
    const sold = till.write(sale("a-tea", 2, 300));
    await till.online();
    await startMaterializer();
    const changed = (): boolean => A.getHeads(statusB.doc()).join() !== before.heads.join();
    await eventually(() => refusals("status").length > 0 || changed(), "team A's start to refuse B's status (or to write it)", 30_000);
    // Team A stays stopped (its start is retried and refused) rather than publish anywhere.
    await sleep(1500);
    expect(A.getHeads(statusB.doc())).toEqual(before.heads);
    expect(refusals("status")[0]).toMatchObject({ documentId: parseAutomergeUrl(teamB.statusUrl).documentId, reason: `registered to team ${teamB.team}` });
    expect({ seq: statusB.doc().seq, verdicts: Object.keys(statusB.doc().verdicts) }).toEqual({ seq: before.seq, verdicts: before.verdicts });
    expect(await shop.materializer.c.journal.countDocuments({ team: shop.team.team, entryId: { $in: [stock, sold] } })).toBe(0);
    undecided = [stock, sold];
  }, 120_000);

  it("restored: rows and a verdicts link an earlier version left are reported at start (the link dropped), A's entries are decided, and the rebuild drops those rows", async () => {
    await stopMaterializer();
    rootA.change((d) => {
      d.status = shop.team.statusUrl;
    });
    await shop.relay.service.repo.flush([rootA.documentId]);
    // What the materializer wrote before links were checked, while A's root named B's catalog.
    const team = shop.team.team;
    const { c } = shop.materializer;
    await c.items.replaceOne(
      { _id: teamKey(team, "b-secret") },
      { team, id: "b-secret", name: "Team B only", price: 999, unit: "pcs", group: null, description: "", active: true, source: "catalog", updatedAt: "2026-11-27T10:00:00.000Z" },
      { upsert: true },
    );
    await c.customers.replaceOne({ _id: teamKey(team, "b-customer") }, { team, id: "b-customer", name: "B's customer", phone: "555", updatedAt: "2026-11-27T10:00:00.000Z" }, { upsert: true });
    expect(await itemIds()).toContain("b-secret");

    // A link to a document of B's in A's status, as earlier versions wrote into a victim's status.
    const statusA = await relayDoc<StatusDoc>(shop.team.statusUrl);
    const plantedSegment = "automerge:2bLrDHf7Dnm2GrpM3R7kTjZsXHPu";
    statusA.change((d) => {
      d.verdicts[plantedSegment] = teamB.catalogUrl;
      d.stock["b-widget"] = 42;
    });
    // The materializer reads through its own repo, a relay client: let the planted link reach it
    // first, as it would have been there long before a restart.
    const seen = await shop.service.repo.find<StatusDoc>(shop.team.statusUrl);
    await eventually(() => Object.hasOwn(seen.doc().verdicts, plantedSegment) && Object.hasOwn(seen.doc().stock, "b-widget"), "the planted link on the materializer's side", 30_000);

    const m = await startMaterializer();
    await settled(shop, undecided);
    expect(refusals("verdicts")[0]).toMatchObject({ documentId: parseAutomergeUrl(teamB.catalogUrl).documentId, reason: `registered to team ${teamB.team}` });
    await eventually(() => !Object.hasOwn(statusA.doc().verdicts, plantedSegment), "the foreign verdicts link dropped from A's status", 20_000);
    await eventually(() => JSON.stringify(statusA.doc().stock) === JSON.stringify({ "a-tea": 3 }), "A's status to hold A's stock only", 20_000);
    await eventually(async () => (await devices[0]!.verdict(undecided[1]!))?.status === "accepted", "A's sale accepted on the device", 30_000);
    // Reported at team start.
    const report = (): LogLine | undefined => logs.find((l) => l.msg === "projection rows not from the team's registered catalog: run `npm run rebuild` to recompute them" && l.team === team);
    await eventually(() => report() !== undefined, "the foreign rows reported", 30_000);
    expect(report()).toMatchObject({ items: 1, groups: 0, customers: 1, examples: ["b-secret", "b-customer"] });
    const gauge = (await m.metrics.foreignRows.get()).values.filter((v) => v.labels.team === team);
    expect(Object.fromEntries(gauge.map((v) => [v.labels.collection, v.value]))).toEqual({ items: 1, groups: 0, customers: 1 });

    await stopMaterializer();
    await shop.relay.service.repo.flush();
    const env = { ...process.env, MONGODB_URI: shop.relay.db.uri, MONGODB_DB: shop.relay.db.dbName, DATA_DIR: shop.relay.dataDir };
    const { stdout } = await run(process.execPath, ["--import", "tsx", "server/cli/rebuild.ts", "--team", team], { cwd: repoRoot, env });
    expect(stdout).toContain(`team ${team}: removing 1 item, 0 group and 1 customer rows not from its registered catalog ${parseAutomergeUrl(shop.team.catalogUrl).documentId}: b-secret, b-customer`);
    expect(await itemIds()).toEqual(["a-tea"]);
    expect(await c.items.findOne({ _id: teamKey(team, "a-tea") })).toMatchObject({ name: "Tea", price: 300, source: "catalog" });
    expect(await c.customers.countDocuments({ team })).toBe(0);
    expect(await c.stock.findOne({ _id: teamKey(team, "a-tea") })).toMatchObject({ level: 3 });
    // B's rows are B's own and stay.
    expect(await c.items.countDocuments({ team: teamB.team })).toBe(2);
  }, 180_000);
});

describe("team settings", () => {
  it("an admin changes them through PATCH /api/teams/:team/settings; the server writes the root and the materializer applies them", async () => {
    const team = shop.team.team;
    const path = `/teams/${team}/settings`;
    expect((await shop.call("PATCH", path, { token: shop.member, body: { oversell: "allow-negative" } })).status).toBe(403);
    const foreignAdmin = shop.relay.token({ sub: "boss", team: teamB.team, role: "admin" });
    expect((await shop.call("PATCH", path, { token: foreignAdmin, body: { oversell: "allow-negative" } })).status).toBe(403);
    const bad = await shop.call<{ error: { code: string; message: string } }>("PATCH", path, { token: shop.adminToken, body: { oversell: "sometimes" } });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toEqual({ code: "invalid-settings", message: "settings: oversell must be 'reject' or 'allow-negative'" });
    const unknown = await shop.call<{ error: { message: string } }>("PATCH", path, { token: shop.adminToken, body: { debug: true } });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.message).toBe('settings: unknown field "debug"');
    expect((await shop.call("PATCH", "/teams/no-such-team/settings", { token: shop.serviceToken, body: { oversell: "reject" } })).status).toBe(404);

    await startMaterializer();
    const ok = await shop.call("PATCH", path, { token: shop.adminToken, body: { oversell: "allow-negative" } });
    expect(ok.status, ok.raw).toBe(200);
    expect(ok.body).toEqual({ team, settings: { oversell: "allow-negative", deferWaitSeconds: 7 * 24 * 3600, closeAfterHours: null } });
    // Devices read it from the root, and so does the materializer (its peer is `shop.service`).
    for (const peer of [shop.admin, shop.service]) {
      const reader = await peer.repo.find<TeamRootDoc>(shop.team.rootUrl);
      await eventually(() => reader.doc().settings.oversell === "allow-negative", "the new setting on a peer", 20_000);
    }
    // The running materializer decides with it: a sale beyond any stock is accepted.
    const till = new Device(shop, "till-s");
    devices.push(till);
    const oversold = till.write(sale("a-tea", 10, 300));
    await till.online();
    await settled(shop, [oversold], 60_000);
    expect((await shop.materializer.c.journal.findOne({ team, entryId: oversold }))?.status).toBe("accepted");
  }, 120_000);
});

describe("the classic gateway's own segment", () => {
  it("a member naming team B's segment under the gateway's registry key: the gateway starts a segment of its own and B's is untouched", async () => {
    if (!materializer) await startMaterializer();
    const team = shop.team.team;
    // A segment of B's, this month's and empty: what the gateway would have appended to.
    const segB = shop.relay.service.repo.create<LedgerSegmentDoc>({ type: "ledger-segment", team: teamB.team, device: "b-till", n: 0, createdAt: new Date().toISOString(), entries: {} });
    await shop.relay.service.relay.registry.register({ _id: segB.documentId, team: teamB.team, kind: "ledger-segment", readOnly: false, owner: "bob/b-till", createdAt: new Date() });
    const headsB = A.getHeads(segB.doc());
    // The registry is member-writable: a member of A plants the link over the relay.
    const member = await connectClient(shop.relay.service.syncUrl, shop.member);
    try {
      const reg = await member.repo.find<SegmentRegistryDoc>(shop.team.registryUrl);
      reg.change((d) => {
        d.segments["gw-till-1/7"] = segB.url;
      });
      const relayReg = await relayDoc<SegmentRegistryDoc>(shop.team.registryUrl);
      await eventually(() => relayReg.doc().segments["gw-till-1/7"] === segB.url, "the planted key on the relay", 20_000);
    } finally {
      await member.close();
    }

    const r = await shop.call<{ success: boolean }>("POST", "/sync", {
      token: shop.member,
      body: { invoice: { create: [{ products: [{ itemName: "Scone", costPerUnit: 250, quantity: 1 }], paidAmount: 250 }] } },
    });
    expect(r.status, r.raw).toBe(200);
    expect(A.getHeads(segB.doc())).toEqual(headsB);
    expect(segB.doc().entries).toEqual({});
    const own = (await relayDoc<SegmentRegistryDoc>(shop.team.registryUrl)).doc().segments["gw-till-1/8"];
    expect(own).toBeDefined();
    expect(await shop.relay.service.relay.registry.lookup(parseAutomergeUrl(own!).documentId)).toMatchObject({ team, kind: "ledger-segment", owner: "~gateway/gw-till-1" });
    expect(shop.relay.logs.find((l) => l.msg === "refused a gateway segment link not registered to the team; starting a new segment")).toMatchObject({
      team, key: "gw-till-1/7", reason: `registered to team ${teamB.team}`,
    });
  }, 120_000);
});
