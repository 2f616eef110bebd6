/**
 * Issue 8's scale figures, sized by parameters (the default run uses what fits the time budget;
 * `--full` asks for 100,000 entries and 200 devices):
 *  - a team with E ledger entries across 20 devices (a shop's mix: fixtures.ts shopLedger;
 *    segments of ≤1000, one change per entry):
 *    held by our relay (seeded as a push leaves it: see bigTeam), time for a fresh materializer
 *    process to decide and project all of them from scratch, the relay process's memory (RSS) at each step, a new device
 *    enrolling until it can sell (its working set, client/working-set.ts) against the cold pull of
 *    a new device holding every segment of the team (fetchHistory, what every new device did before);
 *  - C concurrently connected devices, each writing a sale every 5 s: latency of an entry
 *    reaching another device (one observer holding every segment) and reaching MongoDB.
 */
import { createHash } from "node:crypto";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { decode, encode } from "cbor-x";
import { openDevice } from "../client/node.js";
import { generateAutomergeUrl, parseAutomergeUrl, type AutomergeUrl, type DocHandle } from "@automerge/automerge-repo";
import type { Db } from "mongodb";
import { createDocumentRegistry } from "../server/relay/registry.js";
import { createFileStorage } from "../server/relay/storage.js";
import { identityOf } from "../shared/auth/claims.js";
import { waitRelayHolds } from "./lib/client.js";
import { PartialResult, type Benchmark, type BenchContext } from "./lib/context.js";
import { buildSegment, shopLedger } from "./lib/fixtures.js";
import { JournalWatch, projectedSeq } from "./lib/journal-watch.js";
import { LightDevice, writeSalesSteadily } from "./lib/light-device.js";
import { spawnTsx } from "./lib/procs.js";
import { progress, sleep, until } from "./lib/progress.js";
import { Collector } from "./lib/report.js";
import { benchDir, startOurs } from "./lib/servers.js";
import { percentile } from "./lib/stats.js";
import type { LedgerSegmentDoc } from "../shared/docs.js";

const SEGMENT = 1000;

/** Samples a process's RSS until stopped; keeps the peak. */
function rssSampler(read: () => number): { peak(): number; stop(): void } {
  let peak = read();
  const t = setInterval(() => {
    const v = read();
    if (Number.isFinite(v)) peak = Math.max(peak, v);
  }, 250);
  return { peak: () => peak, stop: () => clearInterval(t) };
}

/** The materializer's "batch decided" log lines summed: batches, time in them, and per phase. */
function batchPhases(logs: readonly Record<string, unknown>[]): string {
  let batches = 0;
  let ms = 0;
  const phases: Record<string, number> = {};
  for (const l of logs) {
    if (l.msg !== "batch decided") continue;
    batches++;
    ms += Number(l.ms ?? 0);
    for (const [k, v] of Object.entries((l.phases ?? {}) as Record<string, number>)) phases[k] = (phases[k] ?? 0) + v;
  }
  const parts = Object.entries(phases).map(([k, v]) => `${k} ${(v / 1000).toFixed(1)} s`);
  return `${batches} batches, ${(ms / 1000).toFixed(1)} s deciding and writing (${parts.join(", ")}); the rest is reading segments and publishing verdicts`;
}

/**
 * The big team's segments, per device. Building them costs ~2 ms per entry (Automerge), over 3
 * minutes at 100,000, so they are kept in the system's temp folder and reused by later runs of
 * the same size (the entries' content does not change what is measured).
 */
async function teamSegments(team: string, entries: number, devices: number): Promise<Uint8Array[][]> {
  const file = path.join(os.tmpdir(), "ledger-bench-cache", `scale-v1-${team}-${entries}-${devices}.cbor`);
  const cached = await readFile(file).then((b) => decode(b) as Uint8Array[][], () => undefined);
  if (cached?.length === devices) {
    progress(`scale: ${entries} entries for ${devices} devices from ${file}`);
    return cached;
  }
  const per = Math.ceil(entries / devices);
  progress(`scale: building ${entries} entries for ${devices} devices (segments of ≤${SEGMENT}; kept in ${file})`);
  const segments: Uint8Array[][] = [];
  for (let d = 0; d < devices; d++) {
    const ledger = shopLedger(`big-${d}`, Math.min(per, entries - d * per), Date.UTC(2026, 0, 5, 8) + d * 7);
    const mine: Uint8Array[] = [];
    for (let i = 0, n = 0; i < ledger.length; i += SEGMENT, n++) {
      const chunk = ledger.slice(i, i + SEGMENT);
      mine.push(buildSegment({ team, device: `big-${d}`, n, createdAt: chunk[0]!.at }, chunk));
    }
    segments.push(mine);
    if ((d + 1) % 5 === 0) progress(`scale: ${d + 1}/${devices} devices built`);
  }
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, encode(segments));
  return segments;
}

