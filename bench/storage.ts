/**
 * Issue 17: the relay's document storage on MongoDB (`RELAY_STORAGE=mongodb`) beside the file
 * storage, in the same run, each relay a process of its own on the bench's database:
 *  - push: a client pushes a document of N ledger entries until the relay holds it (saved);
 *  - cold pull from the warm relay (the document in memory);
 *  - cold pull after a restart (the relay loads the document from its storage).
 */
import type { Benchmark } from "./lib/context.js";
import { progress } from "./lib/progress.js";
import { Collector } from "./lib/report.js";
import { startOurs } from "./lib/servers.js";
import { bigSegment, pull, seed } from "./relay.js";

const KINDS = ["files", "mongodb"] as const;

export const storageBench: Benchmark = {
  name: "storage",
  issue: 17,
  async run(ctx) {
    const entries = ctx.sizes.relayDocEntries;
    const col = new Collector("storage");
    const files = { baselineName: "file storage", size: `${entries} entries` };
    col.define("push of the N-entry document until the relay holds it (MongoDB storage)", "s", "lower", files);
    col.define("cold pull, relay warm (MongoDB storage)", "s", "lower", files);
    col.define("cold pull, relay just restarted: load from storage (MongoDB storage)", "s", "lower", files);
    const bytes = await bigSegment(ctx, entries);
    for (let rep = 0; rep < ctx.reps; rep++) {
      const kinds = rep % 2 === 0 ? KINDS : ([...KINDS].reverse() as unknown as typeof KINDS);
      for (const kind of kinds) {
        const record = kind === "mongodb" ? col.ours.bind(col) : col.baseline.bind(col);
        const relay = await startOurs({ mongoUri: ctx.db.handle.uri, dbName: ctx.db.fresh("storage").name, materializer: false, env: { RELAY_STORAGE: kind } });
        try {
          await relay.createTeam("bench");
          progress(`storage rep ${rep + 1}/${ctx.reps} ${kind}: push ${entries} entries`);
          const { url, pushMs } = await seed(relay, bytes);
          record("push of the N-entry document until the relay holds it (MongoDB storage)", pushMs / 1000);
          record("cold pull, relay warm (MongoDB storage)", (await pull(relay, url, entries, `puller-${rep}-a`)) / 1000);
          await relay.restart();
          progress(`storage rep ${rep + 1}/${ctx.reps} ${kind}: cold pull after restart`);
          record("cold pull, relay just restarted: load from storage (MongoDB storage)", (await pull(relay, url, entries, `puller-${rep}-b`)) / 1000);
        } finally {
          await relay.stop();
        }
      }
    }
    return col.rows();
  },
};

