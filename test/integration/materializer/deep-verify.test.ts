/**
 * `verify-journal --deep` (issue 16): on a messy history (oversell, overpayment, a void with a
 * refund due, a deferred payment, an inactive and an unknown item, an item made by a sale line,
 * invalid entries) every verdict replays and every projection matches; an edited projection, and
 * a journal record changed and resealed, are each named (collection, id, field, expected, found).
 * And the export of a period (`npm run export`): files whose manifest an auditor's tool checks.
 */
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import * as independent from "../../helpers/independent-audit.js";
import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CatalogDoc } from "../../../shared/docs.js";
import { entryHash } from "../../../shared/domain/index.js";
import type { JournalRecord } from "../../../server/materializer/collections.js";
import { recordHashOf } from "../../../server/materializer/journal.js";
import { addItem, Device, eventually, sale, settled, startShop, type Shop } from "./harness.js";

const run = promisify(execFile);
const repoRoot = path.resolve(import.meta.dirname, "../../..");

let shop: Shop;
const devices: Device[] = [];
let ids: Record<string, string> = {};

beforeAll(async () => {
  shop = await startShop(undefined, { deferWaitSeconds: 3600 });
  await addItem(shop, "tea", "Tea", 300);
  await addItem(shop, "cake", "Cake", 450);
  await addItem(shop, "old", "Old stock", 100);
  const catalog = await shop.admin.repo.find<CatalogDoc>(shop.team.catalogUrl);
  catalog.change((d) => {
    (d.items.old as { active: boolean }).active = false;
  });
  const a = new Device(shop, "till-a");
  const b = new Device(shop, "till-b");
  devices.push(a, b);
  const day = (d: number, s: number): string => `2026-11-${d}T10:00:${String(s).padStart(2, "0")}.000Z`;
  ids = {
    stockTea: a.write({ kind: "stock", item: "tea", delta: 4, reason: "delivery", at: day(20, 0) }),
    stockCake: a.write({ kind: "stock", item: "cake", delta: 2, reason: "baked", at: day(20, 1) }),
    s1: a.write({ ...sale("tea", 3, 300, { customer: "c1", paid: 100 }), at: day(20, 2) }),
    oversell: a.write({ ...sale("tea", 2, 300), at: day(20, 3) }),
    s2: a.write({ ...sale("cake", 1, 450, { customer: "c2", paid: 450 }), at: day(21, 0) }),
    inactive: a.write({ ...sale("old", 1, 100), at: day(21, 1) }),
    unknown: a.write({ ...sale("ghost", 1, 100), at: day(21, 2) }),
    made: a.write({ kind: "sale", lines: [{ item: "scarf", quantity: 1, price: 900, name: "Scarf" }], subtotal: 900, tax: 0, discount: 0, total: 900, customer: "c1", paid: 0, at: day(21, 3) }),
    pay1: a.write({ kind: "payment", invoice: "", amount: 0, at: day(21, 4) }),
    invalid: a.write({ kind: "refund", amount: 5, at: day(21, 5) }),
    stockDown: a.write({ kind: "stock", item: "cake", delta: -5, reason: "count", at: day(21, 6) }),
  };
  // Payments and a void whose sale the server has not seen yet: b comes online first.
  ids.late = "late-sale-1";
  ids.early = b.write({ kind: "payment", invoice: ids.late, amount: 200, at: day(22, 0) });
  ids.over = b.write({ kind: "payment", invoice: ids.s1!, amount: 5000, at: day(22, 1) });
  ids.partial = b.write({ kind: "payment", invoice: ids.s1!, amount: 300, at: day(22, 2) });
  ids.void = b.write({ kind: "void", invoice: ids.s2!, reason: "returned", at: day(22, 3) });
  await a.online();
  await b.online();
  await settled(shop, Object.entries(ids).filter(([k]) => k !== "late" && k !== "early").map(([, v]) => v));
  await eventually(async () => (await shop.materializer.c.deferred.countDocuments({ team: shop.team.team })) === 1, "the early payment deferred", 20_000);
  a.write({ id: ids.late, ...sale("cake", 1, 450, { customer: "c2" }), at: day(22, 4) });
  await settled(shop, [ids.late, ids.early]);
});

