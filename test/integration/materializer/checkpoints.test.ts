/**
 * Issue 16: the journal anchored outside the database. Someone with write access to MongoDB
 * (but not the service key) rewrites and reseals the chain, deletes its tail, or puts back an
 * earlier copy of the database: `verify-journal` names each, against the checkpoints the
 * database holds, one a device exported, and the one the status document kept.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Device as ClientDevice } from "../../../client/device.js";
import { openDevice } from "../../../client/node.js";
import { parseCheckpoint, type Checkpoint } from "../../../shared/checkpoint.js";
import type { StatusDoc } from "../../../shared/docs.js";
import { checkpointSignatureValid } from "../../../server/audit/signer.js";
import type { JournalCheckpointDoc, JournalRecord } from "../../../server/materializer/collections.js";
import { recordHashOf } from "../../../server/materializer/journal.js";
import { Materializer } from "../../../server/materializer/materializer.js";
import { databaseInfo } from "../../helpers/db.js";
import { addItem, anchoringOf, Device, eventually, sale, settled, startShop, type Shop } from "./harness.js";

const run = promisify(execFile);
const repoRoot = path.resolve(import.meta.dirname, "../../..");
const POLICY = { everyRecords: 5, everyMs: 400 };

let shop: Shop;
let device: Device;
let tmp: string;
let publicKeyPem: string;
/** A real device (client/) that keeps the checkpoints it sees. */
let tablet: ClientDevice | undefined;

beforeAll(async () => {
  shop = await startShop(undefined, {}, { checkpoints: POLICY, deferCheckMs: 300 });
  publicKeyPem = (await anchoringOf(shop.relay, POLICY)).publicKeyPem;
  tmp = await mkdtemp(path.join(os.tmpdir(), "checkpoints-test-"));
  await addItem(shop, "tea", "Tea", 300);
  device = new Device(shop, "till-a");
  const ids = [device.write({ kind: "stock", item: "tea", delta: 100, reason: "delivery", at: "2026-11-20T08:00:00.000Z" })];
  for (let i = 0; i < 14; i++) ids.push(device.write({ ...sale("tea", 1, 300, { paid: i % 2 ? 300 : 0 }), at: `2026-11-20T10:00:${String(i).padStart(2, "0")}.000Z` }));
  await device.online();
  await settled(shop, ids);
  await headAnchored();
});

