/**
 * `/api/sync-status` shows a device `connected` only while a session of it lives: a record left
 * `connected: true` by a service that died mid-session is cleared when the service starts again,
 * and one no session confirms any more (its disconnect was never recorded) turns false after a
 * few missed heartbeats, while a device that stays connected stays `connected`.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Device } from "../../../client/device.js";
import { openDevice } from "../../../client/node.js";
import { activityCollection } from "../../../server/accounts/activity.js";
import { loadConfig } from "../../../server/config.js";
import { startService, type RunningService } from "../../../server/service.js";
import { freshDb, type TestDb } from "../../helpers/db.js";
import { eventually } from "../client/helpers.js";

const TEAM = "activity-shop";
let db: TestDb;
let dataDir: string;
let service: RunningService | undefined;
let device: Device | undefined;

/** `port`: the one of the service before, so the device finds the restarted service. */
async function start(port = 0): Promise<RunningService> {
  const config = loadConfig({ PORT: String(port), DATA_DIR: dataDir, RELAY_HEARTBEAT_MS: "200" });
  return startService({
    config,
    db: db.db,
    database: { uri: db.uri, kind: "external", server: "test", features: { transactions: false, changeStreams: false, indexedQueries: true }, stop: async () => {} },
    logger: pino({ level: "silent" }),
  });
}

async function connectedOf(s: RunningService): Promise<Record<string, boolean>> {
  const token = s.tokens.issue({ sub: "boss", team: TEAM, role: "admin" });
  const res = await fetch(`${s.url}/api/sync-status`, { headers: { authorization: `Bearer ${token}` } });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { devices: Array<{ device: string; connected: boolean }> };
  return Object.fromEntries(body.devices.map((d) => [d.device, d.connected]));
}

beforeAll(async () => {
  db = await freshDb("activity");
  dataDir = await mkdtemp(path.join(os.tmpdir(), "activity-test-"));
});

afterAll(async () => {
  await device?.close();
  await service?.close();
  await db?.close();
  await rm(dataDir, { recursive: true, force: true });
});

describe("sync-status connected", () => {
  it("is cleared when the service starts and kept only by heartbeats", async () => {
    service = await start();
    const team = await service.teams.createTeam(TEAM);
    device = await openDevice({
      serverUrl: service.url, token: service.tokens.issue({ sub: "clerk", team: TEAM, role: "member", device: "till-1" }),
      rootUrl: team.rootUrl, deviceId: "till-1", dataDir: path.join(dataDir, "till-1"), backoff: { baseMs: 100, maxMs: 500 },
    });
    await eventually(async () => (await connectedOf(service!))["till-1"] === true, "till-1 connected", 30_000);

    // What a service killed mid-session leaves behind: the record still says connected.
    device.goOffline();
    const port = service.port;
    await service.close();
    const activity = activityCollection(db.db);
    // The clean close records the disconnect (asynchronously): let it land before undoing it.
    await eventually(async () => (await activity.findOne({ _id: `${TEAM}:till-1` }))?.connected === false, "the recorded disconnect", 10_000);
    await activity.updateOne({ _id: `${TEAM}:till-1` }, { $set: { connected: true, connectedUntil: new Date(Date.now() + 3_600_000) } });
    service = await start(port);
    expect((await connectedOf(service))["till-1"]).toBe(false);

    // Back online: connected, and still so after many heartbeats.
    device.goOnline();
    await eventually(async () => (await connectedOf(service!))["till-1"] === true, "till-1 connected again", 30_000);
    await new Promise((r) => setTimeout(r, 1500));
    expect((await connectedOf(service))["till-1"]).toBe(true);

    // A disconnect that was never recorded: no session confirms the record, so it lapses.
    await activity.insertOne({ _id: `${TEAM}:till-2`, team: TEAM, device: "till-2", user: "clerk2", lastSeen: new Date(), connected: true, connectedUntil: new Date(Date.now() + 600) });
    await eventually(async () => (await connectedOf(service!))["till-2"] === false, "till-2 no longer connected", 10_000);
    expect((await connectedOf(service))["till-1"]).toBe(true);
  }, 120_000);
});
