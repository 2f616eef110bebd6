/**
 * Closed periods (issue 16) under SIGKILL: the materializer process is killed dead right after
 * a close is stored (its request not yet dropped), and right after late entries were journaled
 * (their projections not yet written). Each time the database holds a day closed
 * with everything it needs, or not closed; after a clean restart the closed day's summary is
 * what it was, the late entries are booked in the first open day, and the deep verification
 * finds everything consistent.
 */
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deepVerify } from "../../../server/audit/deep.js";
import { collections, teamKey, type Collections } from "../../../server/materializer/collections.js";
import type { CreatedTeam } from "../../../server/relay/teams.js";
import { connectClient, eventually, startTestRelay, type TestClient, type TestRelay } from "../relay/harness.js";
import { addItem, Device, sale, type Shop } from "./harness.js";

const repoRoot = path.resolve(import.meta.dirname, "../../..");
const TEAM = "periods-crash";
const CLOSED = "2026-11-20";
const at = (d: number, s: number): string => `2026-11-${d}T10:00:${String(s).padStart(2, "0")}.000Z`;

let relay: TestRelay;
let team: CreatedTeam;
let admin: TestClient;
let c: Collections;
let shop: Shop;
const devices: Device[] = [];
const live = new Set<ChildProcess>();

const pauses = new WeakMap<ChildProcess, Promise<void>>();

/** Resolves once the process stopped at its pause point. */
const paused = (p: ChildProcess): Promise<void> => pauses.get(p) ?? Promise.reject(new Error("no pause point armed"));

/**
 * The materializer process; resolves once it stopped at `pauseAt`, or (no pause point, or
 * `waitForPause` false) once it is ready.
 */
function materializer(pauseAt?: string, waitForPause = true): Promise<ChildProcess> {
  const proc = spawn(process.execPath, ["--import", "tsx", "server/materializer/main.ts"], {
    cwd: repoRoot,
    env: {
      ...process.env, RELAY_URL: relay.service.syncUrl, MONGODB_URI: relay.db.uri, MONGODB_DB: relay.db.dbName, DATA_DIR: relay.dataDir,
      MATERIALIZER_TEAMS: TEAM, MATERIALIZER_INSTANCE: "periods-crash", LOG_LEVEL: "info", MATERIALIZER_SUPERVISED: "1",
      ...(pauseAt ? { MATERIALIZER_PAUSE_AT: pauseAt } : {}),
    },
    stdio: ["pipe", "pipe", "pipe"],
  });
  live.add(proc);
  proc.once("exit", () => live.delete(proc));
  const awaited = pauseAt && waitForPause ? '"paused at a pause point"' : '"materializer ready"';
  let onPause = (): void => undefined;
  if (pauseAt) pauses.set(proc, new Promise((resolve) => (onPause = resolve)));
  return new Promise((resolve, reject) => {
    const tail: string[] = [];
    const timer = setTimeout(() => reject(new Error(`no ${awaited}:\n${tail.join("\n")}`)), 60_000);
    for (const s of [proc.stdout, proc.stderr]) {
      createInterface({ input: s! }).on("line", (line) => {
        tail.push(line.slice(0, 300));
        if (tail.length > 20) tail.shift();
        if (line.includes('"paused at a pause point"')) onPause();
        if (line.includes(awaited)) {
          clearTimeout(timer);
          resolve(proc);
        }
      });
    }
    proc.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`materializer exited (${code}):\n${tail.join("\n")}`));
    });
  });
}

const kill = (p: ChildProcess): Promise<void> =>
  new Promise((resolve) => {
    if (p.exitCode !== null || p.signalCode !== null) return resolve();
    p.once("exit", () => resolve());
    p.kill("SIGKILL");
  });

async function caughtUp(entries: number): Promise<void> {
  await eventually(async () => {
    const head = await c.journal.find({ team: TEAM }).sort({ seq: -1 }).limit(1).next();
    return head !== null && head.seq >= entries && ((await c.teamState.findOne({ _id: TEAM }))?.projectedSeq ?? 0) === head.seq;
  }, `${entries} records journaled and projected`, 60_000);
}

