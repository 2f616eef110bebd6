/**
 * One authenticated WebSocket session: its verified claims, its rate buckets, what it has queued,
 * and how it ends. The adapter owns the sessions; these helpers keep their bookkeeping in one place.
 */
import type { PeerId } from "@automerge/automerge-repo";
import { cbor } from "@automerge/automerge-repo";
import type { WebSocket } from "ws";
import { identityOf, type Claims } from "../../shared/auth/claims.js";
import type { RelayLimits } from "../config.js";
import type { Logger } from "../log.js";
import type { RelayMetrics } from "./metrics.js";
import { principalOf } from "./peer-binding.js";
import { TokenBucket } from "./rate.js";

/** Time a closing peer gets to finish the close handshake before its socket is destroyed. */
const CLOSE_GRACE_MS = 2000;
/** setTimeout's ceiling (about 24.8 days); longer expiries are re-armed. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface Session {
  readonly id: string;
  readonly claims: Claims;
  /** User and device (shared/auth/claims.ts identityOf): recorded as a segment's owner. */
  readonly identity: string;
  /** Team, user and device: what limits per token count by. */
  readonly principal: string;
  readonly socket: WebSocket;
  readonly log: Logger;
  readonly messages: TokenBucket;
  readonly documents: TokenBucket;
  /** Documents named in the current one-second window (counted once against `documents`). */
  windowDocs: Set<string>;
  windowStart: number;
  /** The peer id the peer announced in `join`. */
  peerId: PeerId | undefined;
  /** The id the relay's Repo knows this session by (peer-binding.ts). */
  key: PeerId | undefined;
  /** Messages waiting for a registration lookup, in arrival order. */
  queue: Promise<void>;
  pending: number;
  /** Bytes of those messages. */
  queuedBytes: number;
  closing: boolean;
  expiryTimer: NodeJS.Timeout | undefined;
}

export function createSession(socket: WebSocket, claims: Claims, id: string, limits: RelayLimits, logger: Logger): Session {
  const now = Date.now();
  return {
    id,
    claims,
    identity: identityOf(claims),
    principal: principalOf(claims),
    socket,
    log: logger.child({ conn: id, sub: claims.sub, team: claims.team, role: claims.role, device: claims.device }),
    messages: new TokenBucket(limits.messagesPerSecond, limits.messagesPerSecond * 2, now),
    documents: new TokenBucket(limits.documentsPerSecond, limits.documentsPerSecond * 2, now),
    windowDocs: new Set(),
    windowStart: now,
    peerId: undefined,
    key: undefined,
    queue: Promise.resolve(),
    pending: 0,
    queuedBytes: 0,
    closing: false,
    expiryTimer: undefined,
  };
}

/** Counts a document against the session's documents-per-second budget; false when over. */
export function countDocument(session: Session, documentId: string): boolean {
  const now = Date.now();
  if (now - session.windowStart >= 1000) {
    session.windowStart = now;
    session.windowDocs = new Set();
  }
  if (session.windowDocs.has(documentId)) return true;
  session.windowDocs.add(documentId);
  return session.documents.take(1, now);
}

/** Calls `onExpired` when the token's `exp` passes. */
export function armExpiry(session: Session, onExpired: () => void): void {
  const delay = session.claims.exp * 1000 - Date.now();
  if (delay <= 0) {
    onExpired();
    return;
  }
  session.expiryTimer = setTimeout(() => armExpiry(session, onExpired), Math.min(delay, MAX_TIMER_MS));
  session.expiryTimer.unref();
}

/** Closes with a code and a logged reason; a label other than `shutdown` counts as a refusal. Idempotent. */
export function closeSession(session: Session, metrics: RelayMetrics, code: number, reason: string, label: string, immediately = false): void {
  if (session.closing) return;
  session.closing = true;
  if (label !== "shutdown") metrics.refusals.inc({ reason: label });
  const log = label === "shutdown" || label === "replaced" ? session.log.info.bind(session.log) : session.log.warn.bind(session.log);
  log({ code, reason, peerId: session.peerId }, "closing connection");
  if (session.expiryTimer) clearTimeout(session.expiryTimer);
  const { socket } = session;
  if (immediately) {
    socket.terminate();
    return;
  }
  try {
    // Close reasons are limited to 123 bytes by the protocol.
    socket.close(code, Buffer.from(reason).subarray(0, 123).toString());
  } catch {
    socket.terminate();
    return;
  }
  setTimeout(() => socket.terminate(), CLOSE_GRACE_MS).unref();
}

/** Sends a message the relay makes itself (join answers, errors, doc-unavailable). */
export function sendRaw(session: Session, metrics: RelayMetrics, message: Record<string, unknown>): void {
  if (session.closing) return;
  const bytes = cbor.encode(message);
  metrics.messages.inc({ direction: "out", type: String(message.type) });
  metrics.bytes.inc({ direction: "out" }, bytes.byteLength);
  session.socket.send(bytes, () => {});
}