/**
 * Each device's segments into the relay's storage under new document ids, under the keys the
 * relay's Repo saves a snapshot with (`[documentId, "snapshot", hash]`), and into its document
 * registry as the relay records a segment a member brought. Returns each device's segment URLs.
 */
async function seedRelay(dataDir: string, db: Db, team: string, segments: readonly Uint8Array[][]): Promise<AutomergeUrl[][]> {
  const storage = createFileStorage(dataDir);
  const registry = createDocumentRegistry(db);
  return Promise.all(
    segments.map((mine, d) =>
      Promise.all(
        mine.map(async (bytes) => {
          const url = generateAutomergeUrl();
          const { documentId } = parseAutomergeUrl(url);
          await storage.save([documentId, "snapshot", createHash("sha256").update(bytes).digest("hex")], bytes);
          await registry.register({
            _id: documentId, team, kind: "ledger-segment", readOnly: false,
            owner: identityOf({ sub: `user-big-${d}`, device: `big-${d}` }), createdAt: new Date(),
          });
          return url;
        }),
      ),
    ),
  );
}

async function bigTeam(ctx: BenchContext, col: Collector, entries: number, devices: number): Promise<void> {
  const team = "bigteam";
  const { name: dbName, db } = ctx.db.fresh("scale");
  const relay = await startOurs({ mongoUri: ctx.db.handle.uri, dbName, materializer: false });
  const sampler = rssSampler(() => relay.rssMb());
  const all: LightDevice[] = [];
  let newDeviceDir: string | undefined;
  try {
    const created = await relay.createTeam(team);
    col.ours("relay RSS, team created, no entries yet", relay.rssMb());
    const segments = await teamSegments(team, entries, devices);

    // The relay is given the team as a push leaves it: each segment in its storage (the relay's
    // own file storage module), registered to the team with its device as owner (the relay's own
    // registry module), and listed in the segment registry by its device, online. A push of
    // 100,000 entries through the network costs minutes, stalled once (bench/PERFORMANCE.md) and
    // is measured apart at sizes that fit the budget (relay: push; reconnect).
    progress(`scale: ${entries} entries into the relay's storage and registry, then ${devices} devices list their segments`);
    const t0 = performance.now();
    const urls = await seedRelay(relay.dataDir, db, team, segments);
    col.ours("relay seeded with the team's segments (storage + registry)", (performance.now() - t0) / 1000);
    await Promise.all(
      urls.map(async (mine, d) => {
        const dev = new LightDevice(relay, created, `big-${d}`);
        await dev.online();
        all.push(dev);
        dev.listSegments(mine);
        await waitRelayHolds(dev.client.repo, dev.handles(), `device big-${d}'s registry entries on the relay`, 120_000);
      }),
    );
    col.ours("relay RSS with the team seeded", relay.rssMb());
    await Promise.all(all.map((d) => d.close()));
    all.length = 0;

    progress(`scale: a fresh materializer process decides and projects ${entries} entries`);
    const t1 = performance.now();
    const mat = await spawnTsx({
      script: "server/materializer/main.ts",
      env: { RELAY_URL: relay.syncUrl, MONGODB_URI: ctx.db.handle.uri, MONGODB_DB: dbName, DATA_DIR: relay.dataDir, LOG_LEVEL: "info", MATERIALIZER_MAX_BATCH: "1000" },
      ready: (l) => l.msg === "materializer ready",
    });
    try {
      let last = -1;
      await until(async () => {
        const seq = await projectedSeq(db, team);
        if (Math.floor(seq / 500) !== Math.floor(last / 500)) progress(`scale: projected ${seq}/${entries}`);
        last = seq;
        return seq >= entries;
      }, "every entry materialized", 1_800_000, 500);
      const seconds = (performance.now() - t1) / 1000;
      col.ours("materialize from scratch (process start → all projected)", seconds);
      col.ours("materialize from scratch, entries/s", entries / seconds);
      col.ours("relay RSS after materializing", relay.rssMb());
      progress(`scale: where the materializer's time went: ${batchPhases(mat.logs)}`);
    } finally {
      await mat.stop();
    }

    // A new device now (its working set: client/working-set.ts), then one that asks for every
    // segment, as every new device did before: the same relay, warm, one after the other.
    progress("scale: a new device enrolls and sells (working set)");
    const token = (device: string): string => relay.token({ sub: "newbie", team, role: "member", device });
    newDeviceDir = await benchDir("newdevice");
    const t2 = performance.now();
    const device = await openDevice({
      serverUrl: relay.httpUrl, token: token("new-tablet"), deviceId: "new-tablet", rootUrl: created.rootUrl, dataDir: newDeviceDir, enrollTimeoutMs: 600_000,
    });
    try {
      await device.recordSale({ lines: [{ item: "bench-new-device", quantity: 1, price: 100, name: "Tea" }], paid: 100 });
      col.ours("new device: enroll until it can sell", (performance.now() - t2) / 1000);
      progress(`scale: the new device enrolled and sold in ${((performance.now() - t2) / 1000).toFixed(1)} s`);
      await until(() => device.heldSegments().loading === 0, "the new device's working set", 900_000, 100);
      col.ours("new device: enroll until its working set is held", (performance.now() - t2) / 1000);
      const { held, registered } = device.heldSegments();
      col.ours("new device: segments held (of the team's)", held);
      col.ours("new device: entries held", device.heldEntryCount());
      progress(`scale: the new device holds ${held} of ${registered} segments, ${device.heldEntryCount()} entries`);
    } finally {
      await device.close();
    }

    progress("scale: cold pull of a new device (openDevice: enroll, then fetchHistory: every segment of the team)");
    const fullDir = await benchDir("newdevice-full");
    const t3 = performance.now();
    const full = await openDevice({
      serverUrl: relay.httpUrl, token: token("full-tablet"), deviceId: "full-tablet", rootUrl: created.rootUrl, dataDir: fullDir, enrollTimeoutMs: 600_000,
    });
    try {
      const history = full.fetchHistory({ timeoutMs: 900_000 });
      let shown = 0;
      await until(
        () => {
          const heldNow = full.heldEntryCount();
          if (heldNow >= shown + entries / 10) {
            shown = heldNow;
            progress(`scale: the new device holds ${heldNow}/${entries}`);
          }
          return heldNow >= entries;
        },
        "the new device to hold every entry",
        900_000,
        250,
      );
      const seconds = (performance.now() - t3) / 1000;
      col.ours("cold pull: new device holds every entry", seconds);
      col.baseline("new device: enroll until it can sell", seconds);
      await history;
      const parsed = full.entries().length;
      if (parsed < entries) throw new Error(`the new device holds ${entries} entries but parses ${parsed} of them`);
    } finally {
      await full.close();
      await rm(fullDir, { recursive: true, force: true });
    }
    col.ours("relay RSS after the cold pull", relay.rssMb());
    col.ours("relay RSS peak", sampler.peak());
  } catch (err) {
    for (const w of relay.warnings()) progress(`scale: relay said ${w}`);
    throw err;
  } finally {
    sampler.stop();
    await Promise.all(all.map((d) => d.close()));
    await relay.stop();
    if (newDeviceDir) await rm(newDeviceDir, { recursive: true, force: true });
  }
}

