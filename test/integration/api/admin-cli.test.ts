/**
 * `npm run admin`: a team, a user, a device and a token made on the database and the key folder
 * directly; the service started afterwards on the same folder logs that user in and accepts the tokens.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../../server/config.js";
import { startService, type RunningService } from "../../../server/service.js";
import { freshDb, type TestDb } from "../../helpers/db.js";

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

beforeAll(async () => {
  db = await freshDb("cli");
  dataDir = await mkdtemp(path.join(os.tmpdir(), "admin-cli-"));
});
afterAll(async () => {
  await db?.close();
  await rm(dataDir, { recursive: true, force: true });
});

describe("admin CLI", () => {
  it("create-team, create-user, enroll-device and token work before the service runs", async () => {
    const team = await admin(["create-team", "--team", "clishop"]);
    expect(team.code, team.err).toBe(0);
    expect(String(team.out.rootUrl)).toMatch(/^automerge:/);
    expect((await admin(["create-team", "--team", "clishop"])).code).toBe(1);
    const user = await admin(["create-user", "--team", "clishop", "--username", "dana", "--role", "admin"], { ADMIN_PASSWORD: "dana-secret-1" });
    expect(user.code, user.err).toBe(0);
    expect(JSON.stringify(user.out)).not.toContain("dana-secret-1");
    const dev = await admin(["enroll-device", "--team", "clishop", "--device", "pos-1", "--user", "dana"]);
    expect(dev.code, dev.err).toBe(0);
    expect(dev.out).toMatchObject({ device: "pos-1", rootUrl: team.out.rootUrl });
    const tok = await admin(["token", "--team", "clishop", "--sub", "dana", "--role", "auditor", "--ttl", "600"]);
    expect(tok.code, tok.err).toBe(0);
    expect((await admin(["frobnicate"])).code).toBe(2);

    const service: RunningService = await startService({
      config: loadConfig({ PORT: "0", DATA_DIR: dataDir, LOG_LEVEL: "silent" }),
      db: db.db,
      database: { uri: db.uri, kind: "external", server: "test", features: { transactions: false, changeStreams: false, indexedQueries: true }, stop: async () => {} },
      logger: pino({ level: "silent" }),
    });
    try {
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
  });
});
