/**
 * Issue 15's "done when": with the service running (a real process), a shop is set up and a sale
 * made and its verdict read with the two command lines alone, and no environment but the data
 * folder: the admin CLI finds the service and its database through DATA_DIR.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect, it } from "vitest";
import { freshDb, type TestDb } from "../../helpers/db.js";
import { spawnService, type ServiceProcess } from "../../helpers/service-process.js";
import { runCli } from "../client/cli-process.js";

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
let db: TestDb;
let dataDir: string;
let service: ServiceProcess;

beforeAll(async () => {
  db = await freshDb("setup");
  dataDir = await mkdtemp(path.join(os.tmpdir(), "shop-setup-"));
  service = await spawnService({ dataDir, env: { MONGODB_URI: db.uri, MONGODB_DB: db.dbName }, timeoutMs: 90_000 });
}, 120_000);

afterAll(async () => {
  await service?.stop();
  await db?.close();
  await rm(dataDir, { recursive: true, force: true });
});

/** A tool run as a shopkeeper would: nothing in the environment but where the data folder is. */
async function tool(script: string, args: string[], extra: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const env: Record<string, string> = { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", DATA_DIR: dataDir, ...extra };
  try {
    const { stdout, stderr } = await run(process.execPath, ["--import", "tsx", script, ...args], { cwd: root, env });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}

it("sets up a shop and reads a sale's verdict with the admin and device CLIs, no environment copied from logs", async () => {
  const admin = (args: string[], extra?: Record<string, string>) => tool("server/cli/admin.ts", [...args, "--json"], extra);
  const team = await admin(["create-team", "--team", "corner-shop"]);
  expect(team.code, team.stderr).toBe(0);
  const user = await admin(["create-user", "--team", "corner-shop", "--username", "ana", "--role", "admin"], { ADMIN_PASSWORD: "ana-password-1" });
  expect(user.code, user.stderr).toBe(0);
  const enrolled = await admin(["enroll-device", "--team", "corner-shop", "--device", "till-1", "--user", "ana"]);
  expect(enrolled.code, enrolled.stderr).toBe(0);
  const e = JSON.parse(enrolled.stdout) as { token: string; rootUrl: string; publicKey: string };

  const till = path.join(dataDir, "till-1");
  const keyFile = path.join(dataDir, "team.pem");
  await writeFile(keyFile, e.publicKey);
  const syncUrl = `${service.url.replace("http:", "ws:")}/sync`;
  const device = async (args: string[]): Promise<Record<string, unknown>[]> => {
    const r = await runCli([...args.slice(0, args[1]?.startsWith("--") ? 1 : 2), "--data", till, ...args.slice(args[1]?.startsWith("--") ? 1 : 2)]);
    expect(r.stderr, args.join(" ")).toBe("");
    expect(r.code).toBe(0);
    return r.lines;
  };
  await device(["enroll", "--server", syncUrl, "--token", e.token, "--device", "till-1", "--root", e.rootUrl, "--public-key", keyFile]);
  const [tea] = await device(["item", "add", "--name", "Green tea", "--price", "350"]);
  await device(["stock", "receive", "--item", String(tea!.id), "--qty", "5"]);
  const [sale] = await device(["sale", "--item", String(tea!.id), "--qty", "2", "--paid", "700"]);
  await device(["sync", "--timeout", "60000"]);
  const verdicts = await device(["verdicts", "--wait", "60000"]);
  expect(verdicts.find((v) => v.id === sale!.id)).toMatchObject({ kind: "sale", status: "accepted" });

  // The auditor's tool finds the embedded (here: the test's) database the same way.
  const verify = await tool("server/cli/verify-journal.ts", []);
  expect(verify.code, verify.stderr).toBe(0);
  expect(verify.stdout).toContain("team corner-shop: 2 records, chain intact");
}, 300_000);
