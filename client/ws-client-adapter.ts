/**
 * A reconnecting WebSocket client adapter for automerge-repo, used for the relay and for
 * outgoing peer-to-peer connections. It speaks the same join/peer protocol as the stock
 * `WebSocketClientAdapter`, and differs where the stock one hurts an offline device
 * (AUTOMERGE-NOTES.md):
 *
 * - **send never throws.** The stock adapter throws "Websocket not ready" when the repo answers a
 *   sync message on a socket that is closing. The repo sends from inside `DocHandle.update`, after
 *   Automerge has already consumed the old document, so the throw leaves the handle holding an
 *   outdated document and every later change fails ("Attempting to change an outdated
 *   document"). Here a message for a socket that is not open is dropped: exactly what a lost
 *   packet would do, and the sync protocol starts over on the next connection.
 * - **no socket error escapes.** Every socket gets an `error` listener; an ECONNRESET or a 401 at
 *   the handshake becomes a status event and a reconnect, never an unhandled `error`.
 * - **backoff with jitter** instead of a fixed retry interval, and a handshake deadline.
 * - **pause/resume**, so a device can go offline on purpose without shutting its repo down.
 * - **several addresses** (failover.ts): when its relay dies, the next attempt dials the next one.
 */
import { NetworkAdapter, cbor, type Message, type PeerId, type PeerMetadata } from "@automerge/automerge-repo";
import { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from "./backoff.js";
import { RelayRotation } from "./failover.js";
import { messageBytes, SOCKET_OPEN, type SocketFactory, type SocketLike } from "./socket.js";

const PROTOCOL_V1 = "1";
/** Time from opening a socket to the relay's `peer` answer before the attempt counts as failed. */
const DEFAULT_HANDSHAKE_MS = 10_000;

export type LinkStatus =
  | { state: "online"; remotePeerId: PeerId; url: string }
  | { state: "offline"; reason: string; retryInMs: number | null };

export interface ClientAdapterOptions {
  /** ws:// or wss:// address of the sync endpoint, or several tried in turn (failover). */
  url: string | readonly string[];
  /** With several addresses, the index of the first one dialled. */
  startIndex?: number;
  /** Called on every attempt, so a refreshed token is used on the next reconnect. */
  token: () => string;
  createSocket: SocketFactory;
  backoff?: BackoffOptions;
  handshakeMs?: number;
  /** Start paused (no connection until resume()). */
  paused?: boolean;
  onStatus?: (status: LinkStatus) => void;
}

export class ReconnectingClientAdapter extends NetworkAdapter {
  readonly #opts: ClientAdapterOptions;
  #socket: SocketLike | undefined;
  #remotePeerId: PeerId | undefined;
  readonly #rotation: RelayRotation;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #handshakeTimer: ReturnType<typeof setTimeout> | undefined;
  /** connect() was called by the repo and disconnect() was not. */
  #wanted = false;
  #paused: boolean;
  #ready = false;
  #readyResolve!: () => void;
  readonly #readyPromise = new Promise<void>((resolve) => (this.#readyResolve = resolve));
  #lastReason = "not connected yet";

  constructor(opts: ClientAdapterOptions) {
    super();
    this.#opts = opts;
    this.#paused = opts.paused ?? false;
    this.#rotation = new RelayRotation(typeof opts.url === "string" ? [opts.url] : opts.url, opts.startIndex ?? 0);
  }

  /** The address dialled now (or next, while offline). */
  get url(): string {
    return this.#rotation.url;
  }

  /** The peer id of the other end while a session is established. */
  get remotePeerId(): PeerId | undefined {
    return this.#remotePeerId;
  }

  get online(): boolean {
    return this.#remotePeerId !== undefined;
  }

  get lastReason(): string {
    return this.#lastReason;
  }

  isReady(): boolean {
    return this.#ready;
  }

  /**
   * Resolves once the first attempt has either reached the peer or failed. The repo waits on it
   * before declaring a document unavailable; an offline device must not wait forever for that.
   */
  whenReady(): Promise<void> {
    return this.#readyPromise;
  }

  #markReady(): void {
    if (!this.#ready) {
      this.#ready = true;
      this.#readyResolve();
    }
  }

  connect(peerId: PeerId, peerMetadata?: PeerMetadata): void {
    this.peerId = peerId;
    this.peerMetadata = peerMetadata ?? {};
    this.#wanted = true;
    if (this.#paused) {
      this.#markReady();
      return;
    }
    this.#open();
  }

  disconnect(): void {
    this.#wanted = false;
    this.#teardown("disconnected", null);
  }

  /** Goes offline on purpose: closes the socket and stops reconnecting until resume(). */
  pause(): void {
    this.#paused = true;
    this.#teardown("paused", null);
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#rotation.reset();
    if (this.#wanted && !this.#socket) this.#open();
  }

  /** Drops the current connection (if any) and reconnects after the usual backoff. */
  reconnectNow(): void {
    if (!this.#wanted || this.#paused) return;
    this.#rotation.reset();
    // Asked for, not a failure of this relay: come back to the same one.
    if (this.#socket) this.#drop("reconnect requested", false);
    else {
      this.#clearTimers();
      this.#open();
    }
  }

  send(message: Message): void {
    const socket = this.#socket;
    if (!socket || socket.readyState !== SOCKET_OPEN || this.#remotePeerId === undefined) return;
    if (message.targetId !== this.#remotePeerId) return;
    if ("data" in message && message.data instanceof Uint8Array && message.data.byteLength === 0) return;
    try {
      socket.send(cbor.encode(message));
    } catch (err) {
      // Closing underneath us: the close event follows and the sync restarts on reconnect.
      this.#drop(`send failed: ${errorText(err)}`);
    }
  }

  #open(): void {
    this.#clearTimers();
    if (!this.#wanted || this.#paused || this.#socket) return;
    let socket: SocketLike;
    try {
      socket = this.#opts.createSocket(this.#rotation.url, this.#opts.token());
      socket.binaryType = "arraybuffer";
    } catch (err) {
      this.#scheduleRetry(`cannot open socket: ${errorText(err)}`);
      return;
    }
    this.#socket = socket;
    socket.addEventListener("open", () => {
      if (this.#socket !== socket) return;
      this.#sendRaw(socket, {
        type: "join",
        senderId: this.peerId,
        peerMetadata: this.peerMetadata ?? {},
        supportedProtocolVersions: [PROTOCOL_V1],
      });
    });
    socket.addEventListener("message", (event) => {
      if (this.#socket === socket) this.#receive(event.data);
    });
    socket.addEventListener("error", (event) => {
      // Recorded only: the close event that follows does the reconnecting.
      if (this.#socket === socket) this.#lastReason = `socket error: ${event.message ?? errorText(event.error)}`;
    });
    socket.addEventListener("close", (event) => {
      if (this.#socket !== socket) return;
      const reason = event.reason ? `closed ${event.code}: ${event.reason}` : `closed ${event.code}`;
      this.#socket = undefined;
      this.#lostSession();
      this.#scheduleRetry(this.#lastReason.startsWith("socket error") ? this.#lastReason : reason);
    });
    this.#handshakeTimer = setTimeout(() => {
      if (this.#socket === socket && this.#remotePeerId === undefined) this.#drop("handshake timed out");
    }, this.#opts.handshakeMs ?? DEFAULT_HANDSHAKE_MS);
  }

  #receive(data: unknown): void {
    const bytes = messageBytes(data);
    let message: unknown;
    try {
      if (!bytes || bytes.byteLength === 0) throw new Error("empty or non-binary frame");
      message = cbor.decode(bytes);
    } catch (err) {
      this.#drop(`undecodable message: ${errorText(err)}`);
      return;
    }
    if (typeof message !== "object" || message === null) {
      this.#drop("message is not an object");
      return;
    }
    const m = message as { type?: unknown; senderId?: unknown; peerMetadata?: unknown; message?: unknown };
    if (m.type === "peer") {
      if (typeof m.senderId !== "string" || m.senderId.length === 0 || this.#remotePeerId !== undefined) {
        this.#drop("bad peer message");
        return;
      }
      if (this.#handshakeTimer) clearTimeout(this.#handshakeTimer);
      this.#handshakeTimer = undefined;
      this.#remotePeerId = m.senderId as PeerId;
      this.#rotation.succeeded();
      this.#lastReason = "connected";
      this.#markReady();
      this.emit("peer-candidate", { peerId: this.#remotePeerId, peerMetadata: sanitizeMetadata(m.peerMetadata) });
      this.#opts.onStatus?.({ state: "online", remotePeerId: this.#remotePeerId, url: this.#rotation.url });
      return;
    }
    if (m.type === "error") {
      this.#lastReason = `peer error: ${typeof m.message === "string" ? m.message.slice(0, 200) : "unknown"}`;
      return;
    }
    if (this.#remotePeerId === undefined || m.senderId !== this.#remotePeerId) return;
    // The repo checks message shapes (isRepoMessage) before acting on them.
    this.emit("message", message as Message);
  }

  #sendRaw(socket: SocketLike, message: object): void {
    try {
      socket.send(cbor.encode(message));
    } catch (err) {
      this.#drop(`send failed: ${errorText(err)}`);
    }
  }

  /** Closes the current socket and reconnects; `failed`: to the next address. */
  #drop(reason: string, failed = true): void {
    const socket = this.#socket;
    if (!socket) return;
    this.#lastReason = reason;
    this.#socket = undefined;
    this.#lostSession();
    try {
      socket.close(1000, reason.slice(0, 120));
    } catch {
      // Already closed.
    }
    this.#scheduleRetry(reason, failed);
  }

  #lostSession(): void {
    if (this.#handshakeTimer) clearTimeout(this.#handshakeTimer);
    this.#handshakeTimer = undefined;
    const peerId = this.#remotePeerId;
    this.#remotePeerId = undefined;
    if (peerId !== undefined) this.emit("peer-disconnected", { peerId });
  }

  #scheduleRetry(reason: string, failed = true): void {
    this.#lastReason = reason;
    this.#markReady();
    if (!this.#wanted || this.#paused) {
      this.#opts.onStatus?.({ state: "offline", reason, retryInMs: null });
      return;
    }
    if (this.#retryTimer) return;
    const backoff = this.#opts.backoff ?? DEFAULT_BACKOFF;
    const delay = failed ? this.#rotation.failed(backoff) : backoffDelay(0, backoff);
    this.#opts.onStatus?.({ state: "offline", reason, retryInMs: delay });
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      this.#open();
    }, delay);
  }

  #teardown(reason: string, retryInMs: null): void {
    this.#clearTimers();
    const socket = this.#socket;
    this.#socket = undefined;
    const wasOnline = this.#remotePeerId !== undefined;
    this.#lostSession();
    if (socket) {
      try {
        socket.close(1000, reason);
      } catch {
        // Already closed.
      }
    }
    this.#markReady();
    if (socket || wasOnline) this.#opts.onStatus?.({ state: "offline", reason, retryInMs });
  }

  #clearTimers(): void {
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    if (this.#handshakeTimer) clearTimeout(this.#handshakeTimer);
    this.#retryTimer = undefined;
    this.#handshakeTimer = undefined;
  }
}

/** The repo reads storageId and isEphemeral from peer metadata; nothing else is passed on. */
function sanitizeMetadata(raw: unknown): PeerMetadata {
  if (typeof raw !== "object" || raw === null) return {};
  const r = raw as { storageId?: unknown; isEphemeral?: unknown };
  const out: PeerMetadata = {};
  if (typeof r.storageId === "string" && r.storageId.length <= 200) out.storageId = r.storageId as PeerMetadata["storageId"];
  if (typeof r.isEphemeral === "boolean") out.isEphemeral = r.isEphemeral;
  return out;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
