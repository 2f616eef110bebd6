/**
 * Issue 5: a device (client/ openDevice, real files) that recorded N sales offline comes back
 * online: time from goOnline() until the relay has acknowledged every entry (the device's own
 * pendingCount, which counts only what our relay reports saved). Beside it, the bare stack: a
 * plain Repo holding the same N entries in one document pushes it to a bare automerge-repo relay
 * (time until that relay reports our heads).
 *
 * The device's data is written once per run and copied for each repetition, together with a
 * snapshot of the relay's data folder taken after enrollment, so every repetition starts from the
 * same state: a relay that knows the team but none of the entries.
 */
import { cp, rm } from "node:fs/promises";
import type { DocHandle } from "@automerge/automerge-repo";
import { openDevice } from "../client/node.js";
import type { LedgerEntry } from "../shared/domain/index.js";
import { connect, offlineRepo, waitRelayHolds } from "./lib/client.js";
import type { Benchmark, BenchContext } from "./lib/context.js";
import { buildSegment, saleEntry } from "./lib/fixtures.js";
import type { LedgerSegmentDoc, SegmentRegistryDoc } from "../shared/docs.js";
import { progress, until } from "./lib/progress.js";
import { Collector } from "./lib/report.js";
import { benchDir, startBare, startOurs, type RelayProcess } from "./lib/servers.js";
import { percentile } from "./lib/stats.js";
import { probeConfigs, startWorkers } from "./lib/workers.js";
import type { ProbeResult } from "./client-worker.js";

const TEAM = "reconnect";
const DEVICE = "tablet-1";
/** Entries written through the device's own recordSale (the write-rate figure). */
const SAMPLE = 200;
/** Other peers of the team on the relay during the reconnect, each changing a document of its own. */
const PROBES = 4;
const PROBE_EVERY_MS = 100;

interface Timed {
  seconds: number;
  /** Per probe peer: its acknowledgement delays during the reconnect, ms. */
  probes: number[][];
}

/**
 * Runs `reconnect` while PROBES other peers (in processes of their own) each change a small
 * document every PROBE_EVERY_MS and time the relay's acknowledgement: how long a large reconnect
 * makes everyone else wait (the relay's event loop is one, whoever blocks it).
 */
async function withProbes(relay: RelayProcess, reconnect: () => Promise<number>): Promise<Timed> {
  const dials = Array.from({ length: PROBES }, (_, id) => ({ url: relay.dial({ sub: `probe-${id}`, team: TEAM, role: "member", device: `probe-${id}` }), id }));
  const workers = await startWorkers(probeConfigs(dials, TEAM, PROBE_EVERY_MS));
  try {
    const seconds = await reconnect();
    workers.send({ cmd: "stop" });
    const results = (await workers.results(60_000)) as unknown as ProbeResult[];
    return { seconds, probes: results.flatMap((r) => r.delays) };
  } finally {
    await workers.stop();
  }
}

function recordProbes(col: Collector, kind: "ours" | "bare", probes: number[][]): void {
  const record = kind === "ours" ? col.ours.bind(col) : col.baseline.bind(col);
  const worst = probes.map((d) => Math.max(0, ...d));
  const all = probes.flat();
  record(PROBE_WORST, Math.max(0, ...worst));
  record(PROBE_P99, percentile(all, 99));
  record(PROBE_SLOW, all.filter((d) => d > 100).length / Math.max(1, all.length));
  progress(`reconnect ${kind}: other peers' worst acknowledgement delay, per peer: ${worst.map((w) => `${Math.round(w)} ms`).join(", ")} (${all.length} changes)`);
}

const PROBE_WORST = "other peers during the reconnect: worst acknowledgement delay (max over peers)";
const PROBE_P99 = "other peers during the reconnect: acknowledgement delay p99";
const PROBE_SLOW = "other peers during the reconnect: changes acknowledged after > 100 ms";

