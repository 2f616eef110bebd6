/**
 * Everything Node-only of the client, in one place: file storage, `ws` sockets, and the local
 * listener that lets devices of a team sync with each other without the relay. The rest of the
 * client runs in a browser with an IndexedDB storage adapter and `browserSocketFactory`.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs";
import { WebSocketServerAdapter } from "@automerge/automerge-repo-network-websocket";
import WebSocket, { WebSocketServer } from "ws";
import { Device, type DeviceOptions, type ListenArgs, type PeerListener, type Platform } from "./device.js";
import type { SocketFactory, SocketLike } from "./socket.js";

/** Response header in which a listening device presents its own token to the connecting one. */
export const PEER_TOKEN_HEADER = "x-ledger-device-token";
/** Largest sync message accepted from a peer device. */
const PEER_MAX_PAYLOAD = 16 * 1024 * 1024;
/** Ping interval of the listener; a peer that misses one is dropped. */
const PEER_KEEPALIVE_MS = 15_000;

/** Sockets to the relay: the token in a Bearer header, out of URLs and logs. */
export const nodeRelaySocket: SocketFactory = (url, token) =>
  new WebSocket(url, {
    headers: { authorization: `Bearer ${token}` },
    perMessageDeflate: false,
    handshakeTimeout: 10_000,
    maxPayload: 64 * 1024 * 1024,
  }) as unknown as SocketLike;

/**
 * Sockets to another device: ours goes as a Bearer header; theirs comes back in a response
 * header and is checked before the socket counts as open, so a device of another team never
 * gets a single sync message from us.
 */
export function nodePeerSocket(check: (token: string) => void): SocketFactory {
  return (url, token) => {
    const ws = new WebSocket(url, {
      headers: { authorization: `Bearer ${token}` },
      perMessageDeflate: false,
      handshakeTimeout: 10_000,
      maxPayload: PEER_MAX_PAYLOAD,
    });
    ws.on("upgrade", (res) => {
      const presented = res.headers[PEER_TOKEN_HEADER];
      try {
        if (typeof presented !== "string") throw new Error("peer presented no token");
        check(presented);
      } catch (err) {
        // ws stops opening a socket that is no longer CONNECTING after `upgrade`: no `open` follows.
        ws.emit("error", new Error(`peer refused: ${err instanceof Error ? err.message : "bad token"}`));
        ws.terminate();
      }
    });
    return ws as unknown as SocketLike;
  };
}

function bearer(req: http.IncomingMessage): string | undefined {
  const auth = req.headers.authorization;
  if (typeof auth === "string" && auth.startsWith("Bearer ")) return auth.slice(7).trim();
  return new URL(req.url ?? "/", "http://peer.invalid").searchParams.get("token") ?? undefined;
}

/** A local WebSocket listener for devices of the same team, checked at the HTTP upgrade. */
export async function listenForPeers(args: ListenArgs): Promise<PeerListener> {
  const server = http.createServer((_req, res) => {
    res.writeHead(404).end();
  });
  const wss = new WebSocketServer({ noServer: true, maxPayload: PEER_MAX_PAYLOAD, perMessageDeflate: false });
  wss.on("error", () => undefined);
  wss.on("headers", (headers) => headers.push(`${PEER_TOKEN_HEADER}: ${args.token()}`));
  wss.on("connection", (socket) => {
    // The stock server adapter adds no `error` listener: an ECONNRESET would kill the process.
    socket.on("error", () => undefined);
  });
  server.on("upgrade", (req, socket, head) => {
    socket.on("error", () => undefined);
    const token = bearer(req);
    try {
      if (!token) throw new Error("missing token");
      args.check(token);
    } catch (err) {
      const body = (err instanceof Error ? err.message : "refused").replace(/[\r\n]/g, " ");
      socket.end(`HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit("connection", ws, req));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(args.port, args.host, () => resolve());
  });
  const adapter = new WebSocketServerAdapter(wss as never, PEER_KEEPALIVE_MS);
  let closed = false;
  return {
    port: (server.address() as AddressInfo).port,
    adapter,
    async close() {
      if (closed) return;
      closed = true;
      for (const ws of wss.clients) ws.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export function nodePlatform(dataDir: string): Platform {
  return {
    storage: new NodeFSStorageAdapter(path.join(dataDir, "automerge")),
    relaySocket: nodeRelaySocket,
    peerSocket: nodePeerSocket,
    listen: listenForPeers,
  };
}

export type NodeDeviceOptions = Omit<DeviceOptions, "platform"> & { dataDir: string };

/** Opens a device whose documents live in `dataDir`. */
export function openDevice(opts: NodeDeviceOptions): Promise<Device> {
  const { dataDir, ...rest } = opts;
  return Device.open({ ...rest, platform: nodePlatform(dataDir) });
}
