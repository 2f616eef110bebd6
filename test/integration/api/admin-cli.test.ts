/**
 * `npm run admin`: teams are created by the running service (the CLI never writes the relay's
 * document storage); users, devices and tokens directly on the database and the key folder. The
 * service accepts what the CLI made, and every document of teams created while it runs is whole.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm, stat } from "node:fs/promises";
import net, { type AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { Repo, type AutomergeUrl, type PeerId } from "@automerge/automerge-repo";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CatalogDoc, SegmentRegistryDoc, StatusDoc, TeamRootDoc } from "../../../shared/docs.js";
import { loadConfig } from "../../../server/config.js";
import { createFileStorage } from "../../../server/relay/storage.js";
import { startService, type RunningService } from "../../../server/service.js";
import { freshDb, type TestDb } from "../../helpers/db.js";
import { filesUnder } from "../../helpers/files.js";
import { readEnrolmentFragment } from "../../../shared/enrolment-link.js";

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
let db: TestDb;
let dataDir: string;

async function admin(args: string[], env: Record<string, string> = {}): Promise<{ code: number; out: Record<string, unknown>; err: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ["--import", "tsx", "server/cli/admin.ts", ...args], {
      cwd: root,
      env: { ...process.env, MONGODB_URI: db.uri, MONGODB_DB: db.dbName, DATA_DIR: dataDir, ...env },
    });
    return { code: 0, out: JSON.parse(stdout) as Record<string, unknown>, err: stderr };
  } catch (e) {
    const x = e as { code: number; stderr: string };
    return { code: x.code, out: {}, err: x.stderr };
  }
}

function start(): Promise<RunningService> {
  return startService({
    config: loadConfig({ PORT: "0", DATA_DIR: dataDir, LOG_LEVEL: "silent" }),
    db: db.db,
    database: { uri: db.uri, kind: "external", server: "test", features: { transactions: false, changeStreams: false, indexedQueries: true }, stop: async () => {} },
    logger: pino({ level: "silent" }),
  });
}

beforeAll(async () => {
  db = await freshDb("cli");
  dataDir = await mkdtemp(path.join(os.tmpdir(), "admin-cli-"));
});
afterAll(async () => {
  await db?.close();
  await rm(dataDir, { recursive: true, force: true });
});

describe("admin CLI", () => {
  it("create-team without a running service fails clearly and writes no document", async () => {
    // A port that was free a moment ago: nothing listens there.
    const port = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, "127.0.0.1", () => {
        const a = s.address() as AddressInfo;
        s.close(() => resolve(a.port));
      });
    });
    const res = await admin(["create-team", "--team", "nobody-home"], { PORT: String(port) });
    expect(res.code).toBe(3);
    expect(res.err).toContain(`admin: the service is not reachable at http://127.0.0.1:${port} (ECONNREFUSED)`);
    expect(await filesUnder(path.join(dataDir, "automerge"))).toEqual([]);
    expect(await db.db.collection("teams").countDocuments({ _id: "nobody-home" as never })).toBe(0);
  });

  it("create-team, create-user and enroll-device go through the service; token signs with the data folder's keys", async () => {
    const service = await start();
    const env = { SERVICE_URL: service.url, MONGODB_URI: "" };
    try {
      // No database for the CLI: the service does the work.
      const team = await admin(["create-team", "--team", "clishop"], env);
      expect(team.code, team.err).toBe(0);
      expect(String(team.out.rootUrl)).toMatch(/^automerge:/);
      const again = await admin(["create-team", "--team", "clishop"], env);
      expect(again.code).toBe(1);
      expect(again.err).toContain("admin: team clishop exists (HTTP 409 team-exists)");
      expect((await admin(["create-team", "--team", "Bad Id"], env)).code).toBe(1);
      expect((await admin(["create-team", "--team", "x", "--oversell", "maybe"], env)).code).toBe(2);

      const user = await admin(["create-user", "--team", "clishop", "--username", "dana", "--role", "admin"], { ...env, ADMIN_PASSWORD: "dana-secret-1" });
      expect(user.code, user.err).toBe(0);
      expect(JSON.stringify(user.out)).not.toContain("dana-secret-1");
      expect((await admin(["create-user", "--team", "clishop", "--username", "eve", "--role", "owner"], { ...env, ADMIN_PASSWORD: "x" })).code).toBe(2);
      const dev = await admin(["enroll-device", "--team", "clishop", "--device", "pos-1", "--user", "dana"], env);
      expect(dev.code, dev.err).toBe(0);
      expect(dev.out).toMatchObject({ device: "pos-1", rootUrl: team.out.rootUrl });
      // The web till's enrolment link carries the same answer in its fragment.
      const link = new URL(String(dev.out.link));
      expect(link.pathname).toBe("/app/");
      expect(readEnrolmentFragment(link.hash)).toMatchObject({ team: "clishop", device: "pos-1", user: "dana", token: dev.out.token, rootUrl: team.out.rootUrl });
      const nobody = await admin(["enroll-device", "--team", "clishop", "--device", "pos-2", "--user", "nobody"], env);
      expect(nobody.code).toBe(1);
      expect(nobody.err).toContain("user nobody is not in team clishop");
      const tok = await admin(["token", "--team", "clishop", "--sub", "dana", "--role", "auditor", "--ttl", "600"], env);
      expect(tok.code, tok.err).toBe(0);
      expect((await admin(["frobnicate"], env)).code).toBe(2);

      expect(service.tokens.verify(String(dev.out.token))).toMatchObject({ sub: "dana", team: "clishop", role: "member", device: "pos-1" });
      expect(service.tokens.verify(String(tok.out.token))).toMatchObject({ role: "auditor" });
      const login = await fetch(`${service.url}/api/auth/login`, {
        method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ team: "clishop", username: "dana", password: "dana-secret-1", device: "pos-1" }),
      });
      expect(login.status).toBe(200);
      const ready = await fetch(`${service.url}/api/readytosync`, { method: "POST", headers: { authorization: `Bearer ${String(dev.out.token)}` } });
      expect(await ready.json()).toEqual({ success: true, message: "OK", clientId: "clishop" });
    } finally {
      await service.close();
    }
  }, 180_000);

  it("explains itself: --help lists the commands, each command has an example", async () => {
    const help = await run(process.execPath, ["--import", "tsx", "server/cli/admin.ts", "--help"], { cwd: root });
    for (const c of ["create-team", "create-user", "enroll-device", "token"]) expect(help.stdout).toContain(`  ${c} `);
    const one = await run(process.execPath, ["--import", "tsx", "server/cli/admin.ts", "enroll-device", "--help"], { cwd: root });
    expect(one.stdout).toContain("usage: npm run admin -- enroll-device --team ID --device ID --user NAME");
    expect(one.stdout).toContain("example: npm run admin -- enroll-device");
  }, 60_000);

  it("teams created by several CLI processes at once while the service runs: every document is whole", async () => {
    const service = await start();
    const names = Array.from({ length: 6 }, (_, i) => `busy-${i}`);
    let created: Record<string, unknown>[];
    try {
      const env = { SERVICE_URL: service.url };
      created = [];
      for (let i = 0; i < names.length; i += 3) {
        const batch = await Promise.all(names.slice(i, i + 3).map((team) => admin(["create-team", "--team", team, "--oversell", "allow-negative"], env)));
        for (const r of batch) expect(r.code, r.err).toBe(0);
        created.push(...batch.map((r) => r.out));
      }
    } finally {
      await service.close();
    }

    // Read back from disk alone, as the relay does after a restart.
    const all = await filesUnder(path.join(dataDir, "automerge"));
    expect(all.filter((f) => f.includes(".tmp-"))).toEqual([]);
    for (const f of all) expect((await stat(f)).size, f).toBeGreaterThan(0);
    const storage = createFileStorage(dataDir);
    const repo = new Repo({ network: [], storage, peerId: "reader" as PeerId });
    try {
      for (const [i, out] of created.entries()) {
        const teamRoot = (await repo.find<TeamRootDoc>(out.rootUrl as AutomergeUrl)).doc();
        expect(teamRoot).toMatchObject({ type: "team-root", team: names[i], settings: { oversell: "allow-negative" } });
        expect((await repo.find<CatalogDoc>(teamRoot.catalog)).doc()).toMatchObject({ type: "catalog", team: names[i], items: {}, groups: {}, customers: {} });
        expect((await repo.find<SegmentRegistryDoc>(teamRoot.registry)).doc()).toMatchObject({ type: "segment-registry", segments: {} });
        expect((await repo.find<StatusDoc>(teamRoot.status)).doc()).toMatchObject({ type: "status", team: names[i], seq: 0 });
      }
      expect(storage.damaged()).toEqual([]);
      expect(storage.corruptChunks()).toBe(0);
    } finally {
      await repo.shutdown();
    }
  });
});
