/**
 * Issue 21: `/api/sync-status` at N entries, reading the counts the materializer keeps per
 * segment, beside the scan it replaced (bench/lib/scan-sync-status.ts) in the same run.
 *
 * Seeded directly, since materializing 100,000 entries takes many minutes: the service runs in
 * this process; each device's segment is built with Automerge and imported into the service's
 * Repo (so the relay holds it, as after devices synced), registered and listed in the team's
 * registry; the journal (with rejections, quarantine and waiting entries) is inserted into
 * MongoDB; the per-segment rows are computed by the materializer's own tally (SegmentTally).
 * Some entry ids are listed by two devices (duplicates). Ours is the whole HTTP request; the
 * scan is its counting part only, called in-process (no HTTP, no activity or health reads).
 */
import { rm } from "node:fs/promises";
import * as A from "@automerge/automerge";
import type { AutomergeUrl } from "@automerge/automerge-repo";
import { pino } from "pino";
import { loadConfig } from "../server/config.js";
import { collections, ensureIndexes, teamKey, type JournalRecord } from "../server/materializer/collections.js";
import { SegmentTally } from "../server/materializer/segment-counts.js";
import { upsertEach } from "../server/materializer/write-set.js";
import { startService } from "../server/service.js";
import type { LedgerSegmentDoc, SegmentRegistryDoc } from "../shared/docs.js";
import type { Benchmark } from "./lib/context.js";
import { progress } from "./lib/progress.js";
import { Collector } from "./lib/report.js";
import { scanSyncStatus } from "./lib/scan-sync-status.js";
import { benchDir } from "./lib/servers.js";

const DEVICES = 20;
/** Entry ids of device 0 that every other device lists too. */
const SHARED = 25;
/** Entries per device that wait for their invoice (deferred, not journaled). */
const WAITING = 10;
const REQUESTS = 5;

type Row = { entries: number | null; decided: number; duplicates: number; device: string };

