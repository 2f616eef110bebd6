/**
 * Issue 4: our relay (auth, team isolation, checks, durable acks) beside the bare automerge-repo
 * relay on the same workloads, both as processes of their own:
 *  - cold pull: a new client connects and fetches a document of N ledger entries, from a relay
 *    that holds it loaded (warm) and from one just restarted (it must load it from disk);
 *  - exchange: C clients share one small document and each changes it once a second; every
 *    client records when every other client's change reaches it. The clients run in processes of
 *    their own (bench/lib/workers.ts), so the bench's event loop does not add to the relay's.
 */
import type { AutomergeUrl, DocHandle } from "@automerge/automerge-repo";
import type { IssueClaims } from "../server/auth/tokens.js";
import type { ExchangeResult as WorkerExchange, ExchangeTicks } from "./client-worker.js";
import { connect, waitRelayHolds } from "./lib/client.js";
import type { Benchmark, BenchContext } from "./lib/context.js";
import { buildSegment, salesOf } from "./lib/fixtures.js";
import { progress } from "./lib/progress.js";
import { Collector } from "./lib/report.js";
import { startBare, startOurs, type RelayProcess } from "./lib/servers.js";
import { percentile } from "./lib/stats.js";
import { exchangeConfigs, startWorkers } from "./lib/workers.js";

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

/**
 * C clients on one shared multi-writer document, each changing it every second for `seconds`.
 * On our relay that is the team's catalog (ledger segments have a single writer, enforced by
 * the relay); on the bare relay a document of the same initial shape. The clients run in
 * processes of their own (bench/lib/workers.ts), the same for both relays.
 */
async function exchange(relay: RelayProcess, clients: number, seconds: number, rep: number, catalogUrl?: AutomergeUrl): Promise<ExchangeResult> {
  const creator = await connect(relay.dial(member(`hot-${rep}-creator`)), `hot-${rep}-creator`);
  let docUrl: AutomergeUrl;
  try {
    let created: DocHandle<ExchangeTicks>;
    if (catalogUrl) {
      created = await creator.repo.find<ExchangeTicks>(catalogUrl);
      created.change((d) => {
        d.ticks = {};
        d.at = {};
      });
    } else {
      created = creator.repo.create<ExchangeTicks>({ type: "catalog", items: {}, groups: {}, customers: {}, ticks: {}, at: {} } as ExchangeTicks);
    }
    await waitRelayHolds(creator.repo, [created as DocHandle<unknown>], "the shared document on the relay", 30_000);
    docUrl = created.url;
  } finally {
    await creator.close();
  }
  const dials = Array.from({ length: clients }, (_, id) => ({ url: relay.dial(member(`hot-${rep}-${id}`)), id }));
  const workers = await startWorkers(exchangeConfigs(dials, docUrl));
  try {
    // Every process connected and holding the document: start together, on the machine's clock.
    workers.send({ cmd: "go", startAt: performance.timeOrigin + performance.now() + 1000, seconds });
    const results = (await workers.results(seconds * 1000 + 60_000)) as unknown as WorkerExchange[];
    const latencies = results.flatMap((r) => r.latencies);
    progress(`${relay.kind}: exchange processes wrote ${results.map((r) => Object.values(r.written).reduce((a, b) => a + b, 0)).join(" + ")} changes and timed ${results.map((r) => r.latencies.length).join(" + ")} deliveries`);
    const written = Object.assign({}, ...results.map((r) => r.written)) as Record<string, number>;
    let pairs = 0;
    let converged = 0;
    for (const r of results) {
      for (const [me, seen] of Object.entries(r.seen)) {
        for (const [k, n] of Object.entries(written)) {
          if (k === me) continue;
          pairs++;
          if ((seen[k] ?? 0) >= n) converged++;
        }
      }
    }
    return { p50: percentile(latencies, 50), p99: percentile(latencies, 99), deliveredPerSecond: latencies.length / seconds, converged: converged / Math.max(1, pairs) };
  } finally {
    await workers.stop();
  }
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
