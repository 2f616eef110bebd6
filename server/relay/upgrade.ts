/**
 * Authenticates WebSocket upgrades on `/sync` before ws accepts them: a refused client gets an
 * HTTP status and a one-line reason, and no socket the relay has to look after.
 */
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { randomUUID } from "node:crypto";
import type { WebSocket, WebSocketServer } from "ws";
import type { Claims } from "../../shared/auth/claims.js";
import type { Logger } from "../log.js";
import type { RelayMetrics } from "./metrics.js";

export const SYNC_PATH = "/sync";

export interface UpgradeDeps {
  wss: WebSocketServer;
  verify(token: string): Claims;
  /** Why these claims may not open one more session now (connections per token), or undefined. */
  refusal(claims: Claims): string | undefined;
  /** Binds the socket to its claims; false when it was refused after all (and closed). */
  attach(socket: WebSocket, claims: Claims, connId: string): boolean;
  metrics: RelayMetrics;
  logger: Logger;
  /** False while shutting down. */
  accepting(): boolean;
}

/** The token comes as `?token=` (browsers cannot set headers on a WebSocket) or a Bearer header. */
export function tokenFrom(req: IncomingMessage): string | undefined {
  const auth = req.headers.authorization;
  if (typeof auth === "string" && auth.startsWith("Bearer ")) return auth.slice(7).trim();
  const url = new URL(req.url ?? "/", "http://relay.invalid");
  return url.searchParams.get("token") ?? undefined;
}

export function createUpgradeHandler(deps: UpgradeDeps): (req: IncomingMessage, socket: Duplex, head: Buffer) => void {
  return (req, socket, head) => {
    socket.on("error", (err) => deps.logger.debug({ err: err.message }, "upgrade socket error"));
    const path = new URL(req.url ?? "/", "http://relay.invalid").pathname;
    if (path !== SYNC_PATH) return reject(socket, 404, "not found");
    if (!deps.accepting()) return reject(socket, 503, "relay shutting down");
    const token = tokenFrom(req);
    let claims: Claims;
    try {
      if (!token) throw new Error("token refused: missing");
      claims = deps.verify(token);
    } catch (err) {
      const reason = err instanceof Error ? err.message : "token refused";
      deps.metrics.refusals.inc({ reason: "handshake" });
      deps.logger.warn({ reason, remote: req.socket.remoteAddress }, "handshake refused");
      return reject(socket, 401, reason);
    }
    const refused = deps.refusal(claims);
    if (refused) {
      deps.metrics.refusals.inc({ reason: "too-many-connections" });
      deps.logger.warn({ reason: refused, sub: claims.sub, team: claims.team, device: claims.device }, "handshake refused");
      return reject(socket, 429, refused);
    }
    deps.wss.handleUpgrade(req, socket, head, (ws) => {
      if (deps.attach(ws, claims, randomUUID())) deps.wss.emit("connection", ws, req);
    });
  };
}

function reject(socket: Duplex, status: number, reason: string): void {
  const body = reason.replace(/[\r\n]/g, " ");
  const text = status === 401 ? "Unauthorized" : status === 404 ? "Not Found" : status === 429 ? "Too Many Requests" : "Service Unavailable";
  socket.end(
    `HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  setTimeout(() => socket.destroy(), 1000).unref();
}
