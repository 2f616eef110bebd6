/**
 * Issue 4: our relay (auth, team isolation, checks, durable acks) beside the bare automerge-repo
 * relay on the same workloads, both as processes of their own:
 *  - cold pull: a new client connects and fetches a document of N ledger entries, from a relay
 *    that holds it loaded (warm) and from one just restarted (it must load it from disk);
 *  - exchange: C clients share one small document and each changes it once a second; every
 *    client records when every other client's change reaches it.
 */
import type { AutomergeUrl, DocHandle } from "@automerge/automerge-repo";
import type { IssueClaims } from "../server/auth/tokens.js";
import { connect, waitRelayHolds, type Client } from "./lib/client.js";
import type { Benchmark, BenchContext } from "./lib/context.js";
import { buildSegment, salesOf } from "./lib/fixtures.js";
import { progress, sleep, until } from "./lib/progress.js";
import { Collector } from "./lib/report.js";
import { startBare, startOurs, type RelayProcess } from "./lib/servers.js";
import { percentile } from "./lib/stats.js";

const TEAM = "bench";
const member = (name: string): IssueClaims => ({ sub: `user-${name}`, team: TEAM, role: "member", device: name });

/** The N-entry segment every relay benchmark pulls (built once per run). */
export function bigSegment(ctx: BenchContext, entries: number): Promise<Uint8Array> {
  return ctx.memo(`segment-${entries}`, () => {
    progress(`building a ${entries}-entry ledger document (one change per entry)`);
    const sales = salesOf("seeder", entries);
    return buildSegment({ team: TEAM, device: "seeder", n: 0, createdAt: sales[0]!.at }, sales);
  });
}

interface EntriesDoc {
  entries: Record<string, unknown>;
}

export async function seed(relay: RelayProcess, bytes: Uint8Array): Promise<{ url: AutomergeUrl; pushMs: number }> {
  const c = await connect(relay.dial(member("seeder")), "seeder");
  try {
    const t0 = performance.now();
    const handle = c.repo.import<EntriesDoc>(bytes);
    await waitRelayHolds(c.repo, [handle as DocHandle<unknown>], `${relay.kind} relay to hold the seeded document`, 180_000);
    return { url: handle.url, pushMs: performance.now() - t0 };
  } finally {
    await c.close();
  }
}

export async function pull(relay: RelayProcess, url: AutomergeUrl, entries: number, name: string): Promise<number> {
  const t0 = performance.now();
  const c = await connect(relay.dial(member(name)), name);
  try {
    const handle = await c.repo.find<EntriesDoc>(url);
    const n = Object.keys(handle.doc().entries).length;
    if (n !== entries) throw new Error(`${relay.kind}: pulled ${n} of ${entries} entries`);
    return performance.now() - t0;
  } finally {
    await c.close();
  }
}

interface ExchangeResult {
  p50: number;
  p99: number;
  deliveredPerSecond: number;
  converged: number;
}

interface TicksDoc {
  ticks: Record<string, { n: number }>;
}

/**
 * C clients on one shared multi-writer document, each changing it every second for `seconds`.
 * On our relay that is the team's catalog (ledger segments have a single writer, enforced by
 * the relay); on the bare relay a document of the same initial shape.
 */
