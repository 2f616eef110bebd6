/**
 * `npm start` on the embedded default: no MONGODB_URI, a fresh data folder. The service must
 * find or start its own database, answer /healthz, and leave no process behind when stopped.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { freePort } from "../../../server/db/free-port.js";
import { isAlive, spawnService } from "../../helpers/service-process.js";

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function databasePid(dataDir: string): Promise<number | undefined> {
  const { execFileSync } = await import("node:child_process");
  const out = execFileSync("ps", ["-eo", "pid,args"], { encoding: "utf8" });
  const line = out.split("\n").find((l) => l.includes(dataDir) && !l.includes("server/main.ts"));
  return line ? Number(line.trim().split(/\s+/)[0]) : undefined;
}

describe("the service on the embedded default", () => {
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    it(`answers /healthz with the database it uses and stops cleanly on ${signal}`, async () => {
      const dataDir = await mkdtemp(path.join(os.tmpdir(), "ledger-sync-start-"));
      dirs.push(dataDir);
      const started = Date.now();
      const svc = await spawnService({ dataDir, env: { MONGODB_URI: "" }, timeoutMs: 30_000 });
      const res = await fetch(`${svc.url}/healthz`);
      expect(Date.now() - started).toBeLessThan(30_000);
      expect(res.status).toBe(200);
      const body = (await res.json()) as { status: string; database: { kind: string; features: object } };
      expect(body.status).toBe("ok");
      expect(["mongod", "memory-server", "ferretdb"]).toContain(body.database.kind);

      const dbPid = await databasePid(dataDir);
      expect(dbPid).toBeGreaterThan(0);
      expect(await svc.stop(signal)).toBe(0);
      expect(isAlive(dbPid!)).toBe(false);
      expect(svc.logs.some((l) => l.msg === "stopped")).toBe(true);
    });
  }

  it("leaves no database process behind when the service is killed with SIGKILL", async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), "ledger-sync-kill-"));
    dirs.push(dataDir);
    const svc = await spawnService({ dataDir, env: { MONGODB_URI: "" }, timeoutMs: 30_000 });
    const dbPid = await databasePid(dataDir);
    expect(dbPid).toBeGreaterThan(0);
    await svc.stop("SIGKILL");
    const deadline = Date.now() + 10_000;
    while (isAlive(dbPid!) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(isAlive(dbPid!)).toBe(false);
  });

  it("keeps the embedded database on the port EMBEDDED_DB_PORT pins, and says so in service.json", async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), "ledger-sync-port-"));
    dirs.push(dataDir);
    const port = await freePort();
    const svc = await spawnService({ dataDir, env: { MONGODB_URI: "", EMBEDDED_DB_PORT: String(port) }, timeoutMs: 30_000 });
    try {
      const file = JSON.parse(await readFile(path.join(dataDir, "service.json"), "utf8")) as { mongodbUri: string; url: string };
      expect(new URL(file.mongodbUri).port).toBe(String(port));
      expect(file.url).toBe(svc.url);
    } finally {
      expect(await svc.stop("SIGTERM")).toBe(0);
    }
    // Gone with the service: a tool reading it would otherwise dial a dead address.
    await expect(readFile(path.join(dataDir, "service.json"), "utf8")).rejects.toThrow(/ENOENT/);
  });
});
