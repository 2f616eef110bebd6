/**
 * A command-line device (`npm run device -- <command> ...`) for demos, tests and benchmarks.
 * Every command prints JSON lines on stdout, so scripts can read results; errors go to stderr
 * with a non-zero exit code.
 *
 *   enroll   --data DIR --server URL --token T --device ID --root URL [--public-key FILE]
 *   sale     --data DIR --item ID --qty N [--price P] [--name NAME] [--paid X] [--offline]
 *   payment  --data DIR --invoice ID --amount N [--offline]
 *   bulk     --data DIR [--sales N] [--payments M] [--offline]   (payments go to this device's sales)
 *   sync     --data DIR [--timeout MS]                           (online until the relay has everything)
 *   verdicts --data DIR [--wait MS] [--offline]
 *   status   --data DIR [--offline]
 *   catalog  --data DIR [--offline]     (items, and fields edited concurrently: each value and its device)
 *   peer     --data DIR [--listen PORT] [--connect ws://host:port] [--for MS] [--offline]
 */
import { readFile, writeFile, mkdir } from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";
import type { AutomergeUrl } from "@automerge/automerge-repo";
import type { Device } from "./device.js";
import { ClientError } from "./errors.js";
import { openDevice } from "./node.js";

interface CliConfig {
  server: string;
  token: string;
  device: string;
  root: AutomergeUrl;
  publicKeyPem?: string;
}

const CONFIG_FILE = "device.json";

