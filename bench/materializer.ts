/**
 * Issue 6, one database:
 *  - throughput: N ledger entries (a shop's mix: deliveries, cash and credit sales, payments)
 *    decided, journaled (hash chain) and projected with `processBatch`, in batches of
 *    BATCH, beside a raw `insertMany` of the same number of journal-sized documents (the very
 *    journal records just written, into a fresh collection, same batch size);
 *  - latency: 20 devices each write a sale every second through our relay; time from the
 *    device's write to its verdict in MongoDB's journal, with the materializer as the process
 *    `npm start` runs.
 */
import type { Db } from "mongodb";
import { collections, ensureIndexes } from "../server/materializer/collections.js";
import { processBatch, type BatchContext, type BatchEntry } from "../server/materializer/batch.js";
import { DEFAULT_SETTINGS, type LedgerEntry } from "../shared/domain/index.js";
import type { Benchmark, BenchContext } from "./lib/context.js";
import { shopLedger } from "./lib/fixtures.js";
import { JournalWatch } from "./lib/journal-watch.js";
import { LightDevice, writeSalesSteadily } from "./lib/light-device.js";
import { progress, sleep, until } from "./lib/progress.js";
import { Collector } from "./lib/report.js";
import { startOurs } from "./lib/servers.js";
import { percentile } from "./lib/stats.js";

/** Entries per processBatch call (the materializer's batches are what arrived since the last one). */
const BATCH = 100;

/** 20 tills' ledgers (fixtures.ts shopLedger), interleaved as they arrive. */
export function workload(n: number): LedgerEntry[] {
  const per = Math.ceil(n / 20);
  const tills = Array.from({ length: 20 }, (_, d) => shopLedger(`dev-${d}`, per, Date.UTC(2026, 0, 5, 8) + d * 7));
  const out: LedgerEntry[] = [];
  for (let i = 0; i < per; i++) for (const till of tills) if (out.length < n && till[i]) out.push(till[i]!);
  return out;
}

async function throughputOnce(ctx: BenchContext, n: number, order: "ours-first" | "raw-first"): Promise<{ ours: number; raw: number; accepted: number }> {
  const { db } = ctx.db.fresh("mat");
  const c = collections(db);
  await ensureIndexes(c);
  const entries = workload(n);
  const team = "bench";
  // As the materializer process sets it up (server/materializer/materializer.ts).
  const batchContext: BatchContext = {
    c, transactions: ctx.db.handle.features.transactions, client: ctx.db.client,
    heads: new Map(), decidedIds: new Map(), invoices: new Map(), lanes: new Map(), pointLookups: !ctx.db.handle.features.indexedQueries,
  };
  const runOurs = async (): Promise<number> => {
    const t0 = performance.now();
    for (let i = 0; i < entries.length; i += BATCH) {
      const batch: BatchEntry[] = entries.slice(i, i + BATCH).map((e) => ({
        key: e.id, raw: e, provenance: { segment: `seg-${e.device}`, device: e.device, change: null, actor: null },
      }));
      await processBatch(batchContext, team, batch, DEFAULT_SETTINGS, new Map(), new Date().toISOString());
    }
    // Until every projection is written, not only the journal.
    await batchContext.lanes?.get(team)?.drain();
    return n / ((performance.now() - t0) / 1000);
  };
  const runRaw = async (records: Record<string, unknown>[]): Promise<number> => {
    const raw = db.collection("raw_journal");
    const t0 = performance.now();
    for (let i = 0; i < records.length; i += BATCH) await raw.insertMany(records.slice(i, i + BATCH), { ordered: true });
    return records.length / ((performance.now() - t0) / 1000);
  };
  // Journal-sized documents: the journal's own records (re-keyed), or for raw-first, records
  // of a throwaway run into another database so both orders insert the same shapes.
  let oursRate: number;
  let rawRate: number;
  if (order === "ours-first") {
    oursRate = await runOurs();
    rawRate = await runRaw(await journalCopies(db, n));
  } else {
    const { db: scratch } = ctx.db.fresh("mat_scratch");
    const sc = collections(scratch);
    await ensureIndexes(sc);
    for (let i = 0; i < entries.length; i += BATCH) {
      const batch: BatchEntry[] = entries.slice(i, i + BATCH).map((e) => ({ key: e.id, raw: e, provenance: { segment: "s", device: e.device, change: null, actor: null } }));
      await processBatch({ c: sc, transactions: false }, team, batch, DEFAULT_SETTINGS, new Map(), new Date().toISOString());
    }
    rawRate = await runRaw(await journalCopies(scratch, n));
    oursRate = await runOurs();
  }
  const accepted = await c.journal.countDocuments({ team, status: "accepted" });
  return { ours: oursRate, raw: rawRate, accepted };
}