interface Prepared {
  relayGolden: string;
  deviceGolden: string;
  dbName: string;
  rootUrl: string;
  entries: LedgerEntry[];
  writeSeconds: number;
}

async function prepare(ctx: BenchContext, n: number): Promise<Prepared> {
  const { name: dbName } = ctx.db.fresh("reconnect");
  const relay = await startOurs({ mongoUri: ctx.db.handle.uri, dbName, materializer: false });
  const deviceGolden = await benchDir("device");
  try {
    const team = await relay.createTeam(TEAM);
    const token = relay.token({ sub: "clerk", team: TEAM, role: "member", device: DEVICE });
    progress(`reconnect: enrolling ${DEVICE}`);
    const enrolled = await openDevice({ serverUrl: relay.httpUrl, token, deviceId: DEVICE, rootUrl: team.rootUrl, dataDir: deviceGolden });
    await enrolled.close();
    await relay.stop();
    const relayGolden = `${relay.dataDir}-golden`;
    await cp(relay.dataDir, relayGolden, { recursive: true });

    progress(`reconnect: ${DEVICE} records ${Math.min(SAMPLE, n)} sales offline through recordSale`);
    const device = await openDevice({ serverUrl: relay.httpUrl, token, deviceId: DEVICE, dataDir: deviceGolden, offline: true });
    let writeSeconds: number;
    try {
      const t0 = performance.now();
      for (let i = 0; i < Math.min(SAMPLE, n); i++) {
        await device.recordSale({ lines: [{ item: `bench-${globalThis.crypto.randomUUID()}`, quantity: 1, price: 1000, name: "Widget" }], paid: 1000 });
      }
      writeSeconds = (performance.now() - t0) / 1000;
      // The rest as full segments in the device's own storage, registered the way the device
      // registers them (recordSale runs at ~20/s on this machine: 10,000 would take minutes).
      const rest = n - Math.min(SAMPLE, n);
      progress(`reconnect: ${rest} more entries as ${Math.ceil(rest / 1000)} segments of the device`);
      const registry = await device.repo.find<SegmentRegistryDoc>(team.registryUrl);
      const start = Date.now() + 1000;
      for (let i = 0, seg = 1; i < rest; i += 1000, seg++) {
        const chunk = Array.from({ length: Math.min(1000, rest - i) }, (_, k) => saleEntry(DEVICE, "clerk", new Date(start + (i + k) * 10).toISOString()));
        const handle = device.repo.import<LedgerSegmentDoc>(buildSegment({ team: TEAM, device: DEVICE, n: seg, createdAt: chunk[0]!.at }, chunk));
        registry.change((d) => {
          d.segments[`${DEVICE}/${seg}`] = handle.url;
        });
      }
      await device.repo.flush();
    } finally {
      await device.close();
    }
    const reopened = await openDevice({ serverUrl: relay.httpUrl, token, deviceId: DEVICE, dataDir: deviceGolden, offline: true });
    // open() bounds its wait for own segments (10 s); on a loaded machine some load later.
    await until(() => reopened.ownEntries().length >= n, "the reopened device to load every own segment", 180_000, 250).catch(() => undefined);
    const entries = reopened.ownEntries().map((e) => e.entry);
    await reopened.close();
    if (entries.length !== n) throw new Error(`device holds ${entries.length} of ${n} entries`);
    return { relayGolden, deviceGolden, dbName, rootUrl: team.rootUrl, entries, writeSeconds };
  } finally {
    await relay.stop();
  }
}