afterAll(async () => {
  for (const d of devices) await d.close();
  await shop?.close();
});

async function cli(script: string, ...args: string[]): Promise<{ code: number; out: string }> {
  const env = { ...process.env, MONGODB_URI: shop.relay.db.uri, MONGODB_DB: shop.relay.db.dbName, DATA_DIR: shop.relay.dataDir };
  try {
    const { stdout } = await run(process.execPath, ["--import", "tsx", script, ...args], { cwd: repoRoot, env });
    return { code: 0, out: stdout };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, out: e.stdout + e.stderr };
  }
}

async function deepCli(): Promise<{ code: number; out: string }> {
  return cli("server/cli/verify-journal.ts", "--deep", "--team", shop.team.team);
}

describe("deep verification", () => {
  it("a messy history replays and every projection matches", async () => {
    const c = shop.materializer.c;
    const team = shop.team.team;
    const statuses = new Map((await c.journal.find({ team }).toArray()).map((r) => [r.entryId, `${r.status}${r.reason ? `: ${r.reason}` : ""}`]));
    // The history is as messy as intended.
    expect(statuses.get(ids.oversell!)).toMatch(/^rejected: insufficient stock/);
    expect(statuses.get(ids.inactive!)).toBe("rejected: item old is not active");
    expect(statuses.get(ids.unknown!)).toBe("rejected: Item not found for sale: ghost");
    expect(statuses.get(ids.over!)).toBe("rejected: Payment exceeds outstanding balance");
    expect(statuses.get(ids.early!)).toBe("accepted");
    expect(statuses.get(ids.invalid!)).toMatch(/^invalid/);
    expect((await c.invoices.findOne({ team, id: ids.s2! }))).toMatchObject({ status: "void", refundDue: 450 });
    const out = await deepCli();
    expect(out.out).toContain(`deep check of ${statuses.size} records: 0 record problem(s), 0 projection difference(s): all consistent`);
    expect(out.code).toBe(0);
  });

  it("names each edited projection: collection, id, field, expected, found", async () => {
    const c = shop.materializer.c;
    const team = shop.team.team;
    const summary = (await c.summaries.findOne({ team, day: "2026-11-20" }))!;
    const payment = (await c.payments.findOne({ team, id: ids.partial! }))!;
    const level = (await c.stock.findOne({ team, item: "tea" }))!;
    await c.summaries.updateOne({ _id: summary._id }, { $set: { revenue: summary.revenue + 1000 } });
    await c.payments.deleteOne({ _id: payment._id });
    await c.stock.updateOne({ _id: level._id }, { $set: { level: level.level + 7 } });
    try {
      const out = await deepCli();
      expect(out.code).toBe(1);
      expect(out.out).toContain(`PROJECTION daily_summaries ${summary._id} revenue: expected ${summary.revenue}, found ${summary.revenue + 1000}`);
      expect(out.out).toContain(`PROJECTION payments ${payment._id} (document): expected "present", found "missing"`);
      expect(out.out).toContain(`PROJECTION stock_levels ${level._id} level: expected ${level.level}, found ${level.level + 7}`);
      expect(out.out).toContain("3 projection difference(s)");
      // The chain itself is intact: only the deep check sees this.
      expect(out.out).toContain("chain intact");
    } finally {
      await c.summaries.replaceOne({ _id: summary._id }, summary);
      await c.payments.insertOne(payment);
      await c.stock.replaceOne({ _id: level._id }, level);
    }
    expect((await deepCli()).code).toBe(0);
  });

  it("names a journal record whose entry and effects were changed and the chain resealed", async () => {
    const c = shop.materializer.c;
    const team = shop.team.team;
    const original = await c.journal.find({ team }).sort({ seq: 1 }).toArray();
    const target = original.find((r) => r.entryId === ids.partial)!;
    // Payment of 300 made 30, hash of the entry recomputed, effects left; the chain resealed from there.
    let prev = "";
    const forged: JournalRecord[] = original.map((r) => {
      if (r.seq < target.seq) {
        prev = r.recordHash;
        return r;
      }
      const { recordHash: _old, ...rest } = r;
      let changed = { ...rest, prevHash: prev };
      if (r.seq === target.seq && r.entry?.kind === "payment") {
        const entry = { ...r.entry, amount: 30 };
        changed = { ...changed, entry, hash: entryHash(entry) };
      }
      prev = recordHashOf(changed);
      return { ...changed, recordHash: prev };
    });
    await c.journal.deleteMany({ team });
    await c.journal.insertMany(forged);
    try {
      const out = await deepCli();
      expect(out.code).toBe(1);
      expect(out.out).toContain("chain intact");
      expect(out.out).toContain(`RECORD seq ${target.seq} ${target._id}: effects: the rules give`);
    } finally {
      await c.journal.deleteMany({ team });
      await c.journal.insertMany(original);
    }
  });

  it("exports a period as JSON Lines and CSV with a manifest of counts and hashes an auditor can check", async () => {
    const c = shop.materializer.c;
    const team = shop.team.team;
    const out = await mkdtemp(path.join(os.tmpdir(), "export-test-"));
    try {
      const res = await cli("server/cli/export.ts", "--team", team, "--from", "2026-11-21", "--to", "2026-11-21", "--out", out);
      expect(res.code).toBe(0);
      const manifest = JSON.parse(await readFile(path.join(out, "manifest.json"), "utf8")) as {
        team: string; journal: { firstSeq: number; lastSeq: number; prevHash: string; headHash: string };
        files: { name: string; rows: number; sha256: string }[];
      };
      expect(manifest.team).toBe(team);
      const lines = async (name: string): Promise<string[]> => (await readFile(path.join(out, name), "utf8")).split("\n").filter((l) => l !== "");
      for (const f of manifest.files) {
        const bytes = await readFile(path.join(out, f.name));
        expect(createHash("sha256").update(bytes).digest("hex"), f.name).toBe(f.sha256);
        expect((await lines(f.name)).length - (f.name.endsWith(".csv") ? 1 : 0), f.name).toBe(f.rows);
      }
      // The journal run checks alone, from the prevHash the manifest gives.
      const journal = (await lines("journal.jsonl")).map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(journal[0]!.prevHash).toBe(manifest.journal.prevHash);
      expect(journal.at(-1)!.recordHash).toBe(manifest.journal.headHash);
      journal.forEach((r, i) => {
        expect(r.seq).toBe(manifest.journal.firstSeq + i);
        expect(independent.recordHash(r)).toBe(r.recordHash);
        if (i > 0) expect(r.prevHash).toBe(journal[i - 1]!.recordHash);
      });
      const ofDay = (await c.journal.find({ team }).toArray()).filter((r) => r.entry?.at.startsWith("2026-11-21"));
      expect(ofDay.length).toBeGreaterThan(3);
      for (const r of ofDay) expect(journal.map((j) => j.entryId)).toContain(r.entryId);
      // Projections of the period, and as CSV.
      const invoices = await c.invoices.find({ team, day: "2026-11-21" }).toArray();
      expect(manifest.files.find((f) => f.name === "invoices.jsonl")!.rows).toBe(invoices.length);
      const csv = await lines("invoices.csv");
      expect(csv[0]).toBe("id,status,total,paid,outstanding,initialPaid,refundDue,customer,at,day,device,user,lines,seq");
      expect(csv.slice(1).map((l) => l.split(",")[0]).sort()).toEqual(invoices.map((i) => i.id).sort());
      expect((await lines("daily_summaries.jsonl")).map((l) => (JSON.parse(l) as { day: string }).day)).toEqual(["2026-11-21"]);
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });
});
