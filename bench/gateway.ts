/**
 * Gateway vs CRDT path (issue 8), with the service and its materializer process running: the
 * same N one-line cash sales of one stocked item recorded
 *  - through the gateway: sequential `POST /api/sync` requests, each an `invoice.create` batch of
 *    B invoices (productId of the stocked item); each request returns only once the
 *    materializer decided its sales (what the gateway does), so the last answer means every sale
 *    is journaled;
 *  - through a CRDT device: `openDevice` (online) + `recordSale` for each sale, until every entry
 *    is journaled in MongoDB (polled by sequence number every 50 ms).
 * Rows: total seconds and sales/s per path (gateway as "ours", the device as the baseline, so the
 * ratio is gateway/CRDT) and the gateway's per-request latency p50/p99.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import path from "node:path";
import type { Db } from "mongodb";
import { openDevice } from "../client/node.js";
import type { Benchmark, BenchContext } from "./lib/context.js";
import { JournalWatch } from "./lib/journal-watch.js";
import { repoRoot } from "./lib/procs.js";
import { progress, until } from "./lib/progress.js";
import { Collector, type Sizes } from "./lib/report.js";
import { benchDir, startOurs } from "./lib/servers.js";
import { percentile } from "./lib/stats.js";

/** The gateway benchmark's sizes (in run.ts's SIZES beside the others). */
export interface GatewaySizes {
  /** Sales recorded through each path. */
  gatewaySales: number;
  /** invoice.create operations per `POST /api/sync` request. */
  gatewayBatch: number;
}

function gatewaySizes(s: Sizes): GatewaySizes {
  const g = s as Sizes & Partial<GatewaySizes>;
  return { gatewaySales: g.gatewaySales ?? 200, gatewayBatch: g.gatewayBatch ?? 20 };
}

