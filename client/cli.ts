/**
 * A command-line device (`npm run device -- <command> ...`) for demos, tests and benchmarks.
 * Every command prints JSON lines on stdout, so scripts can read results; errors go to stderr
 * with a non-zero exit code.
 *
 *   enroll   --data DIR --server URL (--enrollment FILE | --token T --device ID --root URL [--public-key FILE])
 *            (FILE: what `npm run admin -- enroll-device` printed; enroll also certifies the device key)
 *   certify  --data DIR                                         (renew the device's peer certificate)
 *   sale     --data DIR --item ID --qty N [--price P] [--name NAME] [--paid X] [--offline]
 *   payment  --data DIR --invoice ID --amount N [--offline]
 *   bulk     --data DIR [--sales N] [--payments M] [--offline]   (payments go to this device's sales)
 *   sync     --data DIR [--timeout MS]                           (online until the relay has everything)
 *   verdicts --data DIR [--wait MS] [--offline]
 *   status   --data DIR [--offline]
 *   peer     --data DIR [--listen PORT [--host ADDR] [--announce]] [--connect ws://host:port/#code=C [--code C]]
 *            [--discover] [--discovery-port UDP] [--link-timeout MS] [--for MS] [--offline]
 *            (--announce: team mates on the network can find this listener; --discover: link to the
 *            first team mate heard announcing)
 *            (listen prints the address and pairing code to give the other tablet; a link that is
 *            not up within --link-timeout ends the command with an error and exit code 1)
 */
import { readFile, writeFile, mkdir } from "node:fs/promises";
import os from "node:os";
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
  return openDevice({
    serverUrl: c.server, token: c.token, deviceId: c.device, rootUrl: c.root, dataDir, offline,
    ...(c.publicKeyPem ? { publicKeyPem: c.publicKeyPem } : {}),
  });
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

/** The admin's enroll-device output: token, rootUrl, device and the team's public key. */
async function readEnrollment(file: string): Promise<{ token?: string; rootUrl?: string; device?: string; publicKey?: string }> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(file, "utf8"));
  } catch (err) {
    throw new ClientError("invalid-input", `--enrollment ${file}: ${err instanceof Error ? err.message : "unreadable"}`);
  }
  if (typeof parsed !== "object" || parsed === null) throw new ClientError("invalid-input", `--enrollment ${file}: expected the JSON enroll-device printed`);
  const r = parsed as Record<string, unknown>;
  const str = (k: string): string | undefined => (typeof r[k] === "string" ? (r[k] as string) : undefined);
  return { token: str("token"), rootUrl: str("rootUrl"), device: str("device"), publicKey: str("publicKey") };
}

/** Addresses a team mate can dial: the bound one, or every IPv4 interface's for 0.0.0.0. */
function listenAddresses(host: string, port: number): string[] {
  if (host !== "0.0.0.0" && host !== "::") return [`ws://${host.includes(":") ? `[${host}]` : host}:${port}/`];
  const out: string[] = [];
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) if (a.family === "IPv4") out.push(`ws://${a.address}:${port}/`);
  }
  return out;
}

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
      for: { type: "string" }, offline: { type: "boolean", default: false }, host: { type: "string" }, code: { type: "string" },
      enrollment: { type: "string" }, "link-timeout": { type: "string" }, announce: { type: "boolean", default: false },
      discover: { type: "boolean", default: false }, "discovery-port": { type: "string" },
    },
  });
  const dataDir = path.resolve(need(v.data, "data"));
  const offline = v.offline ?? false;

  switch (command) {
    case "enroll": {
      await mkdir(dataDir, { recursive: true });
      const given = v.enrollment ? await readEnrollment(v.enrollment) : {};
      const config: CliConfig = {
        server: need(v.server, "server"), token: need(v.token ?? given.token, "token"), device: need(v.device ?? given.device, "device"),
        root: need(v.root ?? given.rootUrl, "root") as AutomergeUrl,
      };
      const publicKeyPem = v["public-key"] ? await readFile(v["public-key"], "utf8") : given.publicKey;
      if (publicKeyPem) config.publicKeyPem = publicKeyPem;
      await writeFile(path.join(dataDir, CONFIG_FILE), JSON.stringify(config), { mode: 0o600 });
      await withDevice(dataDir, false, async (d) => {
        const cert = await d.peers.certify();
        out({ enrolled: true, team: d.team, device: d.deviceId, certifiedUntil: cert.expiresAt, code: await d.peers.pairingCode() });
      });
      return;
    }
    case "certify": {
      await withDevice(dataDir, false, async (d) => {
        const cert = await d.peers.certify();
        out({ certified: true, device: d.deviceId, certifiedUntil: cert.expiresAt, code: await d.peers.pairingCode() });
      });
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
    case "peer":
      return withDevice(dataDir, offline, async (d) => {
        const started = Date.now();
        const discovery = v["discovery-port"] ? { port: int(v["discovery-port"], "discovery-port") } : {};
        d.on("peer-authenticated", (e) => out({ peer: e.address, device: e.peer.device, user: e.peer.user, code: e.peer.code }));
        d.on("peer-refused", (e) => process.stderr.write(`${JSON.stringify({ refused: e.address, reason: e.reason })}\n`));
        if (v.listen !== undefined) {
          const host = v.host ?? "127.0.0.1";
          const port = await d.listen(int(v.listen, "listen"), host);
          const code = await d.peers.pairingCode();
          out({ listening: port, host, code, addresses: listenAddresses(host, port).map((a) => `${a}#code=${code}`) });
          if (v.announce) await d.peers.announce(port, discovery);
        }
        const addresses = [...(v.connect ?? [])];
        const linkDeadline = started + int(v["link-timeout"], "link-timeout", 15_000);
        if (v.discover) {
          let first: string | undefined;
          await d.peers.discover((p) => {
            first ??= p.address;
            out({ found: p.device, address: p.address });
          }, discovery);
          while (first === undefined) {
            if (Date.now() > linkDeadline) throw new ClientError("peer-link", "no team mate announced itself on the local network (is its listener started with --announce?)");
            await sleep(100);
          }
          addresses.push(first);
        }
        for (const address of addresses) d.connectPeer(address, v.code);
        // A link that never comes up is a failure a person must see, not a quiet exit 0.
        for (const address of addresses) {
          while (!d.peerOnline(address)) {
            if (Date.now() > linkDeadline) {
              throw new ClientError("peer-link", `no link to ${address}: ${d.peers.lastReason(address) ?? "not connected"}`);
            }
            await sleep(100);
          }
          out({ linked: address });
        }
        await sleep(Math.max(0, started + int(v.for, "for", 10_000) - Date.now()));
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
