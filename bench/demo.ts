/**
 * `npm run demo`: one shop day, end to end, on the embedded default database.
 *
 * Starts the service as a real process (`server/main.ts`, which runs the materializer too),
 * creates the team with an admin token signed by the service's own key, stocks the catalog
 * from the owner's office device, enrolls three command-line devices (client/cli.ts), records
 * sales and payments on all of them while the tablet is offline (it sells the last milk frother,
 * which a till has sold meanwhile), reconnects the tablet, and prints each device's verdicts and
 * the authoritative figures read back from MongoDB. Exits by itself; every process it started
 * is stopped on the way out, on success and on error.
 */
import { spawn } from "node:child_process";
import { mkdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { MongoClient } from "mongodb";
import { openDevice } from "../client/node.js";
import { loadOrCreateKeys } from "../server/auth/keys.js";
import { createTokenService } from "../server/auth/tokens.js";
import { loadConfig } from "../server/config.js";
import type { CreatedTeam } from "../server/relay/teams.js";
import { entryArgs } from "../server/entry-point.js";
import { killChildrenOnExit, repoRoot, spawnTsx, type Child } from "./lib/procs.js";
import { benchDir } from "./lib/servers.js";

const TEAM = "corner-shop";
const DAY_LABEL = new Date().toISOString().slice(0, 10);

/** Item ids in reasons and figures, shown as the names a shop owner knows. */
const names = new Map<string, string>();
const named = (text: string): string => [...names].reduce((t, [id, name]) => t.split(id).join(`"${name}"`), text);
const say = (line = ""): void => void process.stdout.write(`${named(line)}\n`);
const euros = (cents: number): string => `€${(cents / 100).toFixed(2)}`;

/** Runs `npm run device -- <args>` (directly, compiled or through tsx as this file runs) and returns its JSON lines. */
function device(args: string[]): Promise<Record<string, unknown>[]> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [...entryArgs(import.meta.url, "../client/cli.ts"), ...args], {
      cwd: repoRoot,
      stdio: ["ignore", "pipe", "pipe"],
    });
    const kill = (): void => void proc.kill("SIGKILL");
    process.once("exit", kill);
    let out = "";
    let err = "";
    proc.stdout.on("data", (c: Buffer) => (out += c.toString("utf8")));
    proc.stderr.on("data", (c: Buffer) => (err += c.toString("utf8")));
    proc.once("exit", (code) => {
      process.off("exit", kill);
      if (code !== 0) return reject(new Error(`device ${args[0]} failed (${code}): ${err.trim()}`));
      resolve(out.split("\n").filter((l) => l.trim().startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>));
    });
  });
}

interface Till {
  name: string;
  dir: string;
  /** entry id → what the clerk did, for the verdict list. */
  did: Map<string, string>;
}

