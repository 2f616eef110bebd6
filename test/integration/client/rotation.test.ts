/**
 * Ten devices rotate segments concurrently while offline (by size, and one also by calendar
 * month); after they reconnect no segment is missing from the registry and every entry is on
 * the relay. A restarted device carries on in its current segment instead of starting over.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import type { Device } from "../../../client/device.js";
import { openDevice } from "../../../client/node.js";
import { createTeam, eventually, relayEntries, removeTmpDirs, startTestRelay, tmpDir, type TestRelay, type TestTeam } from "./helpers.js";

const DEVICES = 10;
const PER_SEGMENT = 5;
const ENTRIES = 23; // 5 segments per device: 4 full, 1 with 3 entries

let relay: TestRelay;
let team: TestTeam;
const opened: Device[] = [];

beforeAll(async () => {
  relay = await startTestRelay();
  team = await createTeam(relay, "shop-rotation");
});

afterAll(async () => {
  for (const d of opened) await d.close();
  await relay?.close();
  await removeTmpDirs();
});

it("loses no segment and no entry when ten devices rotate offline at once", async () => {
  let clock = new Date("2025-01-31T23:59:00.000Z").getTime();
  const dirs: string[] = [];
  const devices: Device[] = [];
  for (let i = 0; i < DEVICES; i++) {
    const id = `till-${i}`;
    const dir = await tmpDir(id);
    dirs.push(dir);
    const d = await openDevice({
      serverUrl: relay.service.url, token: team.token(id), rootUrl: team.rootUrl, deviceId: id, dataDir: dir,
      segmentMaxEntries: PER_SEGMENT, backoff: { baseMs: 100, maxMs: 1000 },
      // till-0 crosses into February half-way: a month boundary rotates its segment early.
      now: i === 0 ? () => new Date(clock) : () => new Date(),
    });
    d.goOffline();
    devices.push(d);
    opened.push(d);
  }

  const written = new Set<string>();
  await Promise.all(devices.map(async (d, i) => {
    for (let k = 0; k < ENTRIES; k++) {
      if (i === 0 && k === 12) clock = new Date("2025-02-01T00:01:00.000Z").getTime();
      const sale = await d.recordSale({ lines: [{ item: `rot-${globalThis.crypto.randomUUID()}`, quantity: 1, price: 100, name: "Bun" }] });
      written.add(sale.id);
    }
  }));
  expect(written.size).toBe(DEVICES * ENTRIES);
  // till-0: segments 0,1 full (10), segment 2 has 2 January entries, then February starts segment 3.
  expect(devices[0]!.currentSegment()?.n).toBe(5);
  expect(devices[1]!.currentSegment()).toMatchObject({ n: 4, size: 3 });

  // A restart keeps the current segment (derived from the registry in local storage).
  const restarted = devices[1]!;
  await restarted.close();
  const again = await openDevice({
    serverUrl: relay.service.url, token: team.token("till-1"), rootUrl: team.rootUrl, deviceId: "till-1", dataDir: dirs[1]!,
    segmentMaxEntries: PER_SEGMENT, offline: true, backoff: { baseMs: 100, maxMs: 1000 },
  });
  opened.push(again);
  devices[1] = again;
  expect(again.currentSegment()).toMatchObject({ n: 4, size: 3 });
  expect(again.ownEntries().length).toBe(ENTRIES);

  const started = Date.now();
  for (const d of devices) d.goOnline();
  await eventually(async () => {
    const held = await relayEntries(relay, team.registryUrl);
    return [...written].every((id) => held.entries.has(id));
  }, "every entry on the relay", 90_000, 500);
  const held = await relayEntries(relay, team.registryUrl);
  const expectedKeys = devices.flatMap((_, i) => Array.from({ length: i === 0 ? 6 : 5 }, (_x, n) => `till-${i}/${n}`));
  expect(held.segments.sort()).toEqual(expectedKeys.sort());
  console.log(`[client] ${DEVICES} devices, ${held.segments.length} segments, ${written.size} entries on the relay ${Date.now() - started} ms after reconnecting`);
  // Every device sees the whole registry once it has synced.
  await eventually(() => devices.every((d) => d.entries().length === written.size), "every device holds the team's ledger", 60_000, 500);
}, 170_000);