/** True when some module under server/http declares a `/sync` route. */
export function gatewayExists(): boolean {
  const dir = path.join(repoRoot, "server", "http");
  if (!existsSync(dir)) return false;
  return readdirSync(dir, { recursive: true })
    .map(String)
    .filter((f) => f.endsWith(".ts"))
    .some((f) => /["'`]\/sync["'`]/.test(readFileSync(path.join(dir, f), "utf8")));
}

const PRICE = 1000;

interface SyncAnswer {
  status: number;
  body: { success?: boolean; synced?: Record<string, string[]>; error?: { code: string; message: string } };
  raw: string;
}

async function postSync(url: string, token: string, body: unknown): Promise<SyncAnswer> {
  const res = await fetch(`${url}/api/sync`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const raw = await res.text();
  let parsed: SyncAnswer["body"] = {};
  try {
    parsed = JSON.parse(raw) as SyncAnswer["body"];
  } catch {
    // Reported through status and raw below.
  }
  return { status: res.status, body: parsed, raw };
}

async function acceptedSales(db: Db, team: string, ids?: readonly string[]): Promise<number> {
  return db.collection("journal").countDocuments({ team, kind: "sale", status: "accepted", ...(ids ? { entryId: { $in: [...ids] } } : {}) });
}

interface Once {
  gatewayS: number;
  crdtS: number;
  requestMs: number[];
}

async function once(ctx: BenchContext, n: number, batch: number, rep: number): Promise<Once> {
  const { name: dbName, db } = ctx.db.fresh("gateway");
  const relay = await startOurs({ mongoUri: ctx.db.handle.uri, dbName, materializer: true });
  const watch = new JournalWatch(db, "gw", 50);
  let dataDir: string | undefined;
  let device: Awaited<ReturnType<typeof openDevice>> | undefined;
  try {
    const team = await relay.createTeam("gw");
    const gwToken = relay.token({ sub: "clerk", team: team.team, role: "member", device: `gw-till-${rep}` });
    // One item stocked for both paths (item.create with stock journals a stock entry), not timed.
    const setup = await postSync(relay.httpUrl, gwToken, { item: { create: [{ name: "Bench widget", price: PRICE, stock: 2 * n + 10, unit: "nos" }] } });
    if (setup.status !== 200) throw new Error(`gateway: item.create answered ${setup.status}: ${setup.raw.slice(0, 300)}`);
    const item = setup.body.synced?.itemsCreated?.[0];
    if (!item) throw new Error(`gateway: item.create returned no item id: ${setup.raw.slice(0, 300)}`);

    // (a) the gateway: sequential requests of `batch` invoices, each waiting for its verdicts.
    progress(`gateway rep ${rep + 1}: ${n} sales through POST /api/sync, ${batch} per request`);
    const requestMs: number[] = [];
    const t0 = performance.now();
    for (let i = 0; i < n; i += batch) {
      const invoices = Array.from({ length: Math.min(batch, n - i) }, () => ({ products: [{ productId: item, quantity: 1 }], paidAmount: PRICE }));
      const r0 = performance.now();
      const r = await postSync(relay.httpUrl, gwToken, { invoice: { create: invoices } });
      requestMs.push(performance.now() - r0);
      if (r.status !== 200 || r.body.success !== true) throw new Error(`gateway: request ${i / batch + 1} answered ${r.status}: ${r.raw.slice(0, 300)}`);
    }
    const gatewayS = (performance.now() - t0) / 1000;
    const gwAccepted = await acceptedSales(db, team.team);
    if (gwAccepted !== n) throw new Error(`gateway: ${gwAccepted} of ${n} sales accepted in the journal`);

    // (b) a CRDT device, online, the same sales of the same item.
    dataDir = await benchDir("gwdevice");
    const deviceId = `till-${rep}`;
    device = await openDevice({
      serverUrl: relay.httpUrl, token: relay.token({ sub: "clerk", team: team.team, role: "member", device: deviceId }),
      deviceId, rootUrl: team.rootUrl, dataDir, enrollTimeoutMs: 60_000,
    });
    const dev = device;
    await until(() => dev.catalog().items.some((it) => it.id === item), "the device to see the stocked item", 60_000, 50);
    progress(`gateway rep ${rep + 1}: ${n} sales through a CRDT device (recordSale, online) until journaled`);
    watch.start();
    const ids: string[] = [];
    const t1 = performance.now();
    for (let i = 0; i < n; i++) ids.push((await dev.recordSale({ lines: [{ item, quantity: 1 }], paid: PRICE })).id);
    await until(() => ids.every((id) => watch.seenAt.has(id)), "every device sale in the journal", 90_000, 20);
    const crdtS = (performance.now() - t1) / 1000;
    const devAccepted = await acceptedSales(db, team.team, ids);
    if (devAccepted !== n) throw new Error(`CRDT device: ${devAccepted} of ${n} sales accepted in the journal`);
    return { gatewayS, crdtS, requestMs };
  } finally {
    watch.stop();
    await device?.close().catch(() => undefined);
    await relay.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  }
}

export const gatewayBench: Benchmark = {
  name: "gateway",
  issue: 8,
  async run(ctx) {
    if (!gatewayExists()) {
      progress("gateway: POST /api/sync not found in server/http — not measured");
      return [];
    }
    const { gatewaySales: n, gatewayBatch: batch } = gatewaySizes(ctx.sizes);
    const col = new Collector("gateway");
    const size = `${n} sales, ${batch} per request`;
    const baselineName = "CRDT device (openDevice + recordSale, online)";
    col.define("N sales until every one is journaled", "s", "lower", { baselineName, size });
    col.define("sales journaled per second", "sales/s", "higher", { baselineName, size });
    col.define("gateway request latency p50 (batch until its verdicts)", "ms", "lower", { size });
    col.define("gateway request latency p99 (batch until its verdicts)", "ms", "lower", { size });
    for (let rep = 0; rep < ctx.reps; rep++) {
      const r = await once(ctx, n, batch, rep);
      progress(`gateway rep ${rep + 1}: gateway ${r.gatewayS.toFixed(1)} s, CRDT device ${r.crdtS.toFixed(1)} s`);
      col.ours("N sales until every one is journaled", r.gatewayS);
      col.baseline("N sales until every one is journaled", r.crdtS);
      col.ours("sales journaled per second", n / r.gatewayS);
      col.baseline("sales journaled per second", n / r.crdtS);
      col.ours("gateway request latency p50 (batch until its verdicts)", percentile(r.requestMs, 50));
      col.ours("gateway request latency p99 (batch until its verdicts)", percentile(r.requestMs, 99));
    }
    return col.rows();
  },
};
