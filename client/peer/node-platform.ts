/** Node's side of peer links: `ws` sockets, the listener, and the device key in a 0600 file. */
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import WebSocket from "ws";
import type { SocketLike } from "../socket.js";
import { multicastDiscovery } from "./discovery.js";
import type { StoredDeviceKey } from "./keys.js";
import { listenForPeers, PEER_MAX_PAYLOAD } from "./listener.js";
import type { DeviceKeyStore, PeerPlatform } from "./types.js";

export const DEVICE_KEY_FILE = "device-key.json";

function isStoredKey(v: unknown): v is StoredDeviceKey {
  const jwk = (v as { privateJwk?: { d?: unknown } } | null)?.privateJwk;
  return typeof jwk === "object" && jwk !== null && typeof jwk.d === "string";
}

export function fileKeyStore(dataDir: string): DeviceKeyStore {
  const file = path.join(dataDir, DEVICE_KEY_FILE);
  const load = async (): Promise<StoredDeviceKey | undefined> => {
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
    const parsed = JSON.parse(text) as unknown;
    if (!isStoredKey(parsed)) throw new Error(`${file} does not hold a device key`);
    return parsed;
  };
  return {
    load,
    async create(key) {
      await mkdir(dataDir, { recursive: true });
      try {
        // "wx": two processes on one data folder must not replace each other's (certified) key.
        await writeFile(file, JSON.stringify(key), { mode: 0o600, flag: "wx" });
        await chmod(file, 0o600);
        return key;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
        const kept = await load();
        if (!kept) throw new Error(`${file} vanished while it was created`);
        return kept;
      }
    },
  };
}

/** No token, no credentials in the upgrade request: the handshake on the socket does that. */
export function nodeRawPeerSocket(url: string): SocketLike {
  const u = new URL(url);
  u.hash = "";
  const ws = new WebSocket(u.toString(), { perMessageDeflate: false, handshakeTimeout: 10_000, maxPayload: PEER_MAX_PAYLOAD });
  return ws as unknown as SocketLike;
}

export function nodePeerPlatform(dataDir: string): PeerPlatform {
  return { rawSocket: nodeRawPeerSocket, listen: listenForPeers, keyStore: fileKeyStore(dataDir), discovery: multicastDiscovery };
}
