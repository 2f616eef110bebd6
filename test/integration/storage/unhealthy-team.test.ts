/**
 * A team whose catalog was stored as a 0-byte file (what the admin CLI's non-atomic writes once
 * left): the real service and materializer processes report the team unhealthy in /readyz,
 * /metrics and /api/sync-status (which team, which document, since when, why), the materializer
 * retries it with a growing delay instead of every second, and the other team stays healthy.
 */
import { mkdtemp, readdir, rm, truncate } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { parseAutomergeUrl, type AutomergeUrl } from "@automerge/automerge-repo";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadOrCreateKeys } from "../../../server/auth/keys.js";
import { createTokenService } from "../../../server/auth/tokens.js";
import { loadConfig } from "../../../server/config.js";
import { freshDb, type TestDb } from "../../helpers/db.js";
import { spawnService, type ServiceProcess } from "../../helpers/service-process.js";

let db: TestDb;
let dataDir: string;
let svc: ServiceProcess | undefined;

beforeAll(async () => {
  db = await freshDb("unhealthy");
  dataDir = await mkdtemp(path.join(os.tmpdir(), "unhealthy-team-"));
});
afterAll(async () => {
  await svc?.stop("SIGKILL");
  await db?.close();
  await rm(dataDir, { recursive: true, force: true });
});

const start = () => spawnService({ dataDir, env: { MONGODB_URI: db.uri, MONGODB_DB: db.dbName, LOG_LEVEL: "info" }, timeoutMs: 90_000 });

async function serviceToken(): Promise<string> {
  const config = loadConfig({ DATA_DIR: dataDir });
  return createTokenService(await loadOrCreateKeys({ ...config.jwt, dataDir }), config.jwt).issue({ sub: "test", team: "*", role: "service" }, 600);
}

async function poll<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

interface Problem { team: string; document: string | null; role: string | null; since: string; reason: string; source: string }

describe("a team whose catalog cannot be loaded", () => {
  it("shows as unhealthy in /readyz, /metrics and /api/sync-status, and the materializer backs off", async () => {
    svc = await start();
    const token = await serviceToken();
    const auth = { authorization: `Bearer ${token}`, "content-type": "application/json" };
    const created: Record<string, { catalogUrl: AutomergeUrl }> = {};
    for (const team of ["good", "broken"]) {
      const res = await fetch(`${svc.url}/api/teams`, { method: "POST", headers: auth, body: JSON.stringify({ team }) });
      expect(res.status).toBe(201);
      created[team] = (await res.json()) as { catalogUrl: AutomergeUrl };
    }
    expect(await svc.stop("SIGTERM")).toBe(0);

    // The issue's state: the catalog's only chunk is an empty file.
    const catalogId = parseAutomergeUrl(created.broken!.catalogUrl).documentId;
    const folder = path.join(dataDir, "automerge", catalogId.slice(0, 2), catalogId.slice(2));
    const snapshots = await readdir(path.join(folder, "snapshot"));
    expect(snapshots.length).toBeGreaterThan(0);
    for (const f of snapshots) await truncate(path.join(folder, "snapshot", f), 0);

    svc = await start();
    const url = svc.url;
    const ready = await poll("/readyz to name both sources", async () => {
      const res = await fetch(`${url}/readyz`);
      const body = (await res.json()) as { ready: boolean; reason?: string; teams?: { ok: boolean; unhealthy: Problem[] } };
      const sources = new Set(body.teams?.unhealthy.map((p) => p.source));
      return sources.has("materializer") && sources.has("relay-storage") ? { status: res.status, body } : undefined;
    });
    expect(ready.status).toBe(503);
    expect(ready.body.ready).toBe(false);
    expect(ready.body.reason).toContain("teams: broken cannot load their documents");
    const unhealthy = ready.body.teams!.unhealthy;
    expect(unhealthy.every((p) => p.team === "broken" && p.document === catalogId && !Number.isNaN(Date.parse(p.since)))).toBe(true);
    expect(unhealthy.find((p) => p.source === "relay-storage")).toMatchObject({ role: "catalog", reason: `snapshot/${snapshots[0]}: empty (0 bytes)` });
    expect(unhealthy.find((p) => p.source === "materializer")).toMatchObject({ role: "catalog", reason: expect.stringMatching(/not received from the relay within 15 s|unavailable/) });

    const status = (await (await fetch(`${url}/api/sync-status?team=broken`, { headers: auth })).json()) as { health: { ok: boolean; problems: Omit<Problem, "team">[] } };
    expect(status.health.ok).toBe(false);
    expect(status.health.problems.map((p) => [p.document, p.source]).sort()).toEqual([[catalogId, "materializer"], [catalogId, "relay-storage"]]);
    const good = (await (await fetch(`${url}/api/sync-status?team=good`, { headers: auth })).json()) as { health: { ok: boolean } };
    expect(good.health).toEqual({ ok: true, problems: [] });

    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toContain(`ledger_team_unhealthy_since_seconds{team="broken",document="${catalogId}",source="relay-storage"}`);
    expect(metrics).toMatch(/^ledger_teams_unhealthy 1$/m);
    expect(metrics).toMatch(/^relay_storage_corrupt_chunks [1-9]/m);

    // Retries come ever further apart, one line each, with the attempt's number.
    const failures = () => svc!.logs.filter((l) => l.msg === "team start failed; retrying later" && l.team === "broken");
    await poll("three failed attempts", async () => (failures().length >= 3 ? true : undefined));
    const attempts = failures().map((l) => [l.attempt, l.retryInMs, l.document]);
    expect(attempts.slice(0, 3)).toEqual([[1, 1000, catalogId], [2, 2000, catalogId], [3, 4000, catalogId]]);
    expect(svc.logs.some((l) => l.msg === "team materializing" && l.team === "good")).toBe(true);
  }, 240_000);
});
