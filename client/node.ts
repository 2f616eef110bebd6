/**
 * Everything Node-only of the client, in one place: file storage, `ws` sockets to the relay, and
 * peer links (client/peer/node-platform.ts: the listener, raw peer sockets, the device key file).
 * The rest of the client runs in a browser with an IndexedDB storage adapter and
 * `browserSocketFactory`.
 */
import path from "node:path";
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs";
import WebSocket from "ws";
import { Device, type DeviceOptions, type Platform } from "./device.js";
import { nodePeerPlatform } from "./peer/node-platform.js";
import type { SocketFactory, SocketLike } from "./socket.js";

/** Sockets to the relay: the token in a Bearer header, out of URLs and logs. */
export const nodeRelaySocket: SocketFactory = (url, token) =>
  new WebSocket(url, {
    headers: { authorization: `Bearer ${token}` },
    perMessageDeflate: false,
    handshakeTimeout: 10_000,
    maxPayload: 64 * 1024 * 1024,
  }) as unknown as SocketLike;

export function nodePlatform(dataDir: string): Platform {
  return {
    storage: new NodeFSStorageAdapter(path.join(dataDir, "automerge")),
    relaySocket: nodeRelaySocket,
    peer: nodePeerPlatform(dataDir),
  };
}

export type NodeDeviceOptions = Omit<DeviceOptions, "platform"> & { dataDir: string };

/** Opens a device whose documents live in `dataDir`. */
export function openDevice(opts: NodeDeviceOptions): Promise<Device> {
  const { dataDir, ...rest } = opts;
  return Device.open({ ...rest, platform: nodePlatform(dataDir) });
}
