/**
 * The little of a WebSocket the client uses: the browser's WebSocket and Node's `ws` both fit,
 * so only the factory differs between platforms (client/node.ts makes Node's).
 */
export interface SocketLike {
  binaryType: string;
  readonly readyState: number;
  send(data: Uint8Array | string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: "open", listener: () => void): void;
  addEventListener(type: "close", listener: (event: { code: number; reason: string }) => void): void;
  addEventListener(type: "message", listener: (event: { data: unknown }) => void): void;
  addEventListener(type: "error", listener: (event: { message?: string; error?: unknown }) => void): void;
}

/** Ready states, as both implementations number them. */
export const SOCKET_OPEN = 1;

/**
 * Opens a socket to `url` presenting `token`. Browsers cannot set headers, so a browser factory
 * puts the token in the query; Node sends a Bearer header so the token stays out of URLs/logs.
 */
export type SocketFactory = (url: string, token: string) => SocketLike;

/** Bytes of a message event's payload, whatever the platform delivered. */
export function messageBytes(data: unknown): Uint8Array | undefined {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (Array.isArray(data) && data.every((d) => d instanceof Uint8Array)) {
    const parts = data as Uint8Array[];
    const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
    let offset = 0;
    for (const p of parts) {
      out.set(p, offset);
      offset += p.byteLength;
    }
    return out;
  }
  return undefined;
}

/** A browser factory: token in the query string, the one place a browser WebSocket can carry it. */
export function browserSocketFactory(WebSocketImpl: new (url: string) => SocketLike): SocketFactory {
  return (url, token) => {
    const u = new URL(url);
    u.searchParams.set("token", token);
    return new WebSocketImpl(u.toString());
  };
}
