/**
 * The Node listener for peer devices: a WebSocket server on the address a person chose, where
 * every socket runs the handshake (handshake.ts) first and only a proven device of the team is
 * handed to automerge-repo's server adapter. A refused socket is closed with a reason that says
 * nothing about this team; the precise reason goes to `onRefused`.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { EventEmitter } from "node:events";
import { WebSocketServerAdapter } from "@automerge/automerge-repo-network-websocket";
import WebSocket, { WebSocketServer } from "ws";
import type { SealedChannel } from "./channel.js";
import { FrameQueue, listenerHandshake, MAX_HANDSHAKE_FRAME, PeerRefusal, REFUSED_CODE, REFUSED_REASON } from "./handshake.js";
import type { ListenArgs, PeerListener } from "./types.js";

/** Largest sync message accepted from a peer device. */
export const PEER_MAX_PAYLOAD = 16 * 1024 * 1024;
/** Ping interval of the listener; a peer that misses one is dropped. */
const PEER_KEEPALIVE_MS = 15_000;
const HANDSHAKE_MS = 8_000;
/** Sockets still in their handshake at once: a stranger cannot hold many. */
const MAX_PENDING_HANDSHAKES = 16;

/**
 * Until a peer is proven, ws would still buffer a frame up to PEER_MAX_PAYLOAD (16 MiB) from
 * anyone who dials: lower the receiver's limit for the handshake (ws closes with 1009 beyond it).
 * ws keeps it in a private field; if a later ws moves it, this does nothing and the handshake's
 * own frame-size check still refuses the frame once received.
 */
function limitIncoming(ws: WebSocket, bytes: number): () => void {
  const receiver = (ws as unknown as { _receiver?: { _maxPayload?: unknown } })._receiver;
  if (!receiver || typeof receiver._maxPayload !== "number") return () => undefined;
  const before = receiver._maxPayload;
  receiver._maxPayload = bytes;
  return () => {
    receiver._maxPayload = before;
  };
}

/**
 * What the stock server adapter sees of a server: `connection` for authenticated sockets only,
 * `clients` for its keepalive, `close`.
 */
class AuthenticatedServer extends EventEmitter {
  readonly clients = new Set<SealedSocket>();
}

/**
 * What the stock server adapter sees of a socket (the `ws` calls it makes): frames are opened
 * before it reads them and sealed after it writes them. A frame that fails to open ends the link.
 */
class SealedSocket extends EventEmitter {
  /** The adapter's keepalive flag. */
  isAlive = true;
  readonly #ws: WebSocket;
  readonly #channel: SealedChannel;
  #dead = false;

