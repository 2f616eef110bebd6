/**
 * Bench clients in a process of their own (bench/lib/workers.ts starts them), so a workload's
 * clients do not share the bench's event loop: what is measured is the relay's delay, not the
 * bench's. Configuration as JSON in BENCH_WORKER; JSON lines out: {"msg":"ready"} once every
 * client is connected, {"msg":"result",...} at the end. Commands in on stdin, one JSON per line.
 * Roles:
 *  - exchange: clients on one shared document, each changing it every second from `startAt`
 *    (epoch ms, the {"go"} command); each change carries its write time, so a receiver in another
 *    process measures the delay on the machine's one clock.
 *  - probe: each client changes a small document of its own every `everyMs` and times the relay's
 *    acknowledgement (its sync reply naming our heads), until {"stop"}: the delay another peer sees
 *    while the relay is busy with someone else.
 */
import { createInterface } from "node:readline";
import type { AutomergeUrl, DocHandle } from "@automerge/automerge-repo";
import { connect, relayHolds, type Client } from "./lib/client.js";
import { sleep } from "./lib/progress.js";

export interface ExchangeConfig {
  role: "exchange";
  /** Dial URL (token included) and client number, per client of this process. */
  clients: Array<{ url: string; id: number }>;
  /** All clients of the workload, across processes (the expected change counts follow from it). */
  total: number;
  docUrl: AutomergeUrl;
}

export interface ProbeConfig {
  role: "probe";
  clients: Array<{ url: string; id: number }>;
  team: string;
  everyMs: number;
}

export type WorkerConfig = ExchangeConfig | ProbeConfig;

export interface ExchangeTicks {
  ticks: Record<string, { n: number }>;
  /** `${client}:${n}` → epoch ms the change was written. */
  at: Record<string, number>;
}

export interface ExchangeResult {
  latencies: number[];
  /** Changes each client of this process wrote. */
  written: Record<string, number>;
  /** Per client of this process: the latest change seen of every other client. */
  seen: Record<string, Record<string, number>>;
}

export interface ProbeResult {
  /** Per probe client: every acknowledgement delay, ms. */
  delays: number[][];
}

function epochMs(): number {
  return performance.timeOrigin + performance.now();
}

