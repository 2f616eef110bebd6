/**
 * `npm run churn`: the full-size churn run of issue 9 (20 devices, one sale per second each for
 * 3 minutes, a cut every 2–5 s, 3 relay SIGKILL restarts). Uses MONGODB_URI when set, else the
 * same embedded database the service would start. Exits non-zero when anything was lost.
 * Sizes can be overridden for a quicker look: CHURN_DEVICES, CHURN_SECONDS, CHURN_RESTARTS;
 * CHURN_RELAY_LOG=file keeps the relay's and materializer's log lines.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { resolveDatabase } from "../../server/db/resolve.js";
import { formatChurn, runChurn } from "./harness.js";

function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  const n = raw === undefined || raw === "" ? fallback : Number(raw);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer`);
  return n;
}

async function main(): Promise<number> {
  const dbDir = await mkdtemp(path.join(os.tmpdir(), "churn-db-"));
  const database = await resolveDatabase({ dataDir: dbDir, uri: process.env.MONGODB_URI });
  try {
    console.log(`[churn] database: ${database.kind} ${database.server}`);
    const result = await runChurn({
      devices: envInt("CHURN_DEVICES", 20),
      writeMs: envInt("CHURN_SECONDS", 180) * 1000,
      intervalMs: 1000,
      cutMinMs: 2000,
      cutMaxMs: 5000,
      relayRestarts: envInt("CHURN_RESTARTS", 3),
      // The materializer decides ~35 entries/s here (FerretDB, no transactions) and needs 25–55 s
      // to start on a machine this busy; three restarts in three minutes leave it a backlog.
      quietMaxMs: 300_000,
      mongoUri: database.uri,
      dbName: `churn_${randomBytes(4).toString("hex")}`,
      log: (line) => console.log(`[churn] ${line}`),
      ...(process.env.CHURN_RELAY_LOG ? { relayLogFile: process.env.CHURN_RELAY_LOG } : {}),
    });
    console.log(formatChurn(result));
    const ok = result.crashes === 0 && result.writesFailed === 0 && result.entriesMissing === 0 && result.entriesWritten > 0;
    console.log(ok ? "churn: PASS" : "churn: FAIL");
    return ok ? 0 : 1;
  } finally {
    await database.stop();
    await rm(dbDir, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof Error ? err.stack : String(err));
    process.exit(1);
  },
);