async function main(): Promise<void> {
  killChildrenOnExit();
  const dataDir = await benchDir("demo");
  let service: Child | undefined;
  try {
    say(`Starting the service (embedded database, materializer process) in ${dataDir} ...`);
    const env: Record<string, string | undefined> = { PORT: "0", DATA_DIR: dataDir, MATERIALIZER: "process", LOG_LEVEL: "info", MONGODB_URI: undefined };
    service = await spawnTsx({ script: "server/main.ts", env, ready: (l) => l.msg === "listening" && typeof l.port === "number", timeoutMs: 180_000 });
    const url = `http://127.0.0.1:${Number(service.ready.port)}`;
    const mongoUri = service.logs.map((l) => l.uri).find((u): u is string => typeof u === "string");
    if (!mongoUri) throw new Error("the service did not log its database address");
    say(`Service up at ${url}; database ${String(service.ready.database)}.`);

    // The service generated its signing key in DATA_DIR; the shop owner's admin token comes from it.
    const config = loadConfig({ DATA_DIR: dataDir });
    const tokens = createTokenService(await loadOrCreateKeys({ ...config.jwt, dataDir }), config.jwt);
    const adminToken = tokens.issue({ sub: "owner", team: TEAM, role: "admin", device: "office" });
    const res = await fetch(`${url}/api/teams`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${adminToken}` },
      body: JSON.stringify({ team: TEAM }),
    });
    if (res.status !== 201) throw new Error(`creating the team: ${res.status} ${await res.text()}`);
    const team = (await res.json()) as CreatedTeam;
    say(`Team "${TEAM}" created.`);

    // The owner's office sets up the catalog and receives stock (the CLI has no catalog commands).
    const office = await openDevice({ serverUrl: url, token: adminToken, deviceId: "office", rootUrl: team.rootUrl, dataDir: path.join(dataDir, "office") });
    const beans = await office.catalogEditor.addItem({ name: "Espresso beans 1 kg", price: 1890, unit: "bag" });
    const frother = await office.catalogEditor.addItem({ name: "Milk frother", price: 4500, unit: "pcs" });
    names.set(beans.id, beans.name);
    names.set(frother.id, frother.name);
    const rosa = await office.catalogEditor.addCustomer({ name: "Café Rosa", phone: "+34 600 000 111" });
    await office.recordStock({ item: beans.id, delta: 20, reason: "delivery" });
    await office.recordStock({ item: frother.id, delta: 3, reason: "delivery" });
    const rosaSale = await office.recordSale({ lines: [{ item: beans.id, quantity: 4 }], customer: rosa.id, paid: 2000 });
    await office.whenSynced(60_000);
    await office.close();
    say(`Catalog: ${beans.name} ${euros(beans.price)} (20 in stock), ${frother.name} ${euros(frother.price)} (3 in stock).`);
    say(`Office sold 4 bags on account to ${rosa.name}: ${euros(rosaSale.total)}, ${euros(2000)} paid up front.`);
    say();

    const tills: Till[] = ["till-1", "till-2", "tablet"].map((name) => ({ name, dir: path.join(dataDir, name), did: new Map() }));
    for (const t of tills) {
      // As a shop would: the owner enrolls the till through the API, the till takes that answer
      // (token, root URL, the team's public key) and gets its own key certified for peer links.
      const enrolled = await fetch(`${url}/api/teams/${TEAM}/devices`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${adminToken}` },
        body: JSON.stringify({ device: t.name }),
      });
      if (enrolled.status !== 201) throw new Error(`enrolling ${t.name}: ${enrolled.status} ${await enrolled.text()}`);
      await mkdir(t.dir, { recursive: true });
      const file = path.join(t.dir, "enrollment.json");
      await writeFile(file, await enrolled.text(), { mode: 0o600 });
      await device(["enroll", "--data", t.dir, "--server", url, "--enrollment", file]);
      say(`Enrolled ${t.name}.`);
    }
    const [till1, till2, tablet] = tills as [Till, Till, Till];
    const sale = async (t: Till, item: { id: string; name: string; price: number }, qty: number, paid: number, offline = false): Promise<string> => {
      const [entry] = await device(["sale", "--data", t.dir, "--item", item.id, "--qty", String(qty), "--paid", String(paid), ...(offline ? ["--offline"] : [])]);
      const id = String(entry?.id);
      t.did.set(id, `sale: ${qty} × ${item.name} (${euros(qty * item.price)}, paid ${euros(paid)})`);
      return id;
    };
    const pay = async (t: Till, invoice: string, amount: number, label: string, offline = false): Promise<void> => {
      const [entry] = await device(["payment", "--data", t.dir, "--invoice", invoice, "--amount", String(amount), ...(offline ? ["--offline"] : [])]);
      t.did.set(String(entry?.id), `payment: ${euros(amount)} on ${label}`);
    };

    say();
    say("The tablet loses its connection; it keeps selling.");
    const tabletBeans = await sale(tablet, beans, 1, 0, true);
    await pay(tablet, tabletBeans, beans.price, "its own beans sale", true);
    await sale(tablet, frother, 1, frother.price, true);
    say("  tablet (offline): 1 bag of beans on credit, paid a moment later; 1 milk frother, paid cash.");

    say("Meanwhile the tills are online:");
    await sale(till1, frother, 2, 2 * frother.price);
    await sale(till1, beans, 3, 3 * beans.price);
    await device(["sync", "--data", till1.dir, "--timeout", "60000"]);
    say("  till-1: 2 milk frothers and 3 bags of beans, paid.");
    await sale(till2, frother, 1, frother.price);
    await pay(till2, rosaSale.id, 1000, `${rosa.name}'s account invoice`);
    await device(["sync", "--data", till2.dir, "--timeout", "60000"]);
    say(`  till-2: the last milk frother, paid; ${rosa.name} pays ${euros(1000)} on account.`);

    say();
    say("The tablet comes back online ...");
    await device(["sync", "--data", tablet.dir, "--timeout", "120000"]);
    say();
    say("Verdicts, as each device shows them:");
    for (const t of tills) {
      const lines = await device(["verdicts", "--data", t.dir, "--wait", "60000"]);
      say(`  ${t.name}`);
      for (const v of lines) {
        const what = t.did.get(String(v.id)) ?? `${String(v.kind)} ${String(v.id).slice(0, 8)}`;
        const verdict = v.status === "accepted" ? "accepted" : `${String(v.status).toUpperCase()}${v.reason ? `: ${String(v.reason)}` : ""}`;
        say(`    ${what.padEnd(58)} → ${verdict}`);
      }
    }

    await printAuthoritative(mongoUri, new Map([[beans.id, beans.name], [frother.id, frother.name]]), new Map([[rosa.id, rosa.name]]));
    say();
    say("Stopping the service ...");
  } finally {
    if (service) await service.stop(20_000);
    await rm(dataDir, { recursive: true, force: true }).catch(() => undefined);
  }
  say("Done: every process stopped.");
}

