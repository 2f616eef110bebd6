/**
 * What an auditor relies on: a tamper-evident journal, projections that a rebuild from the
 * journal reproduces exactly, changed entries reported, and hostile entries quarantined.
 */
import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Document } from "mongodb";
import { JOURNAL_PROJECTIONS } from "../../../server/materializer/collections.js";
import { rebuildTeam } from "../../../server/materializer/rebuild.js";
import { Materializer } from "../../../server/materializer/materializer.js";
import { pino } from "pino";
import { databaseInfo } from "../../helpers/db.js";
import { addItem, Device, eventually, sale, settled, startShop, type Shop } from "./harness.js";

const run = promisify(execFile);
const repoRoot = path.resolve(import.meta.dirname, "../../..");

let shop: Shop;
const devices: Device[] = [];
let written: string[] = [];

beforeAll(async () => {
  shop = await startShop();
  await addItem(shop, "tea", "Tea", 300);
  await addItem(shop, "cake", "Cake", 450);
  const a = new Device(shop, "till-a");
  const b = new Device(shop, "till-b");
  devices.push(a, b);
  written.push(a.write({ kind: "stock", item: "tea", delta: 20, reason: "delivery", at: "2026-11-20T08:00:00.000Z" }));
  written.push(a.write({ kind: "stock", item: "cake", delta: 5, reason: "baked", at: "2026-11-20T08:00:01.000Z" }));
  for (let i = 0; i < 12; i++) {
    const day = 20 + (i % 3);
    const inv = a.write({ ...sale(i % 2 ? "tea" : "cake", 1 + (i % 3), i % 2 ? 300 : 450, { customer: `c${i % 4}`, paid: i % 5 === 0 ? 100 : 0 }), at: `2026-11-${day}T10:00:${String(i).padStart(2, "0")}.000Z` });
    written.push(inv);
    if (i % 2 === 0) written.push(b.write({ kind: "payment", invoice: inv, amount: 100, at: `2026-11-${day}T12:00:${String(i).padStart(2, "0")}.000Z` }));
    if (i === 7) written.push(b.write({ kind: "void", invoice: inv, reason: "wrong item", at: `2026-11-${day}T13:00:00.000Z` }));
  }
  await a.online();
  await b.online();
  await settled(shop, written);
});

afterAll(async () => {
  for (const d of devices) await d.close();
  await shop.close();
});

async function verifyCli(): Promise<{ code: number; out: string }> {
  const env = { ...process.env, MONGODB_URI: shop.relay.db.uri, MONGODB_DB: shop.relay.db.dbName, DATA_DIR: shop.relay.dataDir };
  try {
    const { stdout } = await run(process.execPath, ["--import", "tsx", "server/cli/verify-journal.ts", "--team", shop.team.team], { cwd: repoRoot, env });
    return { code: 0, out: stdout };
  } catch (err) {
    const e = err as { code: number; stdout: string };
    return { code: e.code, out: e.stdout };
  }
}

async function snapshot(): Promise<Record<string, Document[]>> {
  const out: Record<string, Document[]> = {};
  const c = shop.materializer.c;
  for (const name of [...JOURNAL_PROJECTIONS, "items"] as const) {
    out[name] = await c[name].find({ team: shop.team.team }).sort({ _id: 1 }).toArray();
  }
  return out;
}

