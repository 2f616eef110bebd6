/**
 * Issue 17: two relays on one database (MongoDB document storage, relay 2 linked to relay 1
 * with RELAY_PEERS). C clients, half on each relay, share the team's catalog and each changes it
 * once a second; every client records when every other client's change reaches it. Latency of
 * changes between clients of different relays (ours) beside that between clients of the same
 * relay (baseline), in one run. Then the devices and changes per second that 1, 2 and 3 linked
 * relays hold (relay-capacity.ts).
 */
import { cp } from "node:fs/promises";
import path from "node:path";
import type { DocHandle } from "@automerge/automerge-repo";
import type { IssueClaims } from "../server/auth/tokens.js";
import { connect, type Client } from "./lib/client.js";
import type { Benchmark } from "./lib/context.js";
import { progress, sleep, until } from "./lib/progress.js";
import { Collector } from "./lib/report.js";
import { benchDir, startOurs } from "./lib/servers.js";
import { percentile } from "./lib/stats.js";
import { capacityRows } from "./relay-capacity.js";

const TEAM = "bench";
const member = (name: string): IssueClaims => ({ sub: `user-${name}`, team: TEAM, role: "member", device: name });

interface TicksDoc {
  ticks: Record<string, { n: number }>;
}

export const relaysBench: Benchmark = {
  name: "relays",
  issue: 17,
  async run(ctx) {
    const clients = Math.max(4, Math.min(ctx.sizes.relayClients, 40));
    const seconds = ctx.sizes.relayExchangeSeconds;
    const col = new Collector("relays");
    const size = { baselineName: "same relay", size: `2 relays, ${clients} clients × 1 change/s, ${seconds} s` };
    col.define("change latency p50, other relay vs same relay", "ms", "lower", size);
    col.define("change latency p99, other relay vs same relay", "ms", "lower", size);
    const { name: dbName } = ctx.db.fresh("relays");
    const env = { RELAY_STORAGE: "mongodb" };
    const one = await startOurs({ mongoUri: ctx.db.handle.uri, dbName, materializer: false, env });
    // Every relay needs the same JWT keys (they check each other's service tokens).
    const dataDir = await benchDir("relay2");
    await cp(path.join(one.dataDir, "keys"), path.join(dataDir, "keys"), { recursive: true });
    const two = await startOurs({ mongoUri: ctx.db.handle.uri, dbName, dataDir, materializer: false, env: { ...env, RELAY_PEERS: one.syncUrl } });
    const all: Client[] = [];
    try {
      const team = await one.createTeam(TEAM);
      await sleep(1000); // relay 2 dials relay 1 at its start; give the link a moment
      for (let rep = 0; rep < ctx.reps; rep++) {
        const relayOf: number[] = [];
        const handles: DocHandle<TicksDoc>[] = [];
        for (let i = 0; i < clients; i++) {
          const relay = i % 2 === 0 ? one : two;
          const c = await connect(relay.dial(member(`c${rep}-${i}`)), `c${rep}-${i}`);
          all.push(c);
          relayOf.push(i % 2);
          handles.push(await c.repo.find<TicksDoc>(team.catalogUrl));
        }
        handles[0]!.change((d) => void (d.ticks = {}));
        await until(() => handles.every((h) => h.doc().ticks !== undefined), "every client has the ticks map", 30_000).catch((err: unknown) => {
          throw new Error(`${String(err)}; relay 1: ${one.warnings().join(" / ")}; relay 2: ${two.warnings().join(" / ")}; without it: ${handles.flatMap((h, i) => (h.doc().ticks === undefined ? [`${i} (relay ${relayOf[i]! + 1})`] : [])).join(", ")}`);
        });
        const writtenAt = new Map<string, number>();
        const same: number[] = [];
        const cross: number[] = [];
        const seen = handles.map(() => new Map<string, number>());
        handles.forEach((h, me) =>
          h.on("change", ({ doc }) => {
            const now = performance.now();
            for (const [k, v] of Object.entries(doc.ticks ?? {})) {
              if (k === String(me)) continue;
              const last = seen[me]!.get(k) ?? 0;
              for (let n = last + 1; n <= v.n; n++) {
                const t = writtenAt.get(`${k}:${n}`);
                if (t !== undefined) (relayOf[Number(k)] === relayOf[me] ? same : cross).push(now - t);
              }
              if (v.n > last) seen[me]!.set(k, v.n);
            }
          }),
        );
        progress(`relays rep ${rep + 1}/${ctx.reps}: ${clients} clients on 2 relays for ${seconds} s`);
        const counts = handles.map(() => 0);
        const started = performance.now();
        const timers = handles.map((h, me) =>
          setTimeout(function tick() {
            if (performance.now() - started > seconds * 1000) return;
            const n = ++counts[me]!;
            writtenAt.set(`${me}:${n}`, performance.now());
            h.change((d) => void (d.ticks[String(me)] = { n }));
            timers[me] = setTimeout(tick, 1000);
          }, Math.floor((me / clients) * 1000)),
        );
        await sleep(seconds * 1000);
        const complete = (): boolean => handles.every((_, me) => counts.every((c, k) => k === me || (seen[me]!.get(String(k)) ?? 0) >= c));
        await until(complete, "convergence", 15_000).catch(() => undefined);
        for (const t of timers) clearTimeout(t);
        col.ours("change latency p50, other relay vs same relay", percentile(cross, 50));
        col.baseline("change latency p50, other relay vs same relay", percentile(same, 50));
        col.ours("change latency p99, other relay vs same relay", percentile(cross, 99));
        col.baseline("change latency p99, other relay vs same relay", percentile(same, 99));
        if (!complete()) col.note("change latency p50, other relay vs same relay", "not every change reached every client within 15 s of the end");
      }
    } finally {
      await Promise.all(all.map((c) => c.close()));
      await two.stop();
      await one.stop();
    }
    await capacityRows(ctx, col);
    return col.rows();
  },
};