async function printAuthoritative(uri: string, itemNames: Map<string, string>, customerNames: Map<string, string>): Promise<void> {
  const client = new MongoClient(uri);
  await client.connect();
  try {
    const db = client.db(loadConfig({}).mongodbDb);
    say();
    say(`Authoritative figures from MongoDB (${DAY_LABEL}):`);
    say("  Stock");
    for (const s of await db.collection<{ item: string; level: number }>("stock_levels").find({ team: TEAM }).toArray()) {
      say(`    ${(itemNames.get(s.item) ?? s.item).padEnd(24)} ${String(s.level).padStart(4)}`);
    }
    say("  Open invoices");
    for (const inv of await db.collection<{ id: string; total: number; paid: number; outstanding: number; customer: string | null; status: string }>("invoices").find({ team: TEAM, status: "open" }).toArray()) {
      const who = inv.customer ? (customerNames.get(inv.customer) ?? inv.customer) : "walk-in";
      say(`    ${inv.id.slice(0, 8)}  ${who.padEnd(14)} total ${euros(inv.total).padStart(8)}  paid ${euros(inv.paid).padStart(8)}  outstanding ${euros(inv.outstanding).padStart(8)}`);
    }
    say("  Customer balances");
    for (const b of await db.collection<{ customer: string; outstanding: number; openInvoices: number }>("customer_balances").find({ team: TEAM }).toArray()) {
      say(`    ${(customerNames.get(b.customer) ?? b.customer).padEnd(24)} owes ${euros(b.outstanding)} on ${b.openInvoices} open invoice(s)`);
    }
    say("  Daily summary");
    for (const d of await db.collection<{ day: string; salesCount: number; revenue: number; paymentsReceived: number; outstanding: number }>("daily_summaries").find({ team: TEAM }).sort({ day: 1 }).toArray()) {
      say(`    ${d.day}: ${d.salesCount} sales, revenue ${euros(d.revenue)}, received ${euros(d.paymentsReceived)}, outstanding ${euros(d.outstanding)}`);
    }
    say("  Rejections");
    for (const r of await db.collection<{ device: string | null; reason: string }>("rejections").find({ team: TEAM }).toArray()) {
      say(`    ${String(r.device)}: ${r.reason}`);
    }
    const journal = await db.collection("journal").countDocuments({ team: TEAM });
    say(`  Journal: ${journal} decided entries, hash-chained (npm run verify-journal checks it).`);
  } finally {
    await client.close();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`demo failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