async function manyDevices(ctx: BenchContext, col: Collector, count: number, seconds: number): Promise<void> {
  const team = "crowd";
  const { name: dbName, db } = ctx.db.fresh("crowd");
  const relay = await startOurs({ mongoUri: ctx.db.handle.uri, dbName, materializer: true });
  const all: LightDevice[] = [];
  const watch = new JournalWatch(db, team, 100);
  let observer: LightDevice | undefined;
  try {
    const created = await relay.createTeam(team);
    progress(`scale: connecting ${count} devices`);
    const t0 = performance.now();
    for (let i = 0; i < count; i += 10) {
      await Promise.all(
        Array.from({ length: Math.min(10, count - i) }, async (_, k) => {
          const d = new LightDevice(relay, created, `crowd-${i + k}`);
          await d.online();
          d.addSegment();
          all.push(d);
        }),
      );
    }
    col.ours("connect + register a segment, all devices", (performance.now() - t0) / 1000);
    observer = new LightDevice(relay, created, "observer");
    await observer.online();
    const seenByObserver = new Map<string, number>();
    const watched = await Promise.all(all.map((d) => observer!.client.repo.find<LedgerSegmentDoc>(d.segments[0]!.url)));
    for (const h of watched) {
      const known = new Set<string>();
      h.on("change", ({ doc }: { doc: LedgerSegmentDoc }) => {
        const now = Date.now();
        for (const id of Object.keys(doc.entries)) {
          if (known.has(id)) continue;
          known.add(id);
          if (!seenByObserver.has(id)) seenByObserver.set(id, now);
        }
      });
    }
    await waitRelayHolds(all[0]!.client.repo, all.flatMap((d) => d.segments) as DocHandle<unknown>[], "segments on the relay", 120_000).catch(() => undefined);
    await sleep(2000);
    col.ours("relay RSS with every device connected", relay.rssMb());
    progress(`scale: ${count} devices each write a sale every 5 s for ${seconds} s`);
    watch.start();
    const writtenAt = await writeSalesSteadily(all, 5000, seconds);
    const allSeen = (): boolean => [...writtenAt.keys()].every((id) => seenByObserver.has(id) && watch.seenAt.has(id));
    await until(allSeen, "every entry at the observer and in the journal", 120_000, 200).catch(() => undefined);
    const toDevice: number[] = [];
    const toMongo: number[] = [];
    for (const [id, t] of writtenAt) {
      const o = seenByObserver.get(id);
      const m = watch.seenAt.get(id);
      toDevice.push(o === undefined ? Number.POSITIVE_INFINITY : o - t);
      toMongo.push(m === undefined ? Number.POSITIVE_INFINITY : m - t);
    }
    col.ours("change → another device, p50", percentile(toDevice, 50));
    col.ours("change → another device, p99", percentile(toDevice, 99));
    col.ours("change → verdict in MongoDB, p50", percentile(toMongo, 50));
    col.ours("change → verdict in MongoDB, p99", percentile(toMongo, 99));
    col.ours("entries written", writtenAt.size);
    col.ours("entries that reached the other device", toDevice.filter(Number.isFinite).length / Math.max(1, toDevice.length));
    col.ours("entries that reached MongoDB", toMongo.filter(Number.isFinite).length / Math.max(1, toMongo.length));
    col.ours("relay RSS at the end", relay.rssMb());
  } finally {
    watch.stop();
    await observer?.close();
    await Promise.all(all.map((d) => d.close()));
    await relay.stop();
  }
}