describe("journal and projections", () => {
  it("journals every entry once, with a gapless sequence and a hash chain", async () => {
    const c = shop.materializer.c;
    const records = await c.journal.find({ team: shop.team.team }).sort({ seq: 1 }).toArray();
    expect(records.map((r) => r.seq)).toEqual(records.map((_, i) => i + 1));
    expect(new Set(records.map((r) => r.entryId))).toEqual(new Set(written));
    for (const [i, r] of records.entries()) {
      expect(r.prevHash).toBe(i === 0 ? "" : records[i - 1]!.recordHash);
      expect(r.provenance.segment).not.toBe("");
      expect(r.provenance.change).toMatch(/^[0-9a-f]{64}$/);
    }
    const verified = await verifyCli();
    expect(verified.code).toBe(0);
    expect(verified.out).toContain(`${records.length} records, chain intact`);
  });

  it("keeps daily summaries and customer balances consistent with invoices", async () => {
    const c = shop.materializer.c;
    const team = shop.team.team;
    const invoices = await c.invoices.find({ team }).toArray();
    const payments = await c.payments.find({ team }).toArray();
    for (const s of await c.summaries.find({ team }).toArray()) {
      const ofDay = invoices.filter((i) => i.day === s.day);
      expect(s.salesCount).toBe(ofDay.filter((i) => i.status !== "void").length);
      expect(s.revenue).toBe(ofDay.filter((i) => i.status !== "void").reduce((n, i) => n + i.total, 0));
      expect(s.paymentsReceived).toBe(
        ofDay.reduce((n, i) => n + i.initialPaid, 0) + payments.filter((p) => p.day === s.day).reduce((n, p) => n + p.amount, 0),
      );
    }
    const voided = invoices.filter((i) => i.status === "void");
    expect(voided).toHaveLength(1);
    for (const b of await c.balances.find({ team }).toArray()) {
      const open = invoices.filter((i) => i.customer === b.customer && i.status === "open");
      expect(b.outstanding).toBe(open.reduce((n, i) => n + i.outstanding, 0));
    }
  });

  it("a rebuild from the journal gives the same collections as incremental processing", async () => {
    const before = await snapshot();
    expect(before.invoices!.length).toBeGreaterThan(5);
    const progress: number[] = [];
    await rebuildTeam(shop.materializer.c, shop.team.team, (done) => progress.push(done));
    expect(progress.at(-1)).toBe(await shop.materializer.c.journal.countDocuments({ team: shop.team.team }));
    expect(await snapshot()).toEqual(before);
  });

  it("reports an entry changed after its verdict as a tamper event and keeps the decided content", async () => {
    const c = shop.materializer.c;
    const team = shop.team.team;
    const target = written[2]!;
    const decided = await c.journal.findOne({ team, entryId: target });
    const device = devices[0]!;
    device.segment.change((d) => {
      (d.entries[target] as { lines: { quantity: number }[] }).lines[0]!.quantity = 99;
    });
    await eventually(async () => (await c.tampers.countDocuments({ team, entryId: target })) === 1, "tamper event", 20_000);
    const event = await c.tampers.findOne({ team, entryId: target });
    expect(event).toMatchObject({ decidedHash: decided!.hash, device: "till-a" });
    expect(event!.newHash).not.toBe(decided!.hash);
    expect(await c.journal.findOne({ team, entryId: target })).toEqual(decided);
  });

  it("quarantines malformed entries with the reason and goes on deciding the rest", async () => {
    const c = shop.materializer.c;
    const team = shop.team.team;
    const d = devices[1]!;
    const bad = [
      d.write({ kind: "refund", amount: 5 }),
      d.write({ kind: "payment", invoice: written[2]!, amount: 1.5 }),
      d.write({ kind: "sale", lines: "lots", subtotal: 1, tax: 0, discount: 0, total: 1, customer: null, paid: 0 }),
    ];
    const good = d.write({ kind: "stock", item: "tea", delta: 1, reason: "found one", at: "2026-11-22T18:00:00.000Z" });
    await settled(shop, [...bad, good]);
    const quarantined = await c.quarantine.find({ team, entryId: { $in: bad } }).toArray();
    expect(quarantined).toHaveLength(3);
    for (const q of quarantined) expect(q.reason).toMatch(new RegExp(`^entry ${q.entryId}: `));
    expect((await c.journal.findOne({ team, entryId: good }))?.status).toBe("accepted");
    await eventually(async () => (await d.verdict(bad[0]!))?.status === "invalid", "invalid verdict on the device", 20_000);
  });

  it("verify-journal names the record whose field was changed in MongoDB", async () => {
    const c = shop.materializer.c;
    const team = shop.team.team;
    const victim = await c.journal.findOne({ team, seq: 5 });
    await c.journal.updateOne({ _id: victim!._id }, { $set: { reason: "edited by hand" } });
    const out = await verifyCli();
    expect(out.code).toBe(1);
    expect(out.out).toContain(`seq 5 record ${victim!._id}: content does not match recordHash`);
    await c.journal.replaceOne({ _id: victim!._id }, victim!);
    expect((await verifyCli()).code).toBe(0);
  });

  // Last: it stops the shop's materializer for one of its own.
  it("rebuilds at start the projections of a database from before aggregate parts", async () => {
    const c = shop.materializer.c;
    const team = shop.team.team;
    const before = await snapshot();
    expect(before.summaries!.length).toBeGreaterThan(0);
    await shop.materializer.stop();
    // What an older version left: no parts, no marker, and its own summaries.
    await c.parts.deleteMany({ team });
    await c.summaries.updateMany({ team }, { $set: { revenue: -1 } });
    await c.teamState.updateOne({ _id: team }, { $unset: { aggregates: "" } });
    const next = new Materializer({
      db: shop.relay.db.db, client: shop.relay.db.client, features: databaseInfo().features, repo: shop.service.repo,
      logger: pino({ level: "silent" }), teamPollMs: 200,
    });
    try {
      await next.start();
      await eventually(async () => (await c.teamState.findOne({ _id: team }))?.aggregates === "parts", "the rebuild at start", 30_000);
      expect(await snapshot()).toEqual(before);
    } finally {
      await next.stop();
    }
  });
});