function out(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

function need(value: string | undefined, name: string): string {
  if (value === undefined || value === "") throw new ClientError("invalid-input", `--${name} is required`);
  return value;
}

function int(value: string | undefined, name: string, fallback?: number): number {
  if (value === undefined) {
    if (fallback === undefined) throw new ClientError("invalid-input", `--${name} is required`);
    return fallback;
  }
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new ClientError("invalid-input", `--${name} must be an integer`);
  return n;
}

async function loadConfig(dataDir: string): Promise<CliConfig> {
  try {
    return JSON.parse(await readFile(path.join(dataDir, CONFIG_FILE), "utf8")) as CliConfig;
  } catch {
    throw new ClientError("not-enrolled", `no ${CONFIG_FILE} in ${dataDir}: run enroll first`);
  }
}

async function open(dataDir: string, offline: boolean): Promise<Device> {
  const c = await loadConfig(dataDir);
  const device = await openDevice({
    serverUrl: c.server, token: c.token, deviceId: c.device, rootUrl: c.root, dataDir, offline,
    ...(c.publicKeyPem ? { publicKeyPem: c.publicKeyPem } : {}),
  });
  // A peer's change to a server-owned document was refused: worth a line, it is someone's forgery.
  device.on("dropped", (e) => process.stderr.write(`${JSON.stringify({ warning: "dropped-peer-change", ...e })}\n`));
  return device;
}

async function withDevice(dataDir: string, offline: boolean, fn: (d: Device) => Promise<void>): Promise<void> {
  const device = await open(dataDir, offline);
  try {
    await fn(device);
  } finally {
    await device.close();
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  const { values: v } = parseArgs({
    args: rest,
    options: {
      data: { type: "string" }, server: { type: "string" }, token: { type: "string" }, device: { type: "string" },
      root: { type: "string" }, "public-key": { type: "string" }, item: { type: "string" }, qty: { type: "string" },
      price: { type: "string" }, name: { type: "string" }, paid: { type: "string" }, invoice: { type: "string" },
      amount: { type: "string" }, sales: { type: "string" }, payments: { type: "string" }, timeout: { type: "string" },
      wait: { type: "string" }, listen: { type: "string" }, connect: { type: "string", multiple: true },
      for: { type: "string" }, offline: { type: "boolean", default: false },
    },
  });
  const dataDir = path.resolve(need(v.data, "data"));
  const offline = v.offline ?? false;

  switch (command) {
    case "enroll": {
      await mkdir(dataDir, { recursive: true });
      const config: CliConfig = {
        server: need(v.server, "server"), token: need(v.token, "token"), device: need(v.device, "device"),
        root: need(v.root, "root") as AutomergeUrl,
      };
      if (v["public-key"]) config.publicKeyPem = await readFile(v["public-key"], "utf8");
      await writeFile(path.join(dataDir, CONFIG_FILE), JSON.stringify(config), { mode: 0o600 });
      await withDevice(dataDir, false, async (d) => out({ enrolled: true, team: d.team, device: d.deviceId }));
      return;
    }
    case "sale":
      return withDevice(dataDir, offline, async (d) => {
        const line = { item: need(v.item, "item"), quantity: int(v.qty, "qty", 1) } as { item: string; quantity: number; price?: number; name?: string };
        if (v.price !== undefined) line.price = int(v.price, "price");
        if (v.name !== undefined) line.name = v.name;
        out(await d.recordSale({ lines: [line], paid: int(v.paid, "paid", 0) }));
      });
    case "payment":
      return withDevice(dataDir, offline, async (d) => {
        out(await d.recordPayment({ invoice: need(v.invoice, "invoice"), amount: int(v.amount, "amount") }));
      });
    case "bulk":
      return withDevice(dataDir, offline, async (d) => {
        const sales = int(v.sales, "sales", 0);
        const payments = int(v.payments, "payments", 0);
        const started = Date.now();
        for (let i = 0; i < sales; i++) {
          // A line that names its item creates it and moves no stock: no stock setup needed.
          await d.recordSale({ lines: [{ item: `bulk-${globalThis.crypto.randomUUID()}`, quantity: 1, price: 1000, name: "Widget" }] });
        }
        // Payments go to this device's open sales, oldest first: they must have survived any restart.
        const open = d.invoices().filter((inv) => inv.sale.device === d.deviceId && inv.sale.paid === 0);
        const paidAlready = new Set(d.payments().map((p) => p.invoice));
        const targets = open.filter((inv) => !paidAlready.has(inv.id)).sort((a, b) => a.sale.at.localeCompare(b.sale.at));
        if (targets.length < payments) throw new ClientError("invalid-input", `only ${targets.length} unpaid sales for ${payments} payments`);
        for (let i = 0; i < payments; i++) await d.recordPayment({ invoice: targets[i]!.id, amount: 100 });
        out({ sales, payments, ms: Date.now() - started, entries: d.ownEntries().length, pending: d.pendingCount() });
      });
    case "sync":
      return withDevice(dataDir, false, async (d) => {
        const started = Date.now();
        await d.whenSynced(int(v.timeout, "timeout", 120_000));
        out({ synced: true, ms: Date.now() - started, entries: d.ownEntries().length, pending: d.pendingCount() });
      });
    case "verdicts":
      return withDevice(dataDir, offline, async (d) => {
        const waitMs = int(v.wait, "wait", 0);
        const until = Date.now() + waitMs;
        while (Date.now() < until && d.ownEntries().some((e) => e.status === "undecided")) await sleep(200);
        for (const e of d.ownEntries()) out({ id: e.entry.id, kind: e.entry.kind, status: e.status, ...(e.reason ? { reason: e.reason } : {}) });
      });
    case "status":
      return withDevice(dataDir, offline, async (d) => {
        if (!offline) await sleep(1000);
        out({ online: d.online, pending: d.pendingCount(), entries: d.ownEntries().length, segment: d.currentSegment() ?? null });
      });
    case "catalog":
      return withDevice(dataDir, offline, async (d) => {
        if (!offline) await sleep(1000);
        out({ items: d.items(), conflicts: d.conflicts() });
      });
    case "peer":
      return withDevice(dataDir, offline, async (d) => {
        if (v.listen !== undefined) out({ listening: await d.listen(int(v.listen, "listen")) });
        for (const address of v.connect ?? []) d.connectPeer(address);
        await sleep(int(v.for, "for", 10_000));
        out({ entries: d.entries().length, pending: d.pendingCount() });
      });
    default:
      throw new ClientError("invalid-input", `unknown command ${JSON.stringify(command)}; see the header of client/cli.ts`);
  }
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (err: unknown) => {
    const message = err instanceof Error ? err.message : String(err);
    const code = err instanceof ClientError ? err.code : "error";
    process.stderr.write(`${JSON.stringify({ error: code, message })}\n`);
    process.exit(1);
  },
);