function out(line: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

const commands: Array<Record<string, unknown>> = [];
createInterface({ input: process.stdin }).on("line", (line) => {
  try {
    commands.push(JSON.parse(line) as Record<string, unknown>);
  } catch {
    // Not ours.
  }
});

async function command(name: string): Promise<Record<string, unknown>> {
  for (;;) {
    const i = commands.findIndex((c) => c.cmd === name);
    if (i >= 0) return commands.splice(i, 1)[0]!;
    await sleep(5);
  }
}

async function exchange(cfg: ExchangeConfig, clients: Client[]): Promise<ExchangeResult> {
  const handles = await Promise.all(clients.map((c) => c.repo.find<ExchangeTicks>(cfg.docUrl)));
  out({ msg: "ready" });
  const go = await command("go");
  const startAt = Number(go.startAt);
  const seconds = Number(go.seconds);
  const latencies: number[] = [];
  const seen = handles.map(() => new Map<string, number>());
  handles.forEach((h, idx) => {
    const me = String(cfg.clients[idx]!.id);
    h.on("change", ({ doc }) => {
      const now = epochMs();
      for (const [k, v] of Object.entries(doc.ticks ?? {})) {
        if (k === me) continue;
        const last = seen[idx]!.get(k) ?? 0;
        for (let n = last + 1; n <= v.n; n++) {
          const t = doc.at?.[`${k}:${n}`];
          if (t !== undefined && t >= startAt) latencies.push(now - t);
        }
        if (v.n > last) seen[idx]!.set(k, v.n);
      }
    });
  });
  const timers: Array<ReturnType<typeof setTimeout>> = [];
  handles.forEach((h, idx) => {
    const me = cfg.clients[idx]!.id;
    let n = 0;
    const tick = (): void => {
      if (epochMs() - startAt >= seconds * 1000) return;
      n += 1;
      const written = n;
      h.change((d) => {
        d.ticks[String(me)] = { n: written };
        d.at[`${me}:${written}`] = epochMs();
      });
      timers[idx] = setTimeout(tick, 1000);
    };
    timers[idx] = setTimeout(tick, Math.max(0, startAt + Math.floor((me / cfg.total) * 1000) - epochMs()));
  });
  await sleep(Math.max(0, startAt + seconds * 1000 - epochMs()));
  // Drain: until nothing new arrived for 2 s, at most 10 s (convergence is judged from every
  // process's counts by the bench: a writer's count is known only to its own process).
  let lastCount = -1;
  let quietSince = Date.now();
  const drainEnd = Date.now() + 10_000;
  while (Date.now() < drainEnd && Date.now() - quietSince < 2000) {
    await sleep(100);
    if (latencies.length !== lastCount) {
      lastCount = latencies.length;
      quietSince = Date.now();
    }
  }
  for (const t of timers) clearTimeout(t);
  const written: Record<string, number> = {};
  const seenOut: Record<string, Record<string, number>> = {};
  handles.forEach((h, idx) => {
    const me = String(cfg.clients[idx]!.id);
    written[me] = h.doc().ticks?.[me]?.n ?? 0;
    seenOut[me] = Object.fromEntries(seen[idx]!);
  });
  return { latencies, written, seen: seenOut };
}

interface ProbeDoc {
  type: string;
  team: string;
  device: string;
  n: number;
  createdAt: string;
  entries: Record<string, unknown>;
}

async function probe(cfg: ProbeConfig, clients: Client[]): Promise<ProbeResult> {
  // Shaped as a ledger segment: our relay takes documents a member brings (the materializer is
  // not running in these benchmarks, so its entries are never decided).
  const handles = clients.map((c, idx) =>
    c.repo.create<ProbeDoc>({ type: "ledger-segment", team: cfg.team, device: `probe-${cfg.clients[idx]!.id}`, n: 0, createdAt: new Date().toISOString(), entries: {} }),
  );
  for (const [idx, h] of handles.entries()) {
    while (!relayHolds(clients[idx]!.repo, h as DocHandle<unknown>)) await sleep(20);
  }
  out({ msg: "ready" });
  let stop = false;
  void command("stop").then(() => (stop = true));
  const delays = handles.map(() => [] as number[]);
  await Promise.all(
    handles.map(async (h, idx) => {
      let n = 0;
      while (!stop) {
        const t0 = epochMs();
        n += 1;
        const key = `p${n}`;
        h.change((d) => {
          d.entries[key] = { n };
        });
        // Timed until the relay names our heads (or until told to stop: an answer never seen).
        while (!stop && !relayHolds(clients[idx]!.repo, h as DocHandle<unknown>)) await sleep(2);
        if (stop) break;
        delays[idx]!.push(epochMs() - t0);
        await sleep(Math.max(0, cfg.everyMs - (epochMs() - t0)));
      }
    }),
  );
  return { delays };
}

async function main(): Promise<void> {
  const cfg = JSON.parse(process.env.BENCH_WORKER ?? "null") as WorkerConfig | null;
  if (!cfg) throw new Error("BENCH_WORKER is not set");
  const clients: Client[] = [];
  for (const c of cfg.clients) clients.push(await connect(c.url, `${cfg.role}-${c.id}`, undefined, 60_000));
  const result = cfg.role === "exchange" ? await exchange(cfg, clients) : await probe(cfg, clients);
  await Promise.all(clients.map((c) => c.close()));
  out({ msg: "result", ...result });
  // Stays until the bench stops it (SIGTERM): a child ending by itself is reported as a failure.
}

process.on("SIGTERM", () => process.exit(0));
main().catch((err: unknown) => {
  out({ msg: "failed", err: String(err) });
  process.exit(1);
});