afterAll(async () => {
  await tablet?.close();
  await device?.close();
  await shop?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

const team = (): string => shop.team.team;
const journal = () => shop.materializer.c.journal;
const stored = () => shop.materializer.c.journalCheckpoints;

/** Waits until a checkpoint anchors the journal's last record (the time-based one comes within ~1 s). */
async function headAnchored(): Promise<Checkpoint> {
  let cp: JournalCheckpointDoc | null = null;
  await eventually(async () => {
    const head = await journal().find({ team: team() }).sort({ seq: -1 }).limit(1).next();
    cp = await stored().find({ team: team(), source: "signed" }).sort({ seq: -1 }).limit(1).next();
    return head !== null && cp !== null && cp.seq === head.seq && cp.head === head.recordHash;
  }, "a checkpoint of the head", 30_000);
  return cp!;
}

async function publishedCheckpoint(): Promise<Checkpoint | string | undefined> {
  const status = await shop.admin.repo.find<StatusDoc>(shop.team.statusUrl);
  const raw = status.doc().checkpoint;
  return raw === undefined ? undefined : parseCheckpoint(raw);
}

async function verifyCli(...extra: string[]): Promise<{ code: number; out: string }> {
  const env = { ...process.env, MONGODB_URI: shop.relay.db.uri, MONGODB_DB: shop.relay.db.dbName, DATA_DIR: shop.relay.dataDir };
  try {
    const { stdout } = await run(process.execPath, ["--import", "tsx", "server/cli/verify-journal.ts", "--team", team(), ...extra], { cwd: repoRoot, env });
    return { code: 0, out: stdout };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, out: e.stdout + e.stderr };
  }
}

async function allRecords(): Promise<JournalRecord[]> {
  return journal().find({ team: team() }).sort({ seq: 1 }).toArray();
}

/** Puts the journal back as it was (each tamper below undoes itself this way). */
async function restore(records: readonly JournalRecord[]): Promise<void> {
  await journal().deleteMany({ team: team() });
  await journal().insertMany([...records]);
}

describe("signed journal checkpoints", () => {
  it("signs checkpoints of the head, stores them and publishes the latest in the status document", async () => {
    const cps = await stored().find({ team: team() }).sort({ seq: 1 }).toArray();
    expect(cps.length).toBeGreaterThanOrEqual(1);
    for (const cp of cps) expect(checkpointSignatureValid(cp, publicKeyPem)).toBe(true);
    const latest = cps.at(-1)!;
    await eventually(async () => {
      const p = await publishedCheckpoint();
      return typeof p === "object" && p.seq === latest.seq && p.sig === latest.sig;
    }, "the latest checkpoint in the status document", 20_000);
    const out = await verifyCli();
    expect(out.code).toBe(0);
    expect(out.out).toContain(`chain intact, head seq ${latest.seq}`);
    expect(out.out).toContain(`anchored by a signed checkpoint up to seq ${latest.seq}`);
  });

  it("names a record changed and the chain resealed after it (the plain chain check passes)", async () => {
    const original = await allRecords();
    const k = 3;
    // The rewrite: record k's reason changed, its hash fixed, and every later record sealed again.
    let prev = original[k - 2]!.recordHash;
    const forged = original.map((r) => {
      if (r.seq < k) return r;
      const { recordHash: _old, ...rest } = r;
      const changed = { ...rest, prevHash: prev, ...(r.seq === k ? { decidedAt: "2026-01-01T00:00:00.000Z" } : {}) };
      prev = recordHashOf(changed);
      return { ...changed, recordHash: prev };
    });
    await restore(forged);
    try {
      const out = await verifyCli();
      expect(out.code).toBe(1);
      expect(out.out).not.toContain("content does not match"); // the chain itself is consistent
      const latest = (await stored().find({ team: team() }).sort({ seq: -1 }).limit(1).next())!;
      expect(out.out).toContain(`RESEALED seq ${latest.seq}: journal rewritten and resealed`);
    } finally {
      await restore(original);
    }
    expect((await verifyCli()).code).toBe(0);
  });

  it("names a deleted tail", async () => {
    const original = await allRecords();
    const last = original.at(-1)!;
    await journal().deleteMany({ team: team(), seq: { $gt: last.seq - 2 } });
    try {
      const out = await verifyCli();
      expect(out.code).toBe(1);
      expect(out.out).toContain(`TAIL-DELETED seq ${last.seq}: journal tail deleted`);
      expect(out.out).toContain(`past the journal's last, seq ${last.seq - 2}`);
    } finally {
      await restore(original);
    }
  });

  it("names a forged checkpoint", async () => {
    const real = (await stored().find({ team: team() }).sort({ seq: -1 }).limit(1).next())!;
    const fake: JournalCheckpointDoc = { ...real, _id: `${real._id}-forged`, seq: real.seq + 1 };
    await stored().insertOne(fake);
    try {
      const out = await verifyCli();
      expect(out.code).toBe(1);
      expect(out.out).toContain(`FORGED-CHECKPOINT seq ${real.seq + 1}`);
    } finally {
      await stored().deleteOne({ _id: fake._id });
    }
  });

  // Last: it replaces the shop's materializer.
  it("names a database rolled back to an earlier copy, by a device's checkpoint and by the status document's", async () => {
    // The earlier copy: journal and checkpoints as they are now.
    const copy = { records: await allRecords(), checkpoints: await stored().find({ team: team() }).toArray() };
    const tabletDir = path.join(tmp, "tablet");
    const tabletToken = shop.relay.token({ sub: "clerk", team: team(), role: "member", device: "tablet" });
    tablet = await openDevice({ serverUrl: shop.relay.service.url, token: tabletToken, rootUrl: shop.team.rootUrl, deviceId: "tablet", dataDir: tabletDir });
    await eventually(() => tablet!.checkpoints().length >= 1, "the tablet holding the current checkpoint", 30_000);
    const more = [device.write({ ...sale("tea", 2, 300), at: "2026-11-21T09:00:00.000Z" }), device.write({ kind: "stock", item: "tea", delta: 3, reason: "count", at: "2026-11-21T09:00:01.000Z" })];
    await settled(shop, more);
    const later = await headAnchored();
    // What a device holds (it keeps every checkpoint it saw), exported by `npm run device -- checkpoint`.
    await eventually(async () => tablet!.checkpoints().some((c) => c.seq === later.seq && c.sig === later.sig), "the tablet holding the later checkpoint", 30_000);
    expect(tablet.checkpoints().length).toBeGreaterThanOrEqual(2);
    await tablet.close();
    tablet = undefined;
    const config = { server: shop.relay.service.url, token: tabletToken, device: "tablet", root: shop.team.rootUrl };
    await writeFile(path.join(tabletDir, "device.json"), JSON.stringify(config));
    const { stdout } = await run(process.execPath, ["--import", "tsx", "client/cli.ts", "checkpoint", "--data", tabletDir, "--offline"], { cwd: repoRoot });
    const held = JSON.parse(stdout.trim()) as { team: string; checkpoints: Checkpoint[] };
    expect(held.team).toBe(team());
    expect(held.checkpoints.map((c) => c.seq)).toContain(later.seq);
    const exported = path.join(tmp, "device-checkpoints.json");
    await writeFile(exported, stdout);

    await shop.materializer.stop();
    await restore(copy.records);
    await stored().deleteMany({ team: team() });
    await stored().insertMany(copy.checkpoints);

    // The copy is consistent in itself: only a witness from outside tells.
    const alone = await verifyCli();
    expect(alone.code).toBe(0);
    const withDevice = await verifyCli("--checkpoint", exported);
    expect(withDevice.code).toBe(1);
    expect(withDevice.out).toContain(`ROLLED-BACK seq ${later.seq}: database rolled back`);
    expect(withDevice.out).toContain(`past the journal's last record, seq ${copy.records.at(-1)!.seq}`);

    // A materializer starting on the copy finds the status document's checkpoint missing and keeps it.
    const next = new Materializer({
      db: shop.relay.db.db, client: shop.relay.db.client, features: databaseInfo().features, repo: shop.service.repo,
      logger: pino({ level: "silent" }), teamPollMs: 200, anchor: await anchoringOf(shop.relay, POLICY),
    });
    try {
      await next.start();
      await eventually(async () => (await stored().countDocuments({ team: team(), source: "witness" })) === 1, "the witness kept", 30_000);
    } finally {
      await next.stop();
    }
    const byWitness = await verifyCli();
    expect(byWitness.code).toBe(1);
    expect(byWitness.out).toContain(`ROLLED-BACK seq ${later.seq}`);
  });
});
