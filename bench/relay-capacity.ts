/**
 * Issue 17: how many devices, and changes per second, 1, 2 and 3 linked relays hold on this
 * machine. For each relay count, a fresh set of relays on one database (each with its own files,
 * linked with RELAY_PEERS: the multi-relay setup on FerretDB), devices spread over them, each
 * appending one sale a second to its own segment, and one reader on the last relay (where the
 * materializer would be) that follows every segment. The load doubles until a step fails: p99
 * from write to the reader above 2 s and above 3 times the first step's (on a machine shared with
 * other work the first step's latency is the floor, and the limit is where latency grows with
 * the load), a change not delivered within 10 s, or a device that cannot connect. What stopped it is named, with the CPU each side used (and `uptime`'s load, since
 * other work on the machine moves every figure).
 */
import { cp, readFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { DocHandle } from "@automerge/automerge-repo";
import type { LedgerSegmentDoc } from "../shared/docs.js";
import { connect, waitRelayHolds, type Client } from "./lib/client.js";
import type { BenchContext } from "./lib/context.js";
import { LightDevice, writeSalesSteadily } from "./lib/light-device.js";
import { progress, sleep, until } from "./lib/progress.js";
import type { Collector } from "./lib/report.js";
import { benchDir, startOurs } from "./lib/servers.js";
import { percentile } from "./lib/stats.js";

const TEAM = "capacity";
const P99_LIMIT_MS = 2000;
/** A step fails when its p99 is this many times the first step's (and above P99_LIMIT_MS). */
const P99_GROWTH_LIMIT = 3;
const DRAIN_MS = 10_000;
const FIRST_STEP = 10;
const WARM_UP_SECONDS = 2;

type Relay = Awaited<ReturnType<typeof startOurs>>;

export interface CapacityResult {
  relays: number;
  /** Most devices (one change a second each) that held; 0 when the first step failed. */
  devices: number;
  p50Ms: number;
  p99Ms: number;
  /** p99 of the first step (10 devices): this machine's floor at the time. */
  firstP99Ms: number;
  /** The first step's latencies, from devices on the reader's relay and on the others. */
  first?: { same: number[]; cross: number[] };
  /** What stopped the next step (or "largest step tried"). */
  limit: string;
}

/** CPU seconds a process has used (Linux /proc; 0 elsewhere). */
async function cpuSeconds(pid: number): Promise<number> {
  try {
    const fields = (await readFile(`/proc/${pid}/stat`, "utf8")).split(") ")[1]!.split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

async function startLinked(count: number, mongoUri: string, dbName: string): Promise<Relay[]> {
  const relays: Relay[] = [await startOurs({ mongoUri, dbName, materializer: false })];
  for (let i = 1; i < count; i++) {
    // Every relay needs the same JWT keys (they check each other's service tokens).
    const dataDir = await benchDir(`capacity-relay${i + 1}`);
    await cp(path.join(relays[0]!.dataDir, "keys"), path.join(dataDir, "keys"), { recursive: true });
    const peers = relays.map((r) => r.syncUrl).join(",");
    relays.push(await startOurs({ mongoUri, dbName, dataDir, materializer: false, env: { RELAY_PEERS: peers } }));
  }
  await sleep(1500); // links are dialled at start; give them a moment
  return relays;
}

interface Step {
  p50: number;
  p99: number;
  /** Latencies of changes from devices on the reader's relay, and on the others. */
  same: number[];
  cross: number[];
  failed?: string;
  benchCpu: number;
  relayCpu: number[];
}

/** When each entry first reached the reader, and which came from devices on the reader's relay. */
interface Seen {
  at: Map<string, number>;
  sameRelay: Set<string>;
}

/** The reader follows a device's segment. */
async function follow(reader: Client, handle: DocHandle<LedgerSegmentDoc>, seen: Seen, sameRelay: boolean): Promise<void> {
  const h = await reader.repo.find<LedgerSegmentDoc>(handle.url);
  h.on("change", ({ doc }) => {
    const now = Date.now();
    for (const id of Object.keys(doc.entries ?? {})) {
      if (seen.at.has(id)) continue;
      seen.at.set(id, now);
      if (sameRelay) seen.sameRelay.add(id);
    }
  });
}

async function runStep(relays: Relay[], devices: LightDevice[], seen: Seen, seconds: number, floorP99: number | undefined): Promise<Step> {
  const seenAt = seen.at;
  // Unmeasured first: the reader's first sync of a segment it just asked for (through the links)
  // is a one-off, not the steady cost of a change.
  await writeSalesSteadily(devices, 1000, WARM_UP_SECONDS);
  const cpu0 = process.cpuUsage();
  const relayCpu0 = await Promise.all(relays.map((r) => cpuSeconds(r.pid())));
  const wall0 = Date.now();
  const writtenAt = await writeSalesSteadily(devices, 1000, seconds);
  const delivered = (): boolean => [...writtenAt.keys()].every((id) => seenAt.has(id));
  await until(delivered, "every change at the reader", DRAIN_MS).catch(() => undefined);
  const wall = (Date.now() - wall0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const relayCpu = (await Promise.all(relays.map((r) => cpuSeconds(r.pid())))).map((c, i) => (c - relayCpu0[i]!) / wall);
  const latencies: number[] = [];
  const same: number[] = [];
  const cross: number[] = [];
  for (const [id, t] of writtenAt) {
    const at = seenAt.get(id);
    if (at === undefined) continue;
    latencies.push(at - t);
    (seen.sameRelay.has(id) ? same : cross).push(at - t);
  }
  const missing = writtenAt.size - latencies.length;
  const step: Step = { p50: percentile(latencies, 50), p99: percentile(latencies, 99), same, cross, benchCpu: (cpu.user + cpu.system) / 1e6 / wall, relayCpu };
  if (missing > 0) step.failed = `${missing} of ${writtenAt.size} changes not at the reader ${DRAIN_MS / 1000} s after the last`;
  else {
    const limit = Math.max(P99_LIMIT_MS, P99_GROWTH_LIMIT * (floorP99 ?? Number.POSITIVE_INFINITY));
    if (floorP99 !== undefined && step.p99 > limit) step.failed = `p99 ${Math.round(step.p99)} ms > ${Math.round(limit)} ms (${P99_GROWTH_LIMIT}× the first step's ${Math.round(floorP99)} ms)`;
  }
  return step;
}

function cpuNote(s: Step): string {
  return `bench process ${Math.round(s.benchCpu * 100)}% of a core, relays ${s.relayCpu.map((c) => `${Math.round(c * 100)}%`).join("/")}, load average ${os.loadavg()[0]!.toFixed(1)}`;
}

/** Doubles the devices on `count` relays until a step fails or `maxDevices` is passed. */
export async function measureCapacity(ctx: BenchContext, count: number, maxDevices: number, seconds: number): Promise<CapacityResult> {
  const { name: dbName } = ctx.db.fresh(`capacity${count}`);
  const relays = await startLinked(count, ctx.db.handle.uri, dbName);
  const devices: LightDevice[] = [];
  const seen: Seen = { at: new Map(), sameRelay: new Set() };
  let reader: Client | undefined;
  let floorP99: number | undefined;
  const result: CapacityResult = { relays: count, devices: 0, p50Ms: Number.NaN, p99Ms: Number.NaN, firstP99Ms: Number.NaN, limit: `largest step tried (${maxDevices} devices)` };
  try {
    const team = await relays[0]!.createTeam(TEAM);
    const last = relays.at(-1)!;
    reader = await connect(last.dial({ sub: "reader", team: TEAM, role: "auditor" }), "reader");
    for (let target = FIRST_STEP; target <= maxDevices; target *= 2) {
      progress(`relays capacity: ${count} relay(s), ${target} devices × 1 change/s for ${seconds} s`);
      try {
        while (devices.length < target) {
          const on = devices.length % count;
          const d = new LightDevice(relays[on]!, team, `cap${count}-${devices.length}`);
          await d.online();
          devices.push(d);
          const segment = d.addSegment();
          // The reader asks for the segment once the device's relay holds it (before, it is unavailable).
          await waitRelayHolds(d.client.repo, [segment], `segment of ${d.id} on its relay`, 30_000);
          await follow(reader, segment, seen, on === count - 1);
        }
      } catch (err) {
        result.limit = `${target} devices: a device could not connect or sync its segment (${err instanceof Error ? err.message : String(err)})`;
        break;
      }
      const step = await runStep(relays, devices, seen, seconds, floorP99);
      if (floorP99 === undefined) {
        floorP99 = step.p99;
        result.first = { same: step.same, cross: step.cross };
      }
      if (step.failed) {
        result.limit = `${target} devices: ${step.failed}; ${cpuNote(step)}`;
        break;
      }
      Object.assign(result, { devices: target, p50Ms: step.p50, p99Ms: step.p99, firstP99Ms: floorP99 });
      result.limit = `largest step tried (${target} devices held; ${cpuNote(step)})`;
    }
  } finally {
    await Promise.all(devices.map((d) => d.close()));
    await reader?.close();
    for (const r of relays.reverse()) await r.stop();
  }
  return result;
}

/** Adds one row per relay count: devices held, with p50/p99 at that load and the limit in the note. */
export async function capacityRows(ctx: BenchContext, col: Collector): Promise<CapacityResult[]> {
  const maxDevices = Math.max(FIRST_STEP, ctx.sizes.capacityDevices);
  const seconds = ctx.sizes.relayExchangeSeconds;
  const out: CapacityResult[] = [];
  for (const count of [1, 2, 3]) {
    const r = await measureCapacity(ctx, count, maxDevices, seconds);
    out.push(r);
    const metric = `${count} relay${count > 1 ? "s" : ""}: devices held (1 change/s each = changes/s)`;
    col.define(metric, "devices", "higher", { size: `steps ×2 from ${FIRST_STEP} to ${maxDevices}, ${seconds} s each, to a reader on the last relay` });
    col.ours(metric, r.devices);
    col.note(metric, `p50 ${Math.round(r.p50Ms)} ms, p99 ${Math.round(r.p99Ms)} ms at that load (first step p99 ${Math.round(r.firstP99Ms)} ms); stopped by: ${r.limit}`);
    if (count > 1 && r.first && r.first.same.length > 0 && r.first.cross.length > 0) {
      const size = { baselineName: "same relay", size: `${count} relays, ${FIRST_STEP} devices × 1 change/s on their own segments, ${seconds} s, to a reader on the last relay` };
      for (const p of [50, 99]) {
        const m = `${count} relays: segment change latency p${p}, other relay vs same relay`;
        col.define(m, "ms", "lower", size);
        col.ours(m, percentile(r.first.cross, p));
        col.baseline(m, percentile(r.first.same, p));
      }
    }
    progress(`relays capacity: ${count} relay(s) held ${r.devices} devices (${r.limit})`);
  }
  return out;
}
