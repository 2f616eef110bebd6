/**
 * An outgoing peer socket that looks "open" to the sync adapter only after the handshake
 * (handshake.ts) has proven both devices. Platform-neutral: it wraps any SocketLike (Node's `ws`,
 * a browser WebSocket). Nothing the adapter sends goes out before then, and nothing the other side
 * sends reaches the adapter before then; afterwards every frame is sealed (channel.ts).
 */
import { messageBytes, SOCKET_OPEN, type SocketFactory, type SocketLike } from "../socket.js";
import type { SealedChannel } from "./channel.js";
import { connectorHandshake, FrameQueue, PeerRefusal, REFUSED_CODE, REFUSED_REASON, type PeerCredentials, type PeerIdentity, type PeerPolicy } from "./handshake.js";

const CONNECTING = 0;
const HANDSHAKE_MS = 8_000;

type Listener = (event: never) => void;

export interface PeerSocketHooks {
  credentials: () => PeerCredentials;
  policy: () => PeerPolicy;
  onAuthenticated?: (peer: PeerIdentity) => void;
  /** The precise reason a link was refused (by this side) or failed during the handshake. */
  onRefused?: (reason: string) => void;
}

class AuthenticatedSocket implements SocketLike {
  readonly #inner: SocketLike;
  readonly #listeners = new Map<string, Listener[]>();
  #open = false;
  #failed = false;
  #channel: SealedChannel | undefined;

  constructor(inner: SocketLike, hooks: PeerSocketHooks) {
    this.#inner = inner;
    inner.binaryType = "arraybuffer";
    // The handshake's deadline runs from the socket's opening: a slow connect is not its fault.
    let queue: FrameQueue | undefined;
    inner.addEventListener("message", (event) => {
      if (this.#open) this.#receive(event.data);
      else if (!this.#failed) queue?.push(event.data);
    });
    inner.addEventListener("error", (event) => {
      queue?.fail(new Error(event.message ?? "socket error"));
      this.#emit("error", event);
    });
    inner.addEventListener("close", (event) => {
      queue?.fail(new Error(event.code === REFUSED_CODE ? `the other device refused us (${REFUSED_REASON})` : `closed ${event.code} during the handshake`));
      this.#emit("close", event);
    });
    inner.addEventListener("open", () => {
      const frames = new FrameQueue(HANDSHAKE_MS);
      queue = frames;
      let creds: PeerCredentials;
      let policy: PeerPolicy;
      try {
        creds = hooks.credentials();
        policy = hooks.policy();
      } catch (err) {
        frames.done();
        this.#refuse(hooks, err instanceof Error ? err.message : String(err));
        return;
      }
      connectorHandshake({ send: (t) => inner.send(t), receive: () => frames.receive() }, creds, policy).then(
        ({ peer, channel }) => {
          frames.done();
          if (this.#failed || inner.readyState !== SOCKET_OPEN) return;
          this.#channel = channel;
          this.#open = true;
          hooks.onAuthenticated?.(peer);
          this.#emit("open", undefined);
        },
        (err: unknown) => {
          frames.done();
          this.#refuse(hooks, err instanceof Error ? (err instanceof PeerRefusal ? err.reason : err.message) : String(err));
        },
      );
    });
  }

  #receive(data: unknown): void {
    const bytes = messageBytes(data);
    const channel = this.#channel;
    if (!bytes || !channel) {
      this.#drop("a frame that is not sealed after the handshake");
      return;
    }
    channel.open(bytes).then(
      (plain) => this.#emit("message", { data: plain }),
      (err: unknown) => this.#drop(err instanceof Error ? err.message : String(err)),
    );
  }

  /** The link is no longer trustworthy: the adapter hears an error and a close, and reconnects. */
  #drop(reason: string): void {
    if (this.#failed) return;
    this.#failed = true;
    this.#emit("error", { message: `peer link dropped: ${reason}` });
    try {
      this.#inner.close(REFUSED_CODE, REFUSED_REASON);
    } catch {
      // Already closing.
    }
  }

  #refuse(hooks: PeerSocketHooks, reason: string): void {
    if (this.#failed) return;
    this.#failed = true;
    hooks.onRefused?.(reason);
    // The adapter keeps the error's text as the link's reason; the other side only sees the close.
    this.#emit("error", { message: `peer refused: ${reason}` });
    try {
      this.#inner.close(REFUSED_CODE, REFUSED_REASON);
    } catch {
      // Already closing.
    }
  }

  #emit(type: string, event: unknown): void {
    for (const l of this.#listeners.get(type) ?? []) (l as (e: unknown) => void)(event);
  }

  get binaryType(): string {
    return this.#inner.binaryType;
  }

  set binaryType(value: string) {
    this.#inner.binaryType = value;
  }

  get readyState(): number {
    const state = this.#inner.readyState;
    return this.#open || state !== SOCKET_OPEN ? state : CONNECTING;
  }

  send(data: Uint8Array | string): void {
    const channel = this.#channel;
    if (!this.#open || !channel || typeof data === "string") throw new Error("peer not authenticated yet");
    channel.seal(data).then(
      (sealed) => {
        if (!this.#failed && this.#inner.readyState === SOCKET_OPEN) this.#inner.send(sealed);
      },
      (err: unknown) => this.#drop(err instanceof Error ? err.message : String(err)),
    );
  }

  close(code?: number, reason?: string): void {
    this.#inner.close(code, reason);
  }

  addEventListener(type: string, listener: Listener): void {
    const list = this.#listeners.get(type) ?? [];
    list.push(listener);
    this.#listeners.set(type, list);
  }
}

/** Wraps a platform's raw socket factory so every peer socket authenticates first. No token is used. */
export function authenticatedPeerSocket(raw: (url: string) => SocketLike, hooks: PeerSocketHooks): SocketFactory {
  return (url) => new AuthenticatedSocket(raw(url), hooks);
}