export const scaleBench: Benchmark = {
  name: "scale",
  issue: 8,
  async run(ctx) {
    const { scaleEntries: entries, scaleDevices: devices, concurrentDevices: count, concurrentSeconds: seconds } = ctx.sizes;
    const col = new Collector("scale");
    const big = `${entries} entries, ${devices} devices`;
    for (const [m, unit, better] of [
      ["relay RSS, team created, no entries yet", "MB", "lower"],
      ["relay seeded with the team's segments (storage + registry)", "s", "lower"],
      ["relay RSS with the team seeded", "MB", "lower"],
      ["materialize from scratch (process start → all projected)", "s", "lower"],
      ["materialize from scratch, entries/s", "entries/s", "higher"],
      ["relay RSS after materializing", "MB", "lower"],
      ["cold pull: new device holds every entry", "s", "lower"],
      ["new device: enroll until its working set is held", "s", "lower"],
      ["new device: segments held (of the team's)", "count", "lower"],
      ["new device: entries held", "count", "lower"],
      ["relay RSS after the cold pull", "MB", "lower"],
      ["relay RSS peak", "MB", "lower"],
    ] as const) col.define(m, unit, better, { size: big });
    col.define("new device: enroll until it can sell", "s", "lower", {
      size: big, baselineName: "before: enroll and hold every entry (fetchHistory)",
      note: "the team materialized first, so the status names open invoices and each segment's last day",
    });
    const crowd = `${count} devices × 1 sale/5 s, ${seconds} s`;
    for (const [m, unit, better] of [
      ["connect + register a segment, all devices", "s", "lower"],
      ["relay RSS with every device connected", "MB", "lower"],
      ["change → another device, p50", "ms", "lower"],
      ["change → another device, p99", "ms", "lower"],
      ["change → verdict in MongoDB, p50", "ms", "lower"],
      ["change → verdict in MongoDB, p99", "ms", "lower"],
      ["entries written", "count", "higher"],
      ["entries that reached the other device", "fraction", "higher"],
      ["entries that reached MongoDB", "fraction", "higher"],
      ["relay RSS at the end", "MB", "lower"],
    ] as const) col.define(m, unit, better, { size: crowd });
    // One repetition: these are sizes, not comparisons, and each costs minutes at full size.
    // Each part runs even if the other failed, and what was measured before a failure is kept.
    const failed: string[] = [];
    await bigTeam(ctx, col, entries, devices).catch((err: unknown) => failed.push(`big team: ${String(err)}`));
    await manyDevices(ctx, col, count, seconds).catch((err: unknown) => failed.push(`many devices: ${String(err)}`));
    if (failed.length > 0) throw new PartialResult(col.rows(), failed.join("; "));
    return col.rows();
  },
};