beforeAll(async () => {
  relay = await startTestRelay();
  c = collections(relay.db.db);
  team = await relay.service.teams.createTeam(TEAM);
  admin = await connectClient(relay.service.syncUrl, relay.token({ sub: "boss", team: TEAM, role: "admin", device: "office" }));
  shop = { relay, team, admin } as unknown as Shop;
  await addItem(shop, "tea", "Tea", 300);
  const a = new Device(shop, "till-a");
  devices.push(a);
  a.write({ kind: "stock", item: "tea", delta: 50, reason: "delivery", at: at(19, 0) });
  a.write({ ...sale("tea", 2, 300, { paid: 100 }), id: "open-20", at: at(20, 0) });
  a.write({ ...sale("tea", 1, 300), id: "open-21", at: at(21, 0) });
  await a.online();
}, 120_000);

afterAll(async () => {
  for (const p of live) p.kill("SIGKILL");
  for (const d of devices) await d.close();
  await admin?.close();
  await relay?.close();
});

describe("closing under SIGKILL", () => {
  it("a kill after the close is stored, and after late entries are journaled: closed and consistent, late entries booked after a restart", async () => {
    // Stops dead right after it stores the close, before it drops the request.
    let p = await materializer("after-close", false);
    await caughtUp(3);
    const closedDay = (await c.summaries.findOne({ _id: teamKey(TEAM, CLOSED) }))!;
    expect(closedDay).toMatchObject({ salesCount: 1, revenue: 600, paymentsReceived: 100, outstanding: 500 });
    await c.closeRequests.insertOne({ _id: teamKey(TEAM, CLOSED), team: TEAM, through: CLOSED, by: "alice", requestedAt: new Date().toISOString() });
    // Late entries: their batch begins with the close (and stops there).
    const b = new Device(shop, "till-b");
    devices.push(b);
    b.write({ ...sale("tea", 1, 300, { paid: 300 }), id: "late-sale", at: at(20, 10) });
    b.write({ kind: "payment", id: "pay-closed", invoice: "open-20", amount: 500, at: at(21, 11) });
    await b.online();
    await paused(p);
    await kill(p);
    const close = await c.closedPeriods.findOne({ team: TEAM });
    expect(close).toMatchObject({ through: CLOSED, seq: 3, closedBy: "alice", cause: "admin" });
    expect(close!.summaries.find((s) => s.day === CLOSED)).toMatchObject({ salesCount: 1, revenue: 600, paymentsReceived: 100, outstanding: 500 });
    expect(await c.closeRequests.countDocuments({ team: TEAM })).toBe(1);
    expect(await c.journal.countDocuments({ team: TEAM })).toBe(3);

    // Killed once the late entries are journaled, before they are projected.
    p = await materializer("after-journal");
    await kill(p);
    const late = await c.journal.findOne({ _id: teamKey(TEAM, "late-sale") });
    expect(late?.booking).toEqual({ late: true, day: "2026-11-21", closedThrough: CLOSED, adjustments: [] });
    expect(await c.closeRequests.countDocuments({ team: TEAM })).toBe(0);

    p = await materializer();
    await caughtUp(5);
    await kill(p);
    expect(await c.closedPeriods.countDocuments({ team: TEAM })).toBe(1);
    expect(await c.summaries.findOne({ _id: teamKey(TEAM, CLOSED) })).toEqual(closedDay);
    expect(await c.summaries.findOne({ _id: teamKey(TEAM, "2026-11-21") })).toMatchObject({ salesCount: 2, revenue: 600, paymentsReceived: 800, outstanding: -200 });
    const report = await deepVerify(c, relay.db.db, TEAM);
    expect({ problems: report.problems, differences: report.differences, closed: report.closedPeriods }).toEqual({ problems: [], differences: [], closed: [] });
  }, 240_000);
});
