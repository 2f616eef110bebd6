/**
 * The churn harness, shortened for the regular suite (the full size is `npm run churn`): five
 * device processes writing a sale a second for 40 s through a proxy that cuts a connection every
 * 2–5 s, one relay SIGKILL restart, then nothing may be missing, failed or crashed.
 */
import { expect, it } from "vitest";
import { freshDb } from "../helpers/db.js";
import { formatChurn, runChurn } from "./harness.js";

it("five devices under connection churn and a relay SIGKILL: no crash, no failed write, nothing missing, all decided", async () => {
  const db = await freshDb("churn");
  try {
    const result = await runChurn({
      devices: 5,
      writeMs: 40_000,
      intervalMs: 1000,
      cutMinMs: 2000,
      cutMaxMs: 5000,
      relayRestarts: 1,
      quietMaxMs: 60_000,
      mongoUri: db.uri,
      dbName: db.dbName,
    });
    console.log(formatChurn(result));
    expect(result.crashes).toBe(0);
    expect(result.writesFailed).toBe(0);
    // One sale a second for 40 s each, paced by the wall clock.
    expect(result.writesAttempted).toBeGreaterThanOrEqual(5 * 39);
    expect(result.entriesWritten).toBe(result.writesAttempted);
    expect(result.missingOnRelay).toBe(0);
    expect(result.undecided).toBe(0);
    expect(result.entriesMissing).toBe(0);
    expect(result.relayRestarts).toBe(1);
    expect(result.cuts.close + result.cuts.reset).toBeGreaterThanOrEqual(5);
    expect(result.reconnects).toBeGreaterThan(0);
  } finally {
    await db.close();
  }
}, 300_000);
