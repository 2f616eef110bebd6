/**
 * Offline stock allowances end to end with real device processes (issue 20): a service (relay,
 * materializer, FerretDB) and three tablets driven only through the device command line. One
 * item under the allowance policy, 12 units received; the tablets sync online until each holds
 * its allowance, then go offline (`--offline`) through a busy day: each sells what its allowance
 * covers (as `allowances --offline` shows it) and one sale beyond, which the CLI prints AT RISK.
 * They sync one after another. What a user checks: every sale made within an allowance is
 * accepted in MongoDB's journal, stock in MongoDB never goes negative and is received minus
 * accepted units, and each tablet's `verdicts` says the same as the journal.
 */
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { accounts } from "../../../server/accounts/store.js";
import { startShop, type Shop } from "../materializer/harness.js";
import { runCli } from "./cli-process.js";
import { eventually, removeTmpDirs, tmpDir } from "./helpers.js";

let shop: Shop;
const TABLETS = ["tab-1", "tab-2", "tab-3"] as const;
const dataOf: Record<string, string> = {};
/** Every value the item's stock level took in MongoDB while the test watched it. */
const levels: number[] = [];
let watching = true;
let watcher: Promise<void> | undefined;

type Row = Record<string, unknown>;

/** Like Promise.all, but a failure is thrown only once every tablet's command has ended (no process outlives the test). */
async function all(work: Promise<unknown>[]): Promise<void> {
  const failed = (await Promise.allSettled(work)).find((r) => r.status === "rejected");
  if (failed) throw failed.reason;
}

/** Runs one device command on `tablet` with --json; it must succeed and print nothing else. */
async function device(tablet: string, args: string[]): Promise<Row[]> {
  const words = args[1] !== undefined && !args[1].startsWith("--") ? 2 : 1;
  const r = await runCli([...args.slice(0, words), "--data", dataOf[tablet]!, "--json", ...args.slice(words)], 60_000);
  expect(r.code, `${tablet} ${args.join(" ")}: ${r.stderr}`).toBe(0);
  expect(r.stderr, `${tablet} ${args.join(" ")}`).toBe("");
  return r.lines;
}

beforeAll(async () => {
  shop = await startShop(`alwe2e${globalThis.crypto.randomUUID().slice(0, 6)}`);
  const keyDir = await tmpDir("alw-e2e-key");
  const keyFile = path.join(keyDir, "team.pub");
  await writeFile(keyFile, shop.relay.service.tokens.publicKeyPem);
  const team = shop.team.team;
  await all(
    TABLETS.map(async (t) => {
      await accounts(shop.relay.db.db).enrollDevice({ team, device: t, user: `clerk-${t}`, enrolledBy: "test" });
      dataOf[t] = await tmpDir(`alw-e2e-${t}`);
      const token = shop.relay.token({ sub: `clerk-${t}`, team, role: "member", device: t });
      const [enrolled] = await device(t, ["enroll", "--server", shop.relay.service.url, "--token", token, "--device", t, "--root", shop.team.rootUrl, "--public-key", keyFile]);
      expect(enrolled).toMatchObject({ enrolled: true, device: t });
    }),
  );
}, 60_000);

afterAll(async () => {
  watching = false;
  await watcher;
  await shop?.close();
  await removeTmpDirs();
});

