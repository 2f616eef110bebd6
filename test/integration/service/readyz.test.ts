/**
 * `/readyz` tells the truth about the materializer: not ready until a materializer has started
 * every team (caught up with its journal), not ready while it is gone, ready again once the
 * supervisor has restarted it; the body says which teams are started and how far behind.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { inject } from "vitest";
import { loadOrCreateKeys } from "../../../server/auth/keys.js";
import { createTokenService } from "../../../server/auth/tokens.js";
import { loadConfig } from "../../../server/config.js";
import { isAlive, spawnService, type ServiceProcess } from "../../helpers/service-process.js";
import { eventually } from "../relay/harness.js";

interface Readyz {
  ready: boolean;
  materializer?: { status: string; connected: boolean; teams: { team: string; state: string; behindSeconds: number }[] };
}

let svc: ServiceProcess | undefined;
let dataDir = "";
afterAll(async () => {
  await svc?.stop("SIGKILL");
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

async function readyz(): Promise<{ status: number; body: Readyz }> {
  const res = await fetch(`${svc!.url}/readyz`, { signal: AbortSignal.timeout(10_000) });
  return { status: res.status, body: (await res.json()) as Readyz };
}

describe("/readyz and the materializer", () => {
  it("is not ready before the materializer has started the teams or while it is down, and says so", async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), "ledger-sync-readyz-"));
    const config = loadConfig({ DATA_DIR: dataDir });
    const tokens = createTokenService(await loadOrCreateKeys({ ...config.jwt, dataDir }), config.jwt);
    svc = await spawnService({
      dataDir,
      env: { MONGODB_URI: inject("mongoUri"), MONGODB_DB: `readyz_${randomBytes(4).toString("hex")}`, MATERIALIZER_SELF_CHECK_MS: "0" },
    });
    // The materializer process is only just spawned: nothing has been decided by anyone yet.
    const early = await readyz();
    expect(early.status).toBe(503);
    expect(early.body.ready).toBe(false);
    expect(["down", "starting"]).toContain(early.body.materializer?.status);

    const res = await fetch(`${svc.url}/api/teams`, {
      method: "POST",
      headers: { authorization: `Bearer ${tokens.issue({ sub: "setup", team: "*", role: "service" })}`, "content-type": "application/json" },
      body: JSON.stringify({ team: "ready-shop" }),
    });
    expect(res.status).toBe(201);
    let ready: Readyz | undefined;
    await eventually(async () => {
      const r = await readyz();
      if (r.status === 200 && r.body.materializer?.teams.some((t) => t.team === "ready-shop")) ready = r.body;
      return ready !== undefined;
    }, "ready with the team started", 90_000);
    expect(ready!.materializer).toMatchObject({ status: "ready", connected: true });
    expect(ready!.materializer!.teams.find((t) => t.team === "ready-shop")).toMatchObject({ state: "ready", behindSeconds: 0 });

    // The materializer killed: not ready (no heartbeat) until the supervisor's restart has started the team again.
    const started = svc.logs.filter((l) => l.msg === "materializer started").at(-1);
    const pid = started?.pid as number;
    expect(isAlive(pid)).toBe(true);
    process.kill(pid, "SIGKILL");
    let down: Readyz | undefined;
    await eventually(async () => {
      const r = await readyz();
      if (r.status === 503) down = r.body;
      return down !== undefined;
    }, "not ready while the materializer is down", 60_000);
    expect(down!.ready).toBe(false);
    await eventually(async () => (await readyz()).status === 200, "ready again after the restart", 90_000);
    expect(svc.logs.filter((l) => l.msg === "materializer started").length).toBeGreaterThanOrEqual(2);
  }, 240_000);
});