async function journalCopies(db: Db, n: number): Promise<Record<string, unknown>[]> {
  const docs = await db.collection("journal").find({}).limit(n).toArray();
  return docs.map(({ _id, ...rest }) => ({ ...rest, _id: `raw:${String(_id)}` }));
}

async function latencyOnce(ctx: BenchContext, devices: number, seconds: number, rep: number): Promise<number[]> {
  const { name: dbName, db } = ctx.db.fresh("latency");
  const relay = await startOurs({ mongoUri: ctx.db.handle.uri, dbName, materializer: true });
  const all: LightDevice[] = [];
  const watch = new JournalWatch(db, "latency");
  try {
    const team = await relay.createTeam("latency");
    for (let i = 0; i < devices; i++) {
      const d = new LightDevice(relay, team, `lat-${rep}-${i}`);
      await d.online();
      d.addSegment();
      all.push(d);
    }
    // Let segment registration settle, so the first measured writes do not also pay for it.
    await sleep(2000);
    watch.start();
    const writtenAt = await writeSalesSteadily(all, 1000, seconds);
    await until(() => [...writtenAt.keys()].every((id) => watch.seenAt.has(id)), "every written entry in the journal", 120_000, 200).catch(() => undefined);
    const lat: number[] = [];
    for (const [id, t] of writtenAt) {
      const s = watch.seenAt.get(id);
      lat.push(s === undefined ? Number.POSITIVE_INFINITY : s - t);
    }
    return lat;
  } finally {
    watch.stop();
    await Promise.all(all.map((d) => d.close()));
    await relay.stop();
  }
}

export const materializerBench: Benchmark = {
  name: "materializer",
  issue: 6,
  async run(ctx) {
    const n = ctx.sizes.materializerEntries;
    const { latencyDevices: devices, latencySeconds: seconds } = ctx.sizes;
    const col = new Collector("materializer");
    const tput = "entries decided + journaled + projected per second";
    col.define(tput, "entries/s", "higher", { baselineName: "raw insertMany of journal-sized documents", size: `${n} entries, batches of ${BATCH}` });
    col.define("device write → verdict in MongoDB, p50", "ms", "lower", { size: `${devices} devices × 1 sale/s, ${seconds} s` });
    col.define("device write → verdict in MongoDB, p99", "ms", "lower", { size: `${devices} devices × 1 sale/s, ${seconds} s` });
    col.define("entries that reached the journal", "fraction", "higher", { size: `${devices} devices` });
    for (let rep = 0; rep < ctx.reps; rep++) {
      progress(`materializer rep ${rep + 1}/${ctx.reps}: processBatch over ${n} entries and insertMany of as many journal records`);
      const r = await throughputOnce(ctx, n, rep % 2 === 0 ? "ours-first" : "raw-first");
      col.ours(tput, r.ours);
      col.baseline(tput, r.raw);
      progress(`materializer rep ${rep + 1}/${ctx.reps}: ${devices} devices writing for ${seconds} s, verdict latency`);
      const lat = await latencyOnce(ctx, devices, seconds, rep);
      const reached = lat.filter((l) => Number.isFinite(l));
      col.ours("device write → verdict in MongoDB, p50", percentile(lat, 50));
      col.ours("device write → verdict in MongoDB, p99", percentile(lat, 99));
      col.ours("entries that reached the journal", reached.length / lat.length);
    }
    return col.rows();
  },
};
