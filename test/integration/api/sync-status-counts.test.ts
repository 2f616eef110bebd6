/**
 * `/api/sync-status` reads the counts the materializer keeps per segment: on a messy history
 * (duplicates within and across devices, invalid entries, a deferred payment, voids, rejections)
 * they must equal a scan of the journal and of every segment, also after the materializer was
 * killed with SIGKILL between a batch's projections and its counts, and after a row was damaged
 * (the self-check repairs it). Each team sees only its own devices.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CatalogDoc, LedgerSegmentDoc, SegmentRegistryDoc } from "../../../shared/docs.js";
import { collections, teamKey, type Collections } from "../../../server/materializer/collections.js";
import type { CreatedTeam } from "../../../server/relay/teams.js";
import { seedItems, writeMessyLedger } from "../materializer/crash-ledger.js";
import { Device, sale, type Shop } from "../materializer/harness.js";
import { spawnMaterializer, type MaterializerProcess } from "../materializer/process.js";
import { connectClient, eventually, startTestRelay, type TestClient, type TestRelay } from "../relay/harness.js";

const ENTRIES = 40;

interface Figures { device: string; entries: number | null; decided: number; deferred: number; rejected: number; quarantined: number; duplicates: number; undecided: number | null }
interface Status { devices: (Figures & { segments: number; duplicateEntries: { id: string; segments: string[] }[] })[]; materializer: { undecided: number | null; deferred: number; behind: number } }

let relay: TestRelay;
let c: Collections;
let teamA: CreatedTeam;
let teamB: CreatedTeam;
const devices: Device[] = [];
const clients: TestClient[] = [];
const running = new Set<MaterializerProcess>();

async function writeTeam(team: CreatedTeam, tills: number): Promise<Device[]> {
  const admin = await connectClient(relay.service.syncUrl, relay.token({ sub: "boss", team: team.team, role: "admin", device: "office" }));
  clients.push(admin);
  seedItems(await admin.repo.find<CatalogDoc>(team.catalogUrl), tills);
  const shop = { relay, team } as unknown as Shop;
  const made: Device[] = [];
  for (let dev = 0; dev < tills; dev++) {
    const device = new Device(shop, `${team.team}-dev-${dev}`);
    writeMessyLedger(device, dev, ENTRIES, 30);
    made.push(device);
    devices.push(device);
  }
  return made;
}

/** A device's second segment (`<device>/1`), registered like the first. */
async function secondSegment(device: Device, entries: Record<string, unknown>): Promise<void> {
  const team = device.shop.team;
  const seg = device.repo.create<LedgerSegmentDoc>({ type: "ledger-segment", team: team.team, device: device.id, n: 1, createdAt: new Date().toISOString(), entries: JSON.parse(JSON.stringify(entries)) as Record<string, unknown> });
  const registry = await device.repo.find<SegmentRegistryDoc>(team.registryUrl);
  registry.change((d) => {
    d.segments[`${device.id}/1`] = seg.url;
  });
}

/** What sync-status showed when it scanned: the journal, waiting entries and every segment, per device. */
async function scan(team: CreatedTeam): Promise<Figures[]> {
  const segments = Object.entries((await relay.service.repo.find<SegmentRegistryDoc>(team.registryUrl)).doc().segments);
  const records = await c.journal.find({ team: team.team }).toArray();
  const waiting = await c.deferred.find({ team: team.team }).toArray();
  const home = new Map<string, string>([...waiting.map((d) => [d.entryId, d.provenance.segment] as const), ...records.map((r) => [r.entryId, r.provenance.segment] as const)]);
  const rows = new Map<string, Figures>();
  for (const [key, url] of segments) {
    const device = key.slice(0, key.lastIndexOf("/"));
    const documentId = url.slice("automerge:".length);
    const ids = Object.keys((await relay.service.repo.find<LedgerSegmentDoc>(url)).doc().entries);
    const mine = records.filter((r) => r.provenance.segment === documentId);
    const row = rows.get(device) ?? { device, entries: 0, decided: 0, deferred: 0, rejected: 0, quarantined: 0, duplicates: 0, undecided: 0 };
    rows.set(device, {
      ...row,
      entries: row.entries! + ids.length,
      decided: row.decided + mine.length,
      deferred: row.deferred + waiting.filter((d) => d.provenance.segment === documentId).length,
      rejected: row.rejected + mine.filter((r) => r.status === "rejected").length,
      quarantined: row.quarantined + mine.filter((r) => r.status === "invalid").length,
      duplicates: row.duplicates + ids.filter((id) => home.has(id) && home.get(id) !== documentId).length,
    });
  }
  return [...rows.values()].sort((a, b) => (a.device < b.device ? -1 : 1));
}

async function status(team: CreatedTeam): Promise<Status> {
  const token = relay.token({ sub: "carol", team: team.team, role: "auditor" });
  const res = await fetch(`${relay.service.url}/api/sync-status`, { headers: { authorization: `Bearer ${token}` } });
  expect(res.status).toBe(200);
  return (await res.json()) as Status;
}

/** The devices with segments (the admin's client shows as a device without any). */
const figures = (s: Status): Figures[] =>
  s.devices.filter((d) => d.segments > 0).map(({ device, entries, decided, deferred, rejected, quarantined, duplicates, undecided }) => ({ device, entries, decided, deferred, rejected, quarantined, duplicates, undecided }));

/** Until the materializer has decided everything and sync-status agrees with the scan (which it then must). */
async function agreesWithScan(team: CreatedTeam, what: string): Promise<void> {
  let last: unknown;
  await eventually(async () => {
    const s = await status(team);
    const want = await scan(team);
    last = { got: figures(s), want };
    return s.materializer.undecided === 0 && s.materializer.behind === 0 && JSON.stringify(figures(s)) === JSON.stringify(want);
  }, `${what}: sync-status equals the scan`, 60_000).catch((err: unknown) => {
    throw new Error(`${String(err)}\n${JSON.stringify(last)}`);
  });
}

