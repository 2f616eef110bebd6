/**
 * Kill -9 of the materializer process at many random points of a run of thousands of entries,
 * restarting it each time: the final collections must equal those of an uninterrupted run of
 * the same ledger, document by document, with no entry lost or decided twice.
 *
 * Both runs materialize the same ledger written into two teams; each device sells only its own
 * items and collects only its own invoices, so the verdicts do not depend on how entries happen
 * to be cut into batches, and any difference is the crash's doing.
 */
import type { ChildProcess } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Document } from "mongodb";
import type { LedgerSegmentDoc } from "../../../shared/docs.js";
import { collections, JOURNAL_PROJECTIONS, type Collections } from "../../../server/materializer/collections.js";
import { connectClient, eventually, startTestRelay, type TestClient, type TestRelay } from "../relay/harness.js";
import { comparable, rng, seedItems, writeMessyLedger } from "./crash-ledger.js";
import { Device, type Shop } from "./harness.js";
import { spawnMaterializer } from "./process.js";
import type { CatalogDoc } from "../../../shared/docs.js";
import type { CreatedTeam } from "../../../server/relay/teams.js";

const DEVICES = Number(process.env.CRASH_DEVICES ?? 4);
const ENTRIES_PER_DEVICE = Number(process.env.CRASH_ENTRIES ?? 500);
const KILLS = Number(process.env.CRASH_KILLS ?? 50);

let relay: TestRelay;
let c: Collections;
const live = new Set<ChildProcess>();
const devices: Device[] = [];
const admins: TestClient[] = [];
let total = 0;

async function writeLedger(team: CreatedTeam): Promise<void> {
  const admin = await connectClient(relay.service.syncUrl, relay.token({ sub: "boss", team: team.team, role: "admin", device: "office" }));
  admins.push(admin);
  const catalog = await admin.repo.find<CatalogDoc>(team.catalogUrl);
  seedItems(catalog, DEVICES);
  // The shop harness only needs the relay and the team to write as a device.
  const shop = { relay, team } as unknown as Shop;
  for (let dev = 0; dev < DEVICES; dev++) {
    const device = new Device(shop, `dev-${dev}`);
    devices.push(device);
    writeMessyLedger(device, dev, ENTRIES_PER_DEVICE, 400);
    total += ENTRIES_PER_DEVICE;
    console.log(`[crash] ${team.team} ${device.id}: ${ENTRIES_PER_DEVICE} entries written`);
    await device.online();
    console.log(`[crash] ${team.team} ${device.id}: online`);
  }
  // Everything must be on the relay before any materializer looks.
  for (const d of devices.filter((x) => x.shop.team.team === team.team)) {
    const onRelay = await relay.service.repo.find<LedgerSegmentDoc>(d.segment.url);
    await eventually(() => Object.keys(onRelay.doc().entries ?? {}).length === ENTRIES_PER_DEVICE, `segment of ${d.id} on the relay`, 60_000);
  }
}

async function startMaterializer(team: string): Promise<ChildProcess> {
  const m = await spawnMaterializer(relay, {
    MATERIALIZER_TEAMS: team,
    // Every restart is the same instance: it takes its team's lease back at once.
    MATERIALIZER_INSTANCE: `crash-${team}`,
    MATERIALIZER_MAX_BATCH: "200",
  }, { verbose: Boolean(process.env.CRASH_VERBOSE) });
  live.add(m.proc);
  m.proc.once("exit", () => live.delete(m.proc));
  return m.proc;
}

async function complete(team: string): Promise<void> {
  await eventually(async () => {
    const n = await c.journal.countDocuments({ team });
    if (n < ENTRIES_PER_DEVICE * DEVICES) return false;
    const head = await c.journal.find({ team }).sort({ seq: -1 }).limit(1).next();
    return ((await c.teamState.findOne({ _id: team }))?.projectedSeq ?? 0) === head?.seq;
  }, `team ${team} fully materialized`, 180_000);
}

const stop = (p: ChildProcess, signal: NodeJS.Signals): Promise<void> =>
  new Promise((resolve) => {
    if (p.exitCode !== null || p.signalCode !== null) return resolve();
    p.once("exit", () => resolve());
    p.kill(signal);
  });

beforeAll(async () => {
  relay = await startTestRelay();
  c = collections(relay.db.db);
  const a = await relay.service.teams.createTeam("crash-a");
  const b = await relay.service.teams.createTeam("crash-b");
  await writeLedger(a);
  await writeLedger(b);
}, 300_000);

afterAll(async () => {
  for (const p of live) p.kill("SIGKILL");
  for (const d of devices) await d.close();
  for (const a of admins) await a.close();
  await relay.close();
});

describe("materializer crash safety", () => {
  it(`after ${KILLS} kill -9 at random points, the collections equal an uninterrupted run`, async () => {
    const uninterrupted = await startMaterializer("crash-a");
    await complete("crash-a");
    await stop(uninterrupted, "SIGTERM");

    const random = rng(42);
    let killedMidway = 0;
    for (let k = 0; k < KILLS; k++) {
      const p = await startMaterializer("crash-b");
      await new Promise((r) => setTimeout(r, 200 + random() * 2500));
      const before = await c.journal.countDocuments({ team: "crash-b" });
      await stop(p, "SIGKILL");
      if (before < ENTRIES_PER_DEVICE * DEVICES) killedMidway += 1;
    }
    const last = await startMaterializer("crash-b");
    await complete("crash-b");
    await stop(last, "SIGTERM");
    console.log(`[crash] ${KILLS} kills, ${killedMidway} before the journal was complete; ${total / 2} entries per team`);

    // Nothing lost, nothing twice: every entry has exactly one record and the sequence is gapless.
    const records = await c.journal.find({ team: "crash-b" }).sort({ seq: 1 }).toArray();
    expect(records).toHaveLength(DEVICES * ENTRIES_PER_DEVICE);
    expect(new Set(records.map((r) => r.entryId)).size).toBe(records.length);
    expect(records.map((r) => r.seq)).toEqual(records.map((_, i) => i + 1));
    expect(await c.deferred.countDocuments({ team: "crash-b" })).toBe(0);

    const expected = await comparable(c, "crash-a");
    const actual = await comparable(c, "crash-b");
    for (const name of Object.keys(expected)) {
      expect(actual[name]!.length, `${name} count`).toBe(expected[name]!.length);
      expect(actual[name], name).toEqual(expected[name]);
    }
    expect(expected.journal!.filter((r) => r.status === "rejected").length).toBeGreaterThan(10);
    expect(expected.journal!.filter((r) => r.status === "invalid").length).toBeGreaterThan(10);
  }, 600_000);
});