  constructor(ws: WebSocket, channel: SealedChannel, onBroken: (reason: string) => void) {
    super();
    this.#ws = ws;
    this.#channel = channel;
    ws.on("message", (data: WebSocket.RawData, isBinary: boolean) => {
      if (this.#dead) return;
      if (!isBinary) {
        this.#kill(onBroken, "a text frame after the handshake");
        return;
      }
      const bytes = Buffer.isBuffer(data) ? data : Buffer.concat(Array.isArray(data) ? data : [Buffer.from(data)]);
      channel.open(bytes).then(
        (plain) => {
          if (!this.#dead) this.emit("message", plain);
        },
        (err: unknown) => this.#kill(onBroken, err instanceof Error ? err.message : String(err)),
      );
    });
    ws.on("pong", () => this.emit("pong"));
    ws.on("close", () => this.emit("close"));
  }

  #kill(onBroken: (reason: string) => void, reason: string): void {
    if (this.#dead) return;
    this.#dead = true;
    onBroken(reason);
    this.#ws.close(REFUSED_CODE, REFUSED_REASON);
  }

  get readyState(): number {
    return this.#ws.readyState;
  }

  send(data: ArrayBuffer | Uint8Array): void {
    this.#channel.seal(data instanceof Uint8Array ? data : new Uint8Array(data)).then(
      (sealed) => {
        if (!this.#dead && this.#ws.readyState === WebSocket.OPEN) this.#ws.send(sealed);
      },
      () => this.#ws.terminate(),
    );
  }

  ping(): void {
    this.#ws.ping();
  }

  close(code?: number, reason?: string): void {
    this.#ws.close(code, reason);
  }

  terminate(): void {
    this.#ws.terminate();
  }
}

export async function listenForPeers(args: ListenArgs): Promise<PeerListener> {
  const server = http.createServer((_req, res) => {
    res.writeHead(404).end();
  });
  const wss = new WebSocketServer({ noServer: true, maxPayload: PEER_MAX_PAYLOAD, perMessageDeflate: false });
  wss.on("error", () => undefined);
  const authenticated = new AuthenticatedServer();
  let pending = 0;

  wss.on("connection", (ws, req) => {
    // The stock server adapter adds no `error` listener: an ECONNRESET would kill the process.
    ws.on("error", () => undefined);
    const remote = `${req.socket.remoteAddress ?? "?"}:${req.socket.remotePort ?? "?"}`;
    if (pending >= MAX_PENDING_HANDSHAKES) {
      ws.close(REFUSED_CODE, REFUSED_REASON);
      args.onRefused?.(remote, "too many handshakes at once");
      return;
    }
    pending += 1;
    const queue = new FrameQueue(HANDSHAKE_MS);
    const onMessage = (data: WebSocket.RawData, isBinary: boolean): void => {
      const size = Array.isArray(data) ? data.reduce((n, b) => n + b.byteLength, 0) : data.byteLength;
      if (isBinary || size > MAX_HANDSHAKE_FRAME) queue.fail(new PeerRefusal(isBinary ? "binary frame during the handshake" : "handshake frame too large"));
      else queue.push(Buffer.isBuffer(data) ? data.toString("utf8") : Buffer.concat(Array.isArray(data) ? data : [Buffer.from(data)]).toString("utf8"));
    };
    const onClose = (): void => queue.fail(new Error("closed during the handshake"));
    ws.on("message", onMessage);
    ws.on("close", onClose);
    const channel = { send: (t: string) => ws.send(t), receive: () => queue.receive() };
    const restoreLimit = limitIncoming(ws, MAX_HANDSHAKE_FRAME);
    Promise.resolve()
      .then(() => listenerHandshake(channel, args.credentials(), args.policy()))
      .then(({ peer, channel }) => {
        queue.done();
        restoreLimit();
        ws.off("message", onMessage);
        ws.off("close", onClose);
        if (ws.readyState !== WebSocket.OPEN) return;
        const sealed = new SealedSocket(ws, channel, (reason) => args.onRefused?.(remote, `link with device ${peer.device} dropped: ${reason}`));
        authenticated.clients.add(sealed);
        ws.on("close", () => authenticated.clients.delete(sealed));
        args.onAuthenticated?.(remote, peer);
        authenticated.emit("connection", sealed);
      })
      .catch((err: unknown) => {
        queue.done();
        args.onRefused?.(remote, err instanceof PeerRefusal ? err.reason : err instanceof Error ? err.message : String(err));
        if (ws.readyState === WebSocket.OPEN) ws.close(REFUSED_CODE, REFUSED_REASON);
        else ws.terminate();
      })
      .finally(() => {
        pending -= 1;
      });
  });
  server.on("upgrade", (req, socket, head) => {
    socket.on("error", () => undefined);
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit("connection", ws, req));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(args.port, args.host, () => resolve());
  });
  const adapter = new WebSocketServerAdapter(authenticated as never, PEER_KEEPALIVE_MS);
  let closed = false;
  return {
    port: (server.address() as AddressInfo).port,
    host: args.host,
    adapter,
    async close() {
      if (closed) return;
      closed = true;
      for (const ws of wss.clients) ws.terminate();
      authenticated.emit("close");
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