async function oursOnce(ctx: BenchContext, p: Prepared, rep: number): Promise<Timed> {
  const dataDir = await benchDir(`reconnect-relay-${rep}`);
  const deviceDir = await benchDir(`reconnect-device-${rep}`);
  await cp(p.relayGolden, dataDir, { recursive: true });
  await cp(p.deviceGolden, deviceDir, { recursive: true });
  const relay = await startOurs({ mongoUri: ctx.db.handle.uri, dbName: p.dbName, materializer: false, dataDir });
  try {
    const token = relay.token({ sub: "clerk", team: TEAM, role: "member", device: DEVICE });
    const device = await openDevice({ serverUrl: relay.httpUrl, token, deviceId: DEVICE, dataDir: deviceDir, offline: true });
    try {
      await until(() => device.pendingCount() >= p.entries.length, "every own segment loaded", 180_000, 250).catch(() => undefined);
      if (device.pendingCount() !== p.entries.length) throw new Error(`device pending ${device.pendingCount()}, expected ${p.entries.length}`);
      return await withProbes(relay, async () => {
        const t0 = performance.now();
        device.goOnline();
        await device.whenSynced(300_000);
        return (performance.now() - t0) / 1000;
      });
    } finally {
      await device.close();
    }
  } finally {
    await relay.stop();
    await rm(deviceDir, { recursive: true, force: true });
  }
}

async function bareOnce(bytes: Uint8Array): Promise<Timed> {
  const relay = await startBare();
  try {
    const repo = offlineRepo("bare-tablet");
    const handle = repo.import<unknown>(bytes);
    return await withProbes(relay, async () => {
      const t0 = performance.now();
      const c = await connect(relay.dial({ sub: "x", team: TEAM, role: "member" }), "bare-tablet", repo);
      try {
        await waitRelayHolds(repo, [handle as DocHandle<unknown>], "the bare relay to hold the pushed document", 300_000);
        return (performance.now() - t0) / 1000;
      } finally {
        await c.close();
      }
    });
  } finally {
    await relay.stop();
  }
}

export const reconnectBench: Benchmark = {
  name: "reconnect",
  issue: 5,
  async run(ctx) {
    const n = ctx.sizes.reconnectEntries;
    const col = new Collector("reconnect");
    const metric = "offline device reconnects: until the relay holds every entry";
    col.define(metric, "s", "lower", {
      baselineName: "plain Repo, same entries in one document → bare relay",
      size: `${n} entries (device: ${Math.ceil(n / 1000)} segments of ≤1000)`,
    });
    col.define("device writes offline (recordSale, flushed each)", "entries/s", "higher", { size: `first ${Math.min(SAMPLE, n)} entries, once per run` });
    const probeSize = { baselineName: "bare automerge-repo relay", size: `${PROBES} peers × 1 change/${PROBE_EVERY_MS} ms, in processes of their own`, note: "goal: ≤ 100 ms" };
    col.define(PROBE_WORST, "ms", "lower", probeSize);
    col.define(PROBE_P99, "ms", "lower", probeSize);
    col.define(PROBE_SLOW, "fraction", "lower", probeSize);
    const p = await prepare(ctx, n);
    col.ours("device writes offline (recordSale, flushed each)", Math.min(SAMPLE, n) / p.writeSeconds);
    progress(`reconnect: building the bare stack's one-document copy of the same ${n} entries`);
    const bytes = buildSegment({ team: TEAM, device: DEVICE, n: 0, createdAt: p.entries[0]!.at }, p.entries);
    for (let rep = 0; rep < ctx.reps; rep++) {
      const order = rep % 2 === 0 ? ["ours", "bare"] : ["bare", "ours"];
      for (const kind of order) {
        progress(`reconnect rep ${rep + 1}/${ctx.reps} ${kind}`);
        if (kind === "ours") {
          const t = await oursOnce(ctx, p, rep);
          col.ours(metric, t.seconds);
          recordProbes(col, "ours", t.probes);
        } else {
          const t = await bareOnce(bytes);
          col.baseline(metric, t.seconds);
          recordProbes(col, "bare", t.probes);
        }
      }
    }
    await rm(p.deviceGolden, { recursive: true, force: true });
    await rm(p.relayGolden, { recursive: true, force: true });
    return col.rows();
  },
};