async function exchange(relay: RelayProcess, clients: number, seconds: number, rep: number, catalogUrl?: AutomergeUrl): Promise<ExchangeResult> {
  const creator = await connect(relay.dial(member(`hot-${rep}-0`)), `hot-${rep}-0`);
  let created: DocHandle<TicksDoc>;
  if (catalogUrl) {
    created = await creator.repo.find<TicksDoc>(catalogUrl);
    created.change((d) => {
      d.ticks = {};
    });
  } else {
    created = creator.repo.create<TicksDoc>({ type: "catalog", items: {}, groups: {}, customers: {}, ticks: {} } as TicksDoc);
  }
  await waitRelayHolds(creator.repo, [created as DocHandle<unknown>], "the shared document on the relay", 30_000);
  const all: Client[] = [creator];
  for (let i = 1; i < clients; i++) all.push(await connect(relay.dial(member(`hot-${rep}-${i}`)), `hot-${rep}-${i}`));
  const handles: DocHandle<TicksDoc>[] = [created];
  for (const c of all.slice(1)) handles.push(await c.repo.find<TicksDoc>(created.url));

  const writtenAt = new Map<string, number>(); // `${client}:${n}` → when written
  const latencies: number[] = [];
  const seen = handles.map(() => new Map<string, number>());
  let measuring = false;
  handles.forEach((h, me) => {
    h.on("change", ({ doc }) => {
      const now = performance.now();
      for (const [k, v] of Object.entries(doc.ticks)) {
        if (k === String(me)) continue;
        const last = seen[me]!.get(k) ?? 0;
        for (let n = last + 1; n <= v.n; n++) {
          const t = writtenAt.get(`${k}:${n}`);
          if (measuring && t !== undefined) latencies.push(now - t);
        }
        if (v.n > last) seen[me]!.set(k, v.n);
      }
    });
  });

  const counts = handles.map(() => 0);
  measuring = true;
  const started = performance.now();
  const timers = handles.map((h, me) =>
    setTimeout(function tick() {
      if (performance.now() - started > seconds * 1000) return;
      const n = ++counts[me]!;
      writtenAt.set(`${me}:${n}`, performance.now());
      h.change((d) => {
        d.ticks[String(me)] = { n };
      });
      timers[me] = setTimeout(tick, 1000);
    }, Math.floor((me / clients) * 1000)),
  );
  await sleep(seconds * 1000);
  // Drain: give the last changes time to arrive, but no more than a bounded wait.
  const complete = (): boolean => handles.every((_, me) => counts.every((c, k) => k === me || (seen[me]!.get(String(k)) ?? 0) >= c));
  await until(complete, "convergence", 10_000).catch(() => undefined);
  const elapsed = (performance.now() - started) / 1000;
  measuring = false;
  for (const t of timers) clearTimeout(t);
  let pairs = 0;
  let done = 0;
  handles.forEach((_, me) =>
    counts.forEach((c, k) => {
      if (k === me) return;
      pairs++;
      if ((seen[me]!.get(String(k)) ?? 0) >= c) done++;
    }),
  );
  await Promise.all(all.map((c) => c.close()));
  return { p50: percentile(latencies, 50), p99: percentile(latencies, 99), deliveredPerSecond: latencies.length / elapsed, converged: done / pairs };
}

export const relayBench: Benchmark = {
  name: "relay",
  issue: 4,
  async run(ctx) {
    const { relayDocEntries: entries, relayClients: clients, relayExchangeSeconds: seconds } = ctx.sizes;
    const col = new Collector("relay");
    const bare = { baselineName: "bare automerge-repo relay" };
    col.define("push of the N-entry document until the relay holds it", "s", "lower", { ...bare, size: `${entries} entries` });
    col.define("cold pull, relay warm (connect + find)", "s", "lower", { ...bare, size: `${entries} entries` });
    col.define("cold pull, relay just restarted", "s", "lower", { ...bare, size: `${entries} entries` });
    col.define("exchange latency p50", "ms", "lower", { ...bare, size: `${clients} clients × 1 change/s, ${seconds} s` });
    col.define("exchange latency p99", "ms", "lower", { ...bare, size: `${clients} clients × 1 change/s, ${seconds} s` });
    col.define("exchange changes delivered/s", "1/s", "higher", { ...bare, size: `${clients} clients` });
    col.define("exchange pairs converged", "fraction", "higher", { ...bare, size: `${clients} clients` });
    const bytes = await bigSegment(ctx, entries);

    for (let rep = 0; rep < ctx.reps; rep++) {
      // Alternate the order so drift on a shared machine does not always favour one side.
      const kinds = rep % 2 === 0 ? (["ours", "bare"] as const) : (["bare", "ours"] as const);
      for (const kind of kinds) {
        const record = kind === "ours" ? col.ours.bind(col) : col.baseline.bind(col);
        const { name: dbName } = ctx.db.fresh("relay");
        const ours = kind === "ours" ? await startOurs({ mongoUri: ctx.db.handle.uri, dbName, materializer: false }) : undefined;
        const relay: RelayProcess = ours ?? (await startBare());
        try {
          const team = ours ? await ours.createTeam(TEAM) : undefined;
          progress(`relay rep ${rep + 1}/${ctx.reps} ${kind}: push ${entries} entries`);
          const { url, pushMs } = await seed(relay, bytes);
          record("push of the N-entry document until the relay holds it", pushMs / 1000);
          progress(`relay rep ${rep + 1}/${ctx.reps} ${kind}: cold pull (warm relay)`);
          record("cold pull, relay warm (connect + find)", (await pull(relay, url, entries, `puller-${rep}-a`)) / 1000);
          await relay.restart();
          progress(`relay rep ${rep + 1}/${ctx.reps} ${kind}: cold pull (restarted relay)`);
          record("cold pull, relay just restarted", (await pull(relay, url, entries, `puller-${rep}-b`)) / 1000);
          progress(`relay rep ${rep + 1}/${ctx.reps} ${kind}: ${clients} clients exchanging for ${seconds} s`);
          const x = await exchange(relay, clients, seconds, rep, team?.catalogUrl);
          record("exchange latency p50", x.p50);
          record("exchange latency p99", x.p99);
          record("exchange changes delivered/s", x.deliveredPerSecond);
          record("exchange pairs converged", x.converged);
        } finally {
          await relay.stop();
        }
      }
    }
    return col.rows();
  },
};
