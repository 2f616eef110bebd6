/**
 * Finding team mates on the shop's network without typing an address: a listening tablet sends a
 * small UDP multicast beacon (its port, device id and pairing code, and a team tag) every few
 * seconds; a tablet looking for peers listens for beacons with its own team's tag (keys.ts teamTag). A beacon is
 * only a hint: whoever answers at that address still has to pass the handshake (handshake.ts),
 * and the code in the beacon pins the key that must answer. The tag is a hash of the team and the
 * service's key, so a stranger on the network cannot tell which team a beacon belongs to.
 * Node-only (dgram); multicast stays on the local network (TTL 1).
 */
import dgram from "node:dgram";
import { normalizePairingCode } from "./keys.js";
import type { DiscoveryOptions, FoundPeer, PeerDiscovery } from "./types.js";

export const DISCOVERY_GROUP = "239.255.77.77";
export const DISCOVERY_PORT = 47777;
const BEACON_INTERVAL_MS = 2_000;
const MAX_BEACON_BYTES = 512;

type Beacon = FoundPeer;

/** Announces a listener until stopped. */
export async function announce(args: { tag: string; device: string; code: string; listenPort: number } & DiscoveryOptions): Promise<{ stop(): void }> {
  const group = args.group ?? DISCOVERY_GROUP;
  const port = args.port ?? DISCOVERY_PORT;
  const socket = dgram.createSocket({ type: "udp4", reuseAddr: true });
  socket.on("error", () => undefined);
  await new Promise<void>((resolve) => socket.bind(0, () => resolve()));
  socket.setMulticastTTL(1);
  socket.setMulticastLoopback(true);
  const beacon = Buffer.from(JSON.stringify({ t: "ledger-sync-peer", v: 1, tag: args.tag, device: args.device, code: args.code, port: args.listenPort }));
  const send = (): void => socket.send(beacon, port, group, () => undefined);
  send();
  const timer = setInterval(send, BEACON_INTERVAL_MS);
  return {
    stop() {
      clearInterval(timer);
      socket.close();
    },
  };
}

/** Parses a beacon from the network; undefined for anything that is not one of our team's. */
export function parseBeacon(bytes: Buffer, from: string, tag: string): Beacon | undefined {
  if (bytes.byteLength > MAX_BEACON_BYTES) return undefined;
  let b: unknown;
  try {
    b = JSON.parse(bytes.toString("utf8"));
  } catch {
    return undefined;
  }
  if (typeof b !== "object" || b === null) return undefined;
  const r = b as Record<string, unknown>;
  if (r.t !== "ledger-sync-peer" || r.v !== 1 || r.tag !== tag) return undefined;
  const code = typeof r.code === "string" ? normalizePairingCode(r.code) : undefined;
  if (!code || typeof r.device !== "string" || !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(r.device)) return undefined;
  if (typeof r.port !== "number" || !Number.isInteger(r.port) || r.port < 1 || r.port > 65535) return undefined;
  return { device: r.device, code, address: `ws://${from}:${r.port}/#code=${code}` };
}

/** Listens for team mates' beacons; `onFound` is called once per device and address. */
export async function browse(args: { tag: string; onFound(b: Beacon): void } & DiscoveryOptions): Promise<{ stop(): void }> {
  const group = args.group ?? DISCOVERY_GROUP;
  const port = args.port ?? DISCOVERY_PORT;
  const socket = dgram.createSocket({ type: "udp4", reuseAddr: true });
  socket.on("error", () => undefined);
  const seen = new Set<string>();
  socket.on("message", (msg, rinfo) => {
    const b = parseBeacon(msg, rinfo.address, args.tag);
    if (!b || seen.has(`${b.device} ${b.address}`)) return;
    seen.add(`${b.device} ${b.address}`);
    args.onFound(b);
  });
  await new Promise<void>((resolve) => socket.bind(port, () => resolve()));
  socket.addMembership(group);
  return { stop: () => socket.close() };
}

export const multicastDiscovery: PeerDiscovery = { announce, browse };
