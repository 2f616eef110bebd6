/**
 * One service per data folder: a second `npm start` on the same DATA_DIR refuses with a clear
 * message and starts no second database on the same files; a service killed with SIGKILL leaves
 * a stale lock that the next start takes over.
 */
import { execFileSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { isAlive, spawnService, type ServiceProcess } from "../../helpers/service-process.js";
import { eventually } from "../relay/harness.js";

const running: ServiceProcess[] = [];
let dataDir = "";
afterAll(async () => {
  for (const s of running) await s.stop("SIGKILL");
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

function databasePids(): number[] {
  const out = execFileSync("ps", ["-eo", "pid,args"], { encoding: "utf8" });
  return out.split("\n").filter((l) => l.includes(path.join(dataDir, "ferretdb"))).map((l) => Number(l.trim().split(/\s+/)[0]));
}

describe("the data folder lock", () => {
  it("refuses a second service on the same DATA_DIR and is taken over after a SIGKILL", async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), "ledger-sync-lock-"));
    const env = { MONGODB_URI: "", MATERIALIZER: "off" };
    const first = await spawnService({ dataDir, env, timeoutMs: 60_000 });
    running.push(first);
    expect(databasePids()).toHaveLength(1);

    const second = await spawnService({ dataDir, env, timeoutMs: 60_000 }).then(
      () => "started",
      (err: unknown) => String(err),
    );
    expect(second).toMatch(/exited with code 1/);
    expect(second).toContain(`DATA_DIR ${dataDir} is in use by ledger-sync service (pid ${first.proc.pid}`);
    expect(databasePids()).toHaveLength(1);
    expect((await fetch(`${first.url}/healthz`)).status).toBe(200);

    const [db] = databasePids();
    await first.stop("SIGKILL");
    await eventually(() => !isAlive(db!), "the killed service's database gone", 20_000);
    const third = await spawnService({ dataDir, env, timeoutMs: 60_000 });
    running.push(third);
    const takeover = third.logs.find((l) => l.msg === "took over the data folder's lock from a service that is gone");
    expect((takeover?.previous as { pid: number }).pid).toBe(first.proc.pid);
    expect((await fetch(`${third.url}/healthz`)).status).toBe(200);
  }, 180_000);
});