function materializer(env: Record<string, string> = {}): Promise<MaterializerProcess> {
  return spawnMaterializer(relay, { MATERIALIZER_INSTANCE: "counts", MATERIALIZER_MAX_BATCH: "40", ...env }).then((m) => {
    running.add(m);
    return m;
  });
}

beforeAll(async () => {
  relay = await startTestRelay();
  c = collections(relay.db.db);
  teamA = await relay.service.teams.createTeam("counts-a");
  teamB = await relay.service.teams.createTeam("counts-b");
  const [a0, a1] = await writeTeam(teamA, 2);
  await writeTeam(teamB, 1);
  // A payment whose invoice never arrives waits (deferred).
  a1!.write({ id: "waits", kind: "payment", invoice: "never-sold", amount: 100 });
  // A sale taken back (void), on stock delivered for it.
  a1!.write({ id: "stock-for-void", kind: "stock", item: "item-1-0", delta: 5, reason: "delivery", at: "2026-11-10T08:00:00.000Z" });
  a1!.write({ id: "voided-sale", ...sale("item-1-0", 1, 100, { paid: 100 }), at: "2026-11-10T09:00:00.000Z" });
  a1!.write({ id: "the-void", kind: "void", invoice: "voided-sale", reason: "returned", at: "2026-11-10T10:00:00.000Z" });
  for (const d of devices) await d.online();
  // Copies of decided entries in a second segment, from the device's own first one and from another
  // device's, beside a new entry and a malformed one.
  const own = a0!.segment.doc().entries;
  const other = a1!.segment.doc().entries;
  await secondSegment(a0!, {
    "e-0-1": own["e-0-1"], "e-0-2": own["e-0-2"], "e-1-3": other["e-1-3"], waits: other.waits,
    "late-delivery": { id: "late-delivery", kind: "stock", item: "item-0-0", delta: 2, reason: "delivery", at: "2026-11-20T08:00:00.000Z", device: a0!.id, user: a0!.user },
    "late-junk": { id: "late-junk", kind: "sale", lines: "none" },
  });
  for (const d of devices) {
    const onRelay = await relay.service.repo.find<LedgerSegmentDoc>(d.segment.url);
    await eventually(() => Object.keys(onRelay.doc().entries).length === Object.keys(d.segment.doc().entries).length, `${d.id} on the relay`, 30_000);
  }
}, 120_000);

afterAll(async () => {
  for (const m of running) await m.stop("SIGKILL");
  for (const d of devices) await d.close();
  for (const cl of clients) await cl.close();
  await relay?.close();
});

describe("sync-status counts", () => {
  it("equal a scan after a SIGKILL between a batch's projections and its counts, and after the self-check repairs a damaged row", async () => {
    const first = await materializer({ MATERIALIZER_PAUSE_AT: "before-counts:3" });
    await first.waitFor('"paused at a pause point"', 60_000);
    const journaled = await c.journal.countDocuments({ team: { $in: [teamA.team, teamB.team] } });
    await first.stop("SIGKILL");
    // The kill left the stored counts behind the journal.
    const rows = await c.segmentCounts.find({ team: { $in: [teamA.team, teamB.team] } }).toArray();
    expect(rows.reduce((n, r) => n + r.accepted + r.rejected + r.invalid, 0)).toBeLessThan(journaled);

    const second = await materializer({ MATERIALIZER_SELF_CHECK_MS: "1000" });
    await agreesWithScan(teamA, "after the kill (team a)");
    await agreesWithScan(teamB, "after the kill (team b)");

    const a = await status(teamA);
    const scanned = await scan(teamA);
    // The history is as messy as intended.
    // Four copies, whichever of each pair the materializer read first; named with the segments holding one.
    expect(a.devices.reduce((n, d) => n + d.duplicates, 0)).toBe(4);
    expect(a.devices.every((d) => d.undecided === 0)).toBe(true);
    const named = a.devices.flatMap((d) => d.duplicateEntries).find((d) => d.id === "e-1-3");
    expect([...(named?.segments ?? [])].sort()).toEqual([`${teamA.team}-dev-0/1`, `${teamA.team}-dev-1/0`]);
    expect(a.materializer.deferred).toBe(1);
    expect(scanned.reduce((s, d) => s + d.quarantined, 0)).toBeGreaterThan(1);
    expect(scanned.reduce((s, d) => s + d.rejected, 0)).toBeGreaterThan(1);
    expect((await c.journal.findOne({ team: teamA.team, entryId: "the-void" }))?.status).toBe("accepted");
    // Team isolation: each team's answer holds its own devices only.
    expect(a.devices.map((d) => d.device)).toEqual([`${teamA.team}-dev-0`, `${teamA.team}-dev-1`, "office"]);
    expect((await status(teamB)).devices.map((d) => d.device)).toEqual([`${teamB.team}-dev-0`, "office"]);

    // A row damaged behind the materializer's back: the next self-check puts it right.
    const seg = devices[1]!.segment.documentId;
    await c.segmentCounts.updateOne({ _id: teamKey(teamA.team, seg) }, { $set: { listed: 999, accepted: 0 } });
    expect(JSON.stringify(figures(await status(teamA)))).not.toBe(JSON.stringify(scanned));
    await second.waitFor('"self-check: repaired sync-status counts that differed from the journal"', 30_000);
    await agreesWithScan(teamA, "after the self-check");
    await second.stop("SIGTERM");
  }, 150_000);
});
