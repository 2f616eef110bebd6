/**
 * Closed periods (issue 16), end to end on a running relay, API and materializer with the real
 * database: only the team's admins close, auditors read; closing twice changes nothing; entries
 * arriving late change no closed summary and the summaries still add up to the invoices and
 * payments; a rebuild gives the same collections; the deep verification finds everything
 * consistent, and names a closed day's summary that changed; the closeAfterHours setting closes.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { Ajv2020 } from "ajv/dist/2020.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { StatusDoc } from "../../../shared/docs.js";
import { dayOf, nextDay } from "../../../shared/domain/index.js";
import { deepVerify } from "../../../server/audit/deep.js";
import { exportTeam } from "../../../server/audit/export.js";
import type { ClosedPeriodDoc, DailySummaryDoc } from "../../../server/materializer/collections.js";
import { rebuildTeam } from "../../../server/materializer/rebuild.js";
import { addItem, Device, eventually, sale, settled } from "../materializer/harness.js";
import { startApiShop, type ApiShop } from "./harness.js";

let shop: ApiShop;
const devices: Device[] = [];
const ids: Record<string, string> = {};
const at = (d: number, s: number): string => `2026-11-${d}T10:00:${String(s).padStart(2, "0")}.000Z`;
const CLOSED = "2026-11-20";
const FIRST_OPEN = "2026-11-21";

interface CloseAnswer {
  status: string;
  close: Omit<ClosedPeriodDoc, "_id" | "team">;
}

beforeAll(async () => {
  // Checkpoints only by count (or when a day closes): one at the first batch, then at each close.
  shop = await startApiShop({ deferWaitSeconds: 3600 }, { deferCheckMs: 200, checkpoints: { everyRecords: 1000, everyMs: 3_600_000 } });
  await addItem(shop, "tea", "Tea", 300);
  const a = new Device(shop, "till-a");
  devices.push(a);
  ids.stock = a.write({ kind: "stock", item: "tea", delta: 100, reason: "delivery", at: at(19, 0) });
  ids.open20 = a.write({ ...sale("tea", 3, 300, { customer: "c1", paid: 100 }), at: at(20, 1) });
  ids.voided20 = a.write({ ...sale("tea", 2, 300), at: at(20, 2) });
  ids.open21 = a.write({ ...sale("tea", 1, 300), at: at(21, 0) });
  await a.online();
  await settled(shop, Object.values(ids));
}, 120_000);

afterAll(async () => {
  for (const d of devices) await d.close();
  await shop?.close();
});

const team = (): string => shop.team.team;

/** The answer's body validates against the schema /api/openapi.json declares for it. */
async function documented(method: string, template: string, answer: { status: number; body: unknown }): Promise<void> {
  const openapi = (await shop.call<{ paths: Record<string, Record<string, { responses: Record<string, { content: { "application/json": { schema: object } } }> }>> }>("GET", "/openapi.json")).body;
  const schema = openapi.paths[`/api${template}`]?.[method]?.responses[String(answer.status)]?.content["application/json"].schema;
  expect(schema, `${method} ${template} ${answer.status} documented`).toBeDefined();
  const validate = new Ajv2020({ strict: false }).compile(schema!);
  expect(validate(answer.body), JSON.stringify(validate.errors)).toBe(true);
}
const summaries = async (): Promise<DailySummaryDoc[]> => shop.materializer.c.summaries.find({ team: team() }).sort({ day: 1 }).toArray();

