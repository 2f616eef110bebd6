/**
 * Commands that link this device: enrolment with the service (and the certificate of its own key
 * that peer links need), and direct links to team mates' devices.
 */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { AutomergeUrl } from "@automerge/automerge-repo";
import { ClientError } from "../errors.js";
import { OFFLINE, int, need, relayList, str } from "./args.js";
import { CONFIG_FILE, sleep, withDevice, type CliConfig, type Command } from "./context.js";

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
  const text = (k: string): string | undefined => (typeof r[k] === "string" ? (r[k] as string) : undefined);
  return { token: text("token"), rootUrl: text("rootUrl"), device: text("device"), publicKey: text("publicKey") };
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

export const ENROLL: Command = {
  name: "enroll",
  summary: "set up this device's data folder from what the admin gave it, fetch the team's documents and certify the device's key",
  options: {
    server: { type: "string", value: "URL", help: "the relay, e.g. ws://shop-server:8080/sync (or --relay)" },
    relay: { type: "string", value: "URL[,URL]", multiple: true, help: "the service's relays, comma-separated or repeated: the device moves to the next when its relay dies" },
    enrollment: { type: "string", value: "FILE", help: "what `npm run admin -- enroll-device --json` printed (token, device, root URL, public key)" },
    token: { type: "string", value: "TOKEN", help: "the device token (instead of --enrollment)" },
    device: { type: "string", value: "ID", help: "this device's id, as enrolled (instead of --enrollment)" },
    root: { type: "string", value: "URL", help: "the team's root URL, automerge:... (instead of --enrollment)" },
    "public-key": { type: "string", value: "FILE", help: "the team's public key (PEM), needed for peer links (instead of --enrollment)" },
  },
  example: "npm run device -- enroll --data ./till-1 --server ws://127.0.0.1:8080/sync --enrollment till-1.json",
  async run(ctx) {
    const { values: v, dataDir } = ctx;
    const relays = relayList(v);
    if (relays.length === 0 && str(v, "server") === undefined) throw new ClientError("invalid-input", "--server or --relay is required; see: npm run device -- enroll --help");
    await mkdir(dataDir, { recursive: true });
    const file = str(v, "enrollment");
    const given = file ? await readEnrollment(file) : {};
    const pick = (name: string, fromFile: string | undefined): string => str(v, name) ?? fromFile ?? need(v, name);
    const config: CliConfig = { server: str(v, "server") ?? (relays[0] as string), token: pick("token", given.token), device: pick("device", given.device), root: pick("root", given.rootUrl) as AutomergeUrl };
    const keyFile = str(v, "public-key");
    const publicKeyPem = keyFile ? await readFile(keyFile, "utf8") : given.publicKey;
    if (publicKeyPem) config.publicKeyPem = publicKeyPem;
    if (relays.length > 0) config.relays = relays;
    await writeFile(path.join(dataDir, CONFIG_FILE), JSON.stringify(config), { mode: 0o600 });
    await withDevice(
      ctx,
      async (d) => {
        const cert = await d.peers.certify();
        const code = await d.peers.pairingCode();
        ctx.out.record(
          { enrolled: true, team: d.team, device: d.deviceId, certifiedUntil: cert.expiresAt, code },
          `enrolled ${d.deviceId} in team ${d.team}; peer certificate until ${cert.expiresAt}, pairing code ${code}`,
        );
      },
      false,
    );
  },
};

