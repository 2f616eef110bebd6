/**
 * `npx tsx bench/profile-batch.ts [N] [BATCH]`: where one materializer batch spends its time on
 * the bench's database. Runs `processBatch` (the materializer's batch context) over N entries of
 * the materializer benchmark's workload and counts, per collection and command, the round trips
 * and the wall time they were in flight (concurrent commands overlap, so the per-collection
 * times add up to more than the batch), beside the batch's own phases. Then `insertMany` of the
 * same journal records into a fresh collection, as the benchmark's baseline does.
 */
import { readdirSync, readFileSync } from "node:fs";
import type { Collection, Document } from "mongodb";
import { collections, ensureIndexes, type Collections } from "../server/materializer/collections.js";
import { processBatch, type BatchContext, type BatchEntry } from "../server/materializer/batch.js";
import { DEFAULT_SETTINGS } from "../shared/domain/index.js";
import { openBenchDatabase } from "./lib/database.js";
import { workload } from "./materializer.js";

const METHODS = ["insertMany", "insertOne", "bulkWrite", "find", "findOne", "replaceOne", "updateOne", "deleteMany", "countDocuments"] as const;

interface Tally {
  calls: number;
  ms: number;
}

/** Wraps each collection's commands so every call is counted and timed under `<collection>.<method>`. */
function instrument(c: Collections, tally: Map<string, Tally>): void {
  for (const [name, coll] of Object.entries(c) as [string, Collection<Document>][]) {
    for (const method of METHODS) {
      const original = (coll[method] as (...args: unknown[]) => unknown).bind(coll);
      const key = `${name}.${method}`;
      const count = (t0: number): void => {
        const t = tally.get(key) ?? { calls: 0, ms: 0 };
        t.calls += 1;
        t.ms += performance.now() - t0;
        tally.set(key, t);
      };
      (coll as unknown as Record<string, unknown>)[method] = (...args: unknown[]): unknown => {
        const t0 = performance.now();
        const out = original(...args);
        if (out instanceof Promise) return out.finally(() => count(t0));
        // find(): a cursor; timed when it is drained.
        const cursor = out as { toArray?: () => Promise<unknown>; next?: () => Promise<unknown> };
        if (cursor.toArray) {
          const toArray = cursor.toArray.bind(cursor);
          cursor.toArray = () => toArray().finally(() => count(t0));
        }
        return out;
      };
    }
  }
}

/**
 * CPU milliseconds used so far by this process and by the database server it started (the
 * embedded FerretDB, a child of this process): unlike wall time, hardly moved by other work on a
 * busy machine. Linux only (/proc); the database's share is 0 elsewhere or for an external one.
 */
function cpuMs(): { self: number; db: number } {
  const u = process.cpuUsage();
  let db = 0;
  try {
    for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
      let stat: string;
      try {
        stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      } catch {
        continue;
      }
      // Fields after the command name (which may hold spaces): state, ppid, … utime (14), stime (15).
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(f[1]) === process.pid) db += ((Number(f[11]) + Number(f[12])) * 1000) / 100;
    }
  } catch {
    // not Linux
  }
  return { self: (u.user + u.system) / 1000, db };
}

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? 2000);
  const size = Number(process.argv[3] ?? 100);
  const bench = await openBenchDatabase();
  try {
    const { db } = bench.fresh("profile");
    const c = collections(db);
    await ensureIndexes(c);
    const tally = new Map<string, Tally>();
    instrument(c, tally);
    const ctx: BatchContext = {
      c, transactions: false, heads: new Map(), decidedIds: new Map(), invoices: new Map(),
      // PROFILE_LANES=0: each batch's projections written before the next batch (no overlap).
      ...(process.env.PROFILE_LANES === "0" ? {} : { lanes: new Map() }),
      pointLookups: !bench.handle.features.indexedQueries,
    };
    const entries = workload(n);
    const phases: Record<string, number> = {};
    const c0 = cpuMs();
    const t0 = performance.now();
    for (let i = 0; i < entries.length; i += size) {
      const batch: BatchEntry[] = entries.slice(i, i + size).map((e) => ({
        key: e.id, raw: e, provenance: { segment: `seg-${e.device}`, device: e.device, change: null, actor: null },
      }));
      const out = await processBatch(ctx, "bench", batch, DEFAULT_SETTINGS, new Map(), new Date().toISOString());
      void out.projected.then(() => {
        for (const [k, v] of Object.entries(out.phases)) phases[k] = (phases[k] ?? 0) + v;
      });
    }
    await ctx.lanes?.get("bench")?.drain();
    const ours = performance.now() - t0;
    const c1 = cpuMs();
    const records: Record<string, unknown>[] = (await db.collection("journal").find({}).toArray()).map(({ _id, ...rest }) => ({ ...rest, _id: `raw:${String(_id)}` }));
    const raw = db.collection("raw_journal");
    const c2 = cpuMs();
    const r0 = performance.now();
    for (let i = 0; i < records.length; i += size) await raw.insertMany(records.slice(i, i + size), { ordered: true });
    const rawMs = performance.now() - r0;
    const c3 = cpuMs();

    console.log(`${n} entries, batches of ${size}: ${(ours / 1000).toFixed(2)} s, ${Math.round(n / (ours / 1000))} entries/s; raw insertMany ${(rawMs / 1000).toFixed(2)} s, ${Math.round(records.length / (rawMs / 1000))} records/s; ratio ${(rawMs / ours).toFixed(3)}x`);
    const per = (ms: number, count: number): string => (ms / count).toFixed(2);
    console.log(
      `CPU ms per entry: ours ${per(c1.self - c0.self, n)} (this process) + ${per(c1.db - c0.db, n)} (database); raw insertMany ${per(c3.self - c2.self, records.length)} + ${per(c3.db - c2.db, records.length)}; database CPU ratio raw/ours ${((c3.db - c2.db) / records.length / ((c1.db - c0.db) / n)).toFixed(3)}x`,
    );
    console.log("phases (ms, whole run):", JSON.stringify(Object.fromEntries(Object.entries(phases).map(([k, v]) => [k, Math.round(v)]))));
    console.log("per collection and command (calls, ms in flight, ms per call):");
    for (const [k, t] of [...tally].sort((a, b) => b[1].ms - a[1].ms)) {
      console.log(`  ${k.padEnd(28)} ${String(t.calls).padStart(6)} ${String(Math.round(t.ms)).padStart(8)} ${(t.ms / t.calls).toFixed(1).padStart(7)}`);
    }
  } finally {
    await bench.close();
  }
}

await main();