describe("closing a day", () => {
  it("only the team's admins close; auditors and admins read; members and other teams are refused", async () => {
    const path = `/teams/${team()}/periods`;
    const otherAdmin = shop.relay.token({ sub: "mallory", team: "other-team", role: "admin" });
    for (const token of [shop.member, shop.auditor, otherAdmin]) {
      const r = await shop.call("POST", `${path}/close`, { token, body: { through: CLOSED } });
      expect(r.status, r.raw).toBe(403);
    }
    for (const token of [shop.member, otherAdmin]) expect((await shop.call("GET", path, { token })).status).toBe(403);
    expect((await shop.call("POST", `${path}/close`, { body: { through: CLOSED } })).status).toBe(401);
    const tomorrow = nextDay(dayOf(new Date().toISOString()));
    for (const [through, message] of [
      ["2026-02-30", "body.through: expected a day as YYYY-MM-DD"],
      [{ $gt: "" }, "body.through: expected a day as YYYY-MM-DD"],
      [tomorrow, `body.through: ${tomorrow} has not ended yet`],
    ] as const) {
      const r = await shop.call<{ error: { code: string; message: string } }>("POST", `${path}/close`, { token: shop.adminToken, body: { through } });
      expect(r.status).toBe(400);
      expect(r.body.error.message).toContain(message);
    }
    // Nothing was asked by the refused calls.
    expect(await shop.materializer.c.closeRequests.countDocuments({})).toBe(0);
    expect(await shop.materializer.c.closedPeriods.countDocuments({ team: team() })).toBe(0);
  });

  it("an admin closes through a day: recorded with the journal head, who and the summaries it froze; twice is once", async () => {
    const c = shop.materializer.c;
    const before = await summaries();
    const head = (await c.journal.find({ team: team() }).sort({ seq: -1 }).limit(1).next())!;
    const r = await shop.call<CloseAnswer>("POST", `/teams/${team()}/periods/close`, { token: shop.adminToken, body: { through: CLOSED } });
    expect(r.status, r.raw).toBe(200);
    expect(r.body.status).toBe("closed");
    expect(r.body.close).toMatchObject({ through: CLOSED, previousThrough: null, seq: head.seq, head: head.recordHash, closedBy: "alice", cause: "admin" });
    const strip = ({ _id, team: _t, ...figures }: DailySummaryDoc): Record<string, unknown> => figures;
    expect(r.body.close.summaries).toEqual(before.filter((s) => s.day <= CLOSED).map(strip));
    await documented("post", "/teams/{team}/periods/close", r);

    for (const through of [CLOSED, "2026-11-19"]) {
      const again = await shop.call<CloseAnswer>("POST", `/teams/${team()}/periods/close`, { token: shop.adminToken, body: { through } });
      expect(again.status).toBe(200);
      expect(again.body).toEqual({ team: team(), through, status: "already-closed", close: r.body.close });
      await documented("post", "/teams/{team}/periods/close", again);
    }
    // The admin CLI says the same (it reaches the service with a service token from the data folder).
    const cli = await promisify(execFile)(process.execPath, ["--import", "tsx", "server/cli/admin.ts", "close-day", "--team", team(), "--through", CLOSED, "--json"], {
      cwd: path.resolve(import.meta.dirname, "../../.."),
      env: { ...process.env, DATA_DIR: shop.relay.dataDir, SERVICE_URL: shop.relay.service.url },
    });
    expect(JSON.parse(cli.stdout)).toEqual({ team: team(), through: CLOSED, status: "already-closed", close: r.body.close });
    expect(await c.closedPeriods.countDocuments({ team: team() })).toBe(1);
    expect(await c.closeRequests.countDocuments({ team: team() })).toBe(0);

    const read = await shop.call<{ closedThrough: string; closes: unknown[]; pending: unknown[] }>("GET", `/teams/${team()}/periods`, { token: shop.auditor });
    expect(read.status).toBe(200);
    expect(read.body).toMatchObject({ team: team(), closedThrough: CLOSED, closes: [r.body.close], pending: [] });
    await documented("get", "/teams/{team}/periods", read);
    // Devices see it in the status document.
    const status = await shop.admin.repo.find<StatusDoc>(shop.team.statusUrl);
    await eventually(() => status.doc().closedThrough === CLOSED, "closedThrough published", 20_000);
  });

  it("late arrivals change no closed summary, are marked late, and all days still add up", async () => {
    const c = shop.materializer.c;
    const closed = (await summaries()).filter((s) => s.day <= CLOSED);
    const b = new Device(shop, "till-b");
    devices.push(b);
    const late = {
      sale: b.write({ ...sale("tea", 1, 300, { paid: 300 }), at: at(20, 30) }),
      payOnClosed: b.write({ kind: "payment", invoice: ids.open20!, amount: 200, at: at(21, 31) }),
      latePayment: b.write({ kind: "payment", invoice: ids.open21!, amount: 100, at: at(20, 32) }),
      voidOnClosed: b.write({ kind: "void", invoice: ids.voided20!, reason: "returned", at: at(21, 33) }),
    };
    await b.online();
    await settled(shop, Object.values(late));

    const all = await summaries();
    expect(all.filter((s) => s.day <= CLOSED)).toEqual(closed);
    const records = new Map((await c.journal.find({ team: team(), entryId: { $in: Object.values(late) } }).toArray()).map((r) => [r.entryId, r]));
    for (const id of Object.values(late)) expect(records.get(id)?.status).toBe("accepted");
    expect(records.get(late.sale)?.booking).toEqual({ late: true, day: FIRST_OPEN, closedThrough: CLOSED, adjustments: [] });
    expect(records.get(late.latePayment)?.booking?.late).toBe(true);
    expect(records.get(late.payOnClosed)?.booking).toMatchObject({ late: false, adjustments: [{ invoice: ids.open20, outstanding: -200 }] });
    expect(records.get(late.voidOnClosed)?.booking?.adjustments).toEqual([
      { invoice: ids.voided20, salesCount: -1, voidCount: 1, revenue: -600, paymentsReceived: 0, outstanding: -600 },
    ]);
    // Its own date is kept; the day that counts it is the first open one.
    expect(await c.invoices.findOne({ team: team(), id: late.sale })).toMatchObject({ at: at(20, 30), day: CLOSED, bookedOn: FIRST_OPEN });
    expect(await c.payments.findOne({ team: team(), id: late.latePayment })).toMatchObject({ day: CLOSED, bookedOn: FIRST_OPEN });

    // The totals over all days are what the invoices and payments say.
    const invoices = await c.invoices.find({ team: team() }).toArray();
    const payments = await c.payments.find({ team: team() }).toArray();
    const sum = (f: "salesCount" | "voidCount" | "revenue" | "paymentsReceived" | "outstanding"): number => all.reduce((n, s) => n + s[f], 0);
    const live = invoices.filter((i) => i.status !== "void");
    expect(sum("salesCount")).toBe(live.length);
    expect(sum("voidCount")).toBe(invoices.length - live.length);
    expect(sum("revenue")).toBe(live.reduce((n, i) => n + i.total, 0));
    expect(sum("outstanding")).toBe(invoices.reduce((n, i) => n + i.outstanding, 0));
    expect(sum("paymentsReceived")).toBe(invoices.reduce((n, i) => n + i.initialPaid, 0) + payments.reduce((n, p) => n + p.amount, 0));

    const report = await deepVerify(c, shop.relay.db.db, team());
    expect({ problems: report.problems, differences: report.differences, closed: report.closedPeriods }).toEqual({ problems: [], differences: [], closed: [] });
  });

  it("the closeAfterHours setting closes every day that ended that many hours ago, by itself", async () => {
    const r = await shop.call<{ settings: Record<string, unknown> }>("PATCH", `/teams/${team()}/settings`, { token: shop.adminToken, body: { closeAfterHours: 0 } });
    expect(r.status, r.raw).toBe(200);
    expect(r.body.settings).toMatchObject({ closeAfterHours: 0 });
    const bad = await shop.call<{ error: { message: string } }>("PATCH", `/teams/${team()}/settings`, { token: shop.adminToken, body: { closeAfterHours: -3 } });
    expect(bad.status).toBe(400);
    const yesterday = new Date(Date.now() - 24 * 3600 * 1000).toISOString().slice(0, 10);
    const c = shop.materializer.c;
    await eventually(async () => (await c.closedPeriods.findOne({ team: team(), through: { $gte: yesterday } })) !== null, "closed by the setting", 20_000);
    const latest = (await c.closedPeriods.find({ team: team() }).sort({ through: -1 }).limit(1).next())!;
    expect(latest).toMatchObject({ previousThrough: CLOSED, cause: "setting", closedBy: null });
    // Each close's head is anchored by a checkpoint signed no later than it closed.
    for (const close of await c.closedPeriods.find({ team: team() }).toArray()) {
      const cp = await c.journalCheckpoints.findOne({ team: team(), seq: close.seq, head: close.head, source: "signed" });
      expect(cp, `checkpoint of the close through ${close.through}`).not.toBeNull();
      expect(Date.parse(cp!.at)).toBeLessThanOrEqual(Date.parse(close.closedAt) + 5000);
    }
    expect(latest.seq).toBeGreaterThan((await c.closedPeriods.findOne({ team: team(), through: CLOSED }))!.seq);
    // An export carries every close, which a replay of its bookings needs.
    const out = await mkdtemp(path.join(os.tmpdir(), "periods-export-"));
    try {
      const manifest = await exportTeam(c, { team: team(), from: CLOSED, to: CLOSED, outDir: path.join(out, "x") });
      expect(manifest.files.find((f) => f.name === "closed_periods.jsonl")?.rows).toBe(2);
      const exported = (await readFile(path.join(out, "x", "closed_periods.jsonl"), "utf8")).trim().split("\n").map((l) => JSON.parse(l) as { through: string });
      expect(exported.map((x) => x.through)).toEqual([CLOSED, latest.through]);
    } finally {
      await rm(out, { recursive: true, force: true });
    }
    const report = await deepVerify(c, shop.relay.db.db, team());
    expect({ problems: report.problems, differences: report.differences, closed: report.closedPeriods }).toEqual({ problems: [], differences: [], closed: [] });
  });

  it("a rebuild from the journal gives the same summaries, invoices and payments", async () => {
    const c = shop.materializer.c;
    const byId = { sort: { _id: 1 } } as const;
    const snapshot = async (): Promise<unknown[]> => [
      await c.summaries.find({ team: team() }, byId).toArray(),
      await c.invoices.find({ team: team() }, byId).toArray(),
      await c.payments.find({ team: team() }, byId).toArray(),
      await c.balances.find({ team: team() }, byId).toArray(),
    ];
    const before = await snapshot();
    await shop.materializer.stop();
    await rebuildTeam(c, team());
    expect(await snapshot()).toEqual(before);
  });

  it("the deep verification names a closed day's summary that changed, in the projection and in the close", async () => {
    const c = shop.materializer.c;
    const db = shop.relay.db.db;
    const day = (await c.summaries.findOne({ team: team(), day: CLOSED }))!;
    await c.summaries.updateOne({ _id: day._id }, { $set: { revenue: day.revenue + 500 } });
    try {
      const report = await deepVerify(c, db, team());
      expect(report.differences).toEqual([{ collection: "daily_summaries", id: day._id, field: "revenue", expected: day.revenue, found: day.revenue + 500 }]);
    } finally {
      await c.summaries.replaceOne({ _id: day._id }, day);
    }
    const close = (await c.closedPeriods.findOne({ team: team(), through: CLOSED }))!;
    const edited = close.summaries.map((s) => (s.day === CLOSED ? { ...s, revenue: s.revenue - 300 } : s));
    await c.closedPeriods.updateOne({ _id: close._id }, { $set: { summaries: edited } });
    try {
      const report = await deepVerify(c, db, team());
      expect(report.closedPeriods).toEqual([`CLOSED-DAY-CHANGED ${CLOSED} revenue: ${day.revenue - 300} (closed through ${CLOSED} at seq ${close.seq}), the journal now gives ${day.revenue}`]);
    } finally {
      await c.closedPeriods.replaceOne({ _id: close._id }, close);
    }
  });
});