export const statusBench: Benchmark = {
  name: "status",
  issue: 21,
  async run(ctx) {
    const entries = ctx.sizes.statusEntries;
    const perDevice = Math.floor(entries / DEVICES);
    const col = new Collector("status");
    const metric = "GET /api/sync-status, counts kept per segment (median of 5 requests)";
    col.define(metric, "s", "lower", {
      baselineName: "scan: $group per collection + every segment loaded",
      size: `${perDevice * DEVICES} entries, ${DEVICES} devices`,
      note: "seeded directly (segments imported into the relay, journal inserted); baseline in-process without HTTP",
    });
    const { name, db } = ctx.db.fresh("status");
    const dataDir = await benchDir("status");
    const config = loadConfig({ PORT: "0", DATA_DIR: dataDir, LOG_LEVEL: "warn", MONGODB_URI: ctx.db.handle.uri, MONGODB_DB: name });
    const service = await startService({ config, db, database: { ...ctx.db.handle, stop: async () => {} }, logger: pino({ level: "warn" }) });
    try {
      const c = collections(db);
      await ensureIndexes(c);
      const team = await service.teams.createTeam("bench");
      const registry = await service.repo.find<SegmentRegistryDoc>(team.registryUrl);
      const tally = new SegmentTally();
      const segments: { device: string; url: AutomergeUrl; documentId: string; ids: string[] }[] = [];
      const now = new Date().toISOString();
      let seq = 0;
      for (let d = 0; d < DEVICES; d++) {
        const device = `till-${d}`;
        const own = Array.from({ length: perDevice }, (_, i) => `e-${d}-${i}`);
        const ids = d === 0 ? own : [...own, ...Array.from({ length: SHARED }, (_, i) => `e-0-${i}`)];
        const body: Record<string, unknown> = {};
        for (const id of ids) body[id] = { id, kind: "stock", item: `item-${id.length % 50}`, delta: 1, reason: "delivery", at: now, device, user: `u-${d}` };
        const handle = service.repo.import<LedgerSegmentDoc>(A.save(A.from({ type: "ledger-segment", team: team.team, device, n: 0, createdAt: now, entries: body } as unknown as Record<string, unknown>)));
        await service.teams.registerDocument(team.team, handle.documentId, "ledger-segment", device);
        registry.change((r) => {
          r.segments[`${device}/0`] = handle.url;
        });
        segments.push({ device, url: handle.url, documentId: handle.documentId, ids });
        // The journal: own entries decided from this segment (a few rejected or invalid), the last ones waiting.
        const records: JournalRecord[] = [];
        for (const id of own.slice(0, perDevice - WAITING)) {
          const n = ++seq;
          const status = n % 50 === 0 ? "rejected" : n % 97 === 0 ? "invalid" : "accepted";
          records.push({
            _id: teamKey(team.team, id), team: team.team, seq: n, entryId: id, kind: "stock", status, reason: status === "accepted" ? null : "bench", flags: [],
            hash: "", entry: null, effects: [], provenance: { segment: handle.documentId, device, change: null, actor: null }, decidedAt: now, prevHash: "", recordHash: "",
          });
          tally.record(id, status, handle.documentId);
        }
        for (let i = 0; i < records.length; i += 2000) await c.journal.insertMany(records.slice(i, i + 2000), { ordered: false });
        const rejected = records.filter((r) => r.status === "rejected");
        if (rejected.length) await c.rejections.insertMany(rejected.map((r) => ({ _id: r._id, team: team.team, entryId: r.entryId, kind: r.kind, reason: "bench", seq: r.seq, at: now, device, segment: handle.documentId })));
        const invalid = records.filter((r) => r.status === "invalid");
        if (invalid.length) await c.quarantine.insertMany(invalid.map((r) => ({ _id: r._id, team: team.team, entryId: r.entryId, reason: "bench", seq: r.seq, segment: handle.documentId, decidedAt: now })));
        const waiting = own.slice(perDevice - WAITING);
        await c.deferred.insertMany(waiting.map((id) => ({
          _id: teamKey(team.team, id), team: team.team, entryId: id, entry: { id, kind: "payment", invoice: "x", amount: 1, at: now, device, user: `u-${d}` } as never,
          hash: "", since: now, provenance: { segment: handle.documentId, device, change: null, actor: null },
        })));
        for (const id of waiting) tally.defer(id, handle.documentId);
        progress(`status: seeded ${device} (${seq} journal records)`);
      }
      await c.teamState.updateOne({ _id: team.team }, { $set: { projectedSeq: seq, updatedAt: now } }, { upsert: true });
      await c.journalHeads.updateOne({ _id: team.team }, { $set: { seq, decidedAt: now } }, { upsert: true });
      await upsertEach(c.segmentCounts, segments.map((s) => tally.row(team.team, s.documentId, s.device, s.ids, A.getHeads(service.repo.handles[s.documentId as never]!.doc() as A.Doc<unknown>), now)));

      const token = service.tokens.issue({ sub: "bench-auditor", team: team.team, role: "auditor" });
      const registered = Object.entries(registry.doc().segments) as [string, AutomergeUrl][];
      const get = async (): Promise<Row[]> => {
        const res = await fetch(`${service.url}/api/sync-status`, { headers: { authorization: `Bearer ${token}` } });
        if (res.status !== 200) throw new Error(`sync-status answered ${res.status}: ${await res.text()}`);
        return ((await res.json()) as { devices: Row[] }).devices;
      };
      const timed = async <T>(fn: () => Promise<T>): Promise<[number, T]> => {
        const t0 = performance.now();
        const out = await fn();
        return [(performance.now() - t0) / 1000, out];
      };
      for (let rep = 0; rep < ctx.reps; rep++) {
        progress(`status rep ${rep + 1}/${ctx.reps}: ${REQUESTS} requests, then the scan`);
        const times: number[] = [];
        let answer: Row[] = [];
        for (let i = 0; i < REQUESTS; i++) {
          const [s, rows] = await timed(get);
          times.push(s);
          answer = rows;
        }
        col.ours(metric, times.sort((a, b) => a - b)[Math.floor(times.length / 2)]!);
        const [scanS, scanned] = await timed(() => scanSyncStatus(c, service.repo, team.team, registered));
        col.baseline(metric, scanS);
        // Both must tell the same story.
        for (const r of answer) {
          const s = scanned.get(r.device);
          if (s && (s.entries !== r.entries || s.decided !== r.decided || s.duplicates !== r.duplicates)) {
            throw new Error(`status: ${r.device} counts ${JSON.stringify(r)} but the scan ${JSON.stringify(s)}`);
          }
        }
      }
    } finally {
      await service.close();
      await rm(dataDir, { recursive: true, force: true });
    }
    return col.rows();
  },
};