describe("offline allowances, three tablets on the command line", () => {
  it("a busy offline day until the item runs out: no sale within an allowance is rejected", async () => {
    const db = shop.relay.db.db;
    const team = shop.team.team;

    // The catalog and 12 units, received on all three tablets (a tablet that has written to
    // the ledger is one the materializer grants an allowance to).
    const [tea] = await device("tab-1", ["item", "add", "--name", "Tea", "--price", "300", "--offline"]);
    const item = String(tea!.id);
    await device("tab-1", ["stock", "receive", "--item", item, "--qty", "10", "--offline"]);
    await device("tab-1", ["sync", "--timeout", "30000"]);
    await all(
      (["tab-2", "tab-3"] as const).map(async (t) => {
        await eventually(async () => (await device(t, ["items"])).some((i) => i.id === item), `the item on ${t}`, 30_000, 0);
        await device(t, ["stock", "receive", "--item", item, "--qty", "1", "--offline"]);
        await device(t, ["sync", "--timeout", "30000"]);
      }),
    );
    const received = 12;
    await eventually(async () => (await db.collection("stock_levels").findOne({ team, item }))?.level === received, "12 in stock in MongoDB", 30_000);
    watcher = (async () => {
      while (watching) {
        const l = (await db.collection("stock_levels").findOne({ team, item }))?.level;
        if (typeof l === "number") levels.push(l);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();

    // The owner puts every item under the policy, through the API.
    const admin = shop.relay.token({ sub: "boss", team, role: "admin" });
    const patch = await fetch(`${shop.relay.service.url}/api/teams/${team}/settings`, {
      method: "PATCH", headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" }, body: JSON.stringify({ allowances: { items: "all" } }),
    });
    expect(patch.status).toBe(200);

    // Online until each tablet holds its allowance (the API says what was granted).
    const auditor = shop.relay.token({ sub: "audrey", team, role: "auditor" });
    let granted: Record<string, number> = {};
    await eventually(async () => {
      const res = await fetch(`${shop.relay.service.url}/api/allowances?limit=500`, { headers: { authorization: `Bearer ${auditor}` } });
      const body = (await res.json()) as { rows: { item: string; device: string; granted: number }[] };
      granted = Object.fromEntries(body.rows.filter((r) => r.item === item).map((r) => [r.device, r.granted]));
      return TABLETS.every((t) => (granted[t] ?? 0) > 0);
    }, "allowances granted to all three tablets", 30_000);
    await all(
      TABLETS.map((t) =>
        eventually(async () => {
          const a = (await device(t, ["allowances"])).find((r) => r.item === item);
          return a?.left === granted[t] && a?.stockKnown === received;
        }, `${t}'s allowance on the tablet`, 30_000, 0),
      ),
    );
    const reserved = TABLETS.reduce((s, t) => s + granted[t]!, 0);
    expect(reserved).toBeLessThanOrEqual(received);

    // Offline, a busy day: each tablet sells its allowance (read offline) in sales of up to 2
    // units, then one sale beyond it of every unit no allowance holds, marked AT RISK before it
    // syncs: the first of those to reach the server empties the shelf, the others are rejected.
    const free = Math.max(1, received - reserved);
    const within: { tablet: string; id: string; qty: number }[] = [];
    const risky: { tablet: string; id: string; qty: number }[] = [];
    await all(
      TABLETS.map(async (t) => {
        const [mine] = (await device(t, ["allowances", "--offline"])).filter((r) => r.item === item);
        let left = Number(mine!.left);
        expect(left).toBe(granted[t]);
        while (left > 0) {
          const qty = Math.min(2, left);
          const [sale] = await device(t, ["sale", "--item", item, "--qty", String(qty), "--offline"]);
          expect(sale!.atRisk, `${t}: a sale within the allowance`).toBeUndefined();
          within.push({ tablet: t, id: String(sale!.id), qty });
          left -= qty;
        }
        const [after] = (await device(t, ["allowances", "--offline"])).filter((r) => r.item === item);
        expect(after).toMatchObject({ left: 0, atRisk: 0 });
        const r = await runCli(["sale", "--data", dataOf[t]!, "--item", item, "--qty", String(free), "--offline"], 60_000);
        expect(r.code, r.stderr).toBe(0);
        expect(r.stderr).toBe("");
        // Piped output is JSON: the line says what is at risk.
        expect(r.lines[0]!.atRisk).toEqual([{ item, quantity: free, left: 0 }]);
        risky.push({ tablet: t, id: String(r.lines[0]!.id), qty: free });
        const [flagged] = (await device(t, ["allowances", "--offline"])).filter((x) => x.item === item);
        expect(flagged).toMatchObject({ left: 0, atRisk: free, stockKnown: received });
      }),
    );
    const soldWithin = within.reduce((s, x) => s + x.qty, 0);
    expect(soldWithin).toBe(reserved);
    // More asked for than the stock: the item runs out.
    expect(soldWithin + risky.reduce((s, x) => s + x.qty, 0)).toBeGreaterThan(received);

    // Back online one after another (3, 1, 2).
    for (const t of ["tab-3", "tab-1", "tab-2"]) {
      const [synced] = await device(t, ["sync", "--timeout", "30000"]);
      expect(synced).toMatchObject({ synced: true, pending: 0 });
    }

    // MongoDB's journal: every sale within an allowance accepted.
    const ids = [...within, ...risky].map((x) => x.id);
    const journaled = async () => db.collection("journal").find({ team, entryId: { $in: ids } }).toArray();
    await eventually(async () => (await journaled()).length === ids.length, "every sale journaled", 30_000);
    const status = new Map((await journaled()).map((r) => [String(r.entryId), String(r.status)]));
    expect(within.filter((x) => status.get(x.id) !== "accepted")).toEqual([]);
    const acceptedRisky = risky.filter((x) => status.get(x.id) === "accepted");
    // Stock ran out: some sale beyond an allowance was rejected.
    expect(acceptedRisky.length).toBeLessThan(risky.length);
    const acceptedUnits = soldWithin + acceptedRisky.reduce((s, x) => s + x.qty, 0);
    await eventually(async () => (await db.collection("stock_levels").findOne({ team, item }))?.level === received - acceptedUnits, "stock projected", 30_000);
    const level = (await db.collection("stock_levels").findOne({ team, item }))?.level as number;
    expect(level).toBe(received - acceptedUnits);
    expect(level).toBeGreaterThanOrEqual(0);
    watching = false;
    await watcher;
    expect(levels.length).toBeGreaterThan(0);
    expect(Math.min(...levels)).toBeGreaterThanOrEqual(0);

    // Each tablet's verdicts say what the journal says.
    await all(
      TABLETS.map(async (t) => {
        const mine = [...within, ...risky].filter((x) => x.tablet === t);
        let rows: Row[] = [];
        await eventually(async () => {
          rows = await device(t, ["verdicts", "--wait", "5000"]);
          return mine.every((x) => rows.some((r) => r.id === x.id && r.status !== "undecided"));
        }, `${t}'s verdicts`, 30_000, 0);
        for (const x of mine) {
          const row = rows.find((r) => r.id === x.id)!;
          expect(row.status, `${t} ${x.id}`).toBe(status.get(x.id));
          if (row.status === "rejected") expect(row.reason).toMatch(/^insufficient stock for item /);
        }
      }),
    );
  }, 120_000);
});
