/**
 * The embedded database is supervised: killed, or hung (SIGSTOP), it is noticed, reported in
 * /healthz, /readyz and the metrics, and restarted on the same port, and the service answers
 * again without a restart of its own. A restart of the whole service keeps the database's URI.
 */
import { execFileSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadOrCreateKeys } from "../../../server/auth/keys.js";
import { createTokenService, type TokenService } from "../../../server/auth/tokens.js";
import { loadConfig } from "../../../server/config.js";
import { isAlive, spawnService, type ServiceProcess } from "../../helpers/service-process.js";
import { eventually } from "../relay/harness.js";

let svc: ServiceProcess | undefined;
let dataDir = "";
let tokens: TokenService;
afterAll(async () => {
  await svc?.stop("SIGKILL");
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

function databasePid(): number | undefined {
  const out = execFileSync("ps", ["-eo", "pid,args"], { encoding: "utf8" });
  const line = out.split("\n").find((l) => l.includes(path.join(dataDir, "ferretdb")));
  return line ? Number(line.trim().split(/\s+/)[0]) : undefined;
}

async function get<T>(route: string): Promise<{ status: number; body: T; ms: number }> {
  const t0 = Date.now();
  const res = await fetch(`${svc!.url}${route}`, { signal: AbortSignal.timeout(20_000) });
  const body = route === "/metrics" ? ((await res.text()) as T) : ((await res.json()) as T);
  return { status: res.status, body, ms: Date.now() - t0 };
}

interface Healthz { status: string; database: { health?: { status: string; restarts: number } } }

async function createTeam(team: string): Promise<number> {
  const res = await fetch(`${svc!.url}/api/teams`, {
    method: "POST",
    headers: { authorization: `Bearer ${tokens.issue({ sub: "setup", team: "*", role: "service" })}`, "content-type": "application/json" },
    body: JSON.stringify({ team }),
    signal: AbortSignal.timeout(30_000),
  });
  return res.status;
}

async function recovered(restarts: number): Promise<void> {
  await eventually(async () => {
    const h = await get<Healthz>("/healthz");
    return h.body.status === "ok" && h.body.database.health?.status === "up" && h.body.database.health.restarts === restarts;
  }, `database restarted ${restarts} time(s)`, 90_000);
  await eventually(async () => (await get("/readyz")).status === 200, "ready again", 60_000);
}

describe("the supervised embedded database", () => {
  it("is restarted on the same port when it dies or hangs, and the service recovers by itself", async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), "ledger-sync-dbsup-"));
    const config = loadConfig({ DATA_DIR: dataDir });
    tokens = createTokenService(await loadOrCreateKeys({ ...config.jwt, dataDir }), config.jwt);
    svc = await spawnService({ dataDir, env: { MONGODB_URI: "", MATERIALIZER: "off" }, timeoutMs: 60_000 });
    const uri = svc.logs.find((l) => l.msg === "database ready")?.uri;
    expect(typeof uri).toBe("string");
    expect(await createTeam("before")).toBe(201);

    // Killed.
    const first = databasePid()!;
    process.kill(first, "SIGKILL");
    await recovered(1);
    const second = databasePid()!;
    expect(second).not.toBe(first);
    expect(isAlive(first)).toBe(false);
    expect(svc.logs.filter((l) => l.msg === "database restarted").map((l) => l.uri)).toEqual([uri]);
    expect(await createTeam("after-kill")).toBe(201);

    // Hung: the probes answer (503, not a hang), and the hung process is replaced.
    process.kill(second, "SIGSTOP");
    await eventually(async () => (await get<Healthz>("/healthz")).body.status === "degraded", "healthz degraded while hung", 60_000);
    const probe = await get<{ ready: boolean }>("/readyz");
    expect(probe.body.ready).toBe(false);
    expect(probe.ms).toBeLessThan(15_000);
    await recovered(2);
    expect(isAlive(second)).toBe(false);
    expect(await createTeam("after-hang")).toBe(201);
    const metrics = (await get<string>("/metrics")).body;
    expect(metrics).toMatch(/database_restarts_total 2/);
    expect(metrics).toMatch(/database_up 1/);

    // A restart of the whole service finds the database on the port it had.
    await svc.stop("SIGTERM");
    svc = await spawnService({ dataDir, env: { MONGODB_URI: "", MATERIALIZER: "off" }, timeoutMs: 60_000 });
    const again = svc.logs.find((l) => l.msg === "database ready");
    expect(again?.uri).toBe(uri);
    expect(again?.portReused).toBe(true);
  }, 300_000);
});