export const LINK_COMMANDS: Command[] = [
  {
    name: "certify",
    summary: "renew this device's peer certificate (done by itself whenever it reaches the service)",
    options: {},
    example: "npm run device -- certify --data ./till-1",
    run: (ctx) =>
      withDevice(
        ctx,
        async (d) => {
          const cert = await d.peers.certify();
          const code = await d.peers.pairingCode();
          ctx.out.record({ certified: true, device: d.deviceId, certifiedUntil: cert.expiresAt, code }, `certified until ${cert.expiresAt}, pairing code ${code}`);
        },
        false,
      ),
  },
  {
    name: "peer",
    summary: "sync directly with team mates' devices (no server needed): listen, connect by address and code, or discover",
    options: {
      listen: { type: "string", value: "PORT", help: "accept links from team mates on this port (0: any)" },
      host: { type: "string", value: "ADDR", help: "address to listen on (default 127.0.0.1; 0.0.0.0 for the shop's network)" },
      announce: { type: "boolean", help: "let team mates on the local network find this listener" },
      connect: { type: "string", value: "URL", help: "link to a team mate at ws://host:port/#code=C (repeatable)", multiple: true },
      code: { type: "string", value: "CODE", help: "the pairing code the other device shows" },
      discover: { type: "boolean", help: "link to the first team mate heard announcing on the local network" },
      "discovery-port": { type: "string", value: "UDP", help: "UDP port for --announce and --discover" },
      "link-timeout": { type: "string", value: "MS", help: "fail (exit 1) when a link is not up by then (default 15000)" },
      for: { type: "string", value: "MS", help: "stay linked this long (default 10000)" },
      ...OFFLINE,
    },
    example: "npm run device -- peer --data ./till-1 --listen 7001 --host 0.0.0.0 --for 600000   (then on the other tablet: --connect ws://<address>:7001/#code=<code>)",
    run: (ctx) =>
      withDevice(ctx, async (d) => {
        const v = ctx.values;
        const started = Date.now();
        const discovery = str(v, "discovery-port") !== undefined ? { port: int(v, "discovery-port") } : {};
        d.on("peer-authenticated", (e) =>
          ctx.out.record({ peer: e.address, device: e.peer.device, user: e.peer.user, code: e.peer.code }, `linked with ${e.peer.device} (${e.peer.user}) at ${e.address}`),
        );
        d.on("peer-refused", (e) => process.stderr.write(`${JSON.stringify({ refused: e.address, reason: e.reason })}\n`));
        if (str(v, "listen") !== undefined) {
          const host = str(v, "host") ?? "127.0.0.1";
          const port = await d.listen(int(v, "listen"), host);
          const code = await d.peers.pairingCode();
          const addresses = listenAddresses(host, port).map((a) => `${a}#code=${code}`);
          ctx.out.record({ listening: port, host, code, addresses }, `listening on ${host}:${port}; pairing code ${code}; team mates connect to: ${addresses.join("  ")}`);
          if (v.announce === true) await d.peers.announce(port, discovery);
        }
        const addresses = [...((v.connect as string[] | undefined) ?? [])];
        const linkDeadline = started + int(v, "link-timeout", 15_000);
        if (v.discover === true) {
          let first: string | undefined;
          await d.peers.discover((p) => {
            first ??= p.address;
            ctx.out.record({ found: p.device, address: p.address }, `found ${p.device} at ${p.address}`);
          }, discovery);
          while (first === undefined) {
            if (Date.now() > linkDeadline) throw new ClientError("peer-link", "no team mate announced itself on the local network (is its listener started with --announce?)");
            await sleep(100);
          }
          addresses.push(first);
        }
        const code = str(v, "code");
        for (const address of addresses) d.connectPeer(address, code);
        // A link that never comes up is a failure a person must see, not a quiet exit 0.
        for (const address of addresses) {
          while (!d.peerOnline(address)) {
            if (Date.now() > linkDeadline) throw new ClientError("peer-link", `no link to ${address}: ${d.peers.lastReason(address) ?? "not connected"}`);
            await sleep(100);
          }
          ctx.out.record({ linked: address }, `link up: ${address}`);
        }
        await sleep(Math.max(0, started + int(v, "for", 10_000) - Date.now()));
        const row = { entries: d.entries().length, pending: d.pendingCount() };
        ctx.out.record(row, `${row.entries} entries held, ${row.pending} not yet acknowledged by the relay`);
      }),
  },
];
