/**
 * The relay's WebSocket network adapter: automerge-repo's server adapter with every incoming
 * message decoded, checked and authorized before the Repo sees it, and every outgoing message
 * checked before it leaves.
 *
 * The stock adapter trusts the peer: it takes the `senderId` a client announces, lets a second
 * join with the same id drop the first socket, closes silently on bad CBOR and never looks at
 * documents. Here each socket carries the verified claims of its token (set at the HTTP
 * upgrade), and a message is forwarded only when it is well formed and allowed.
 */
import { decode as cborDecode } from "cbor-x";
import { next as A } from "@automerge/automerge";
import { cbor, isValidDocumentId, type DocumentId, type Message, type PeerId, type PeerMetadata, type StorageId } from "@automerge/automerge-repo";
import { WebSocketServerAdapter, type FromServerMessage } from "@automerge/automerge-repo-network-websocket";
import type { WebSocket, WebSocketServer } from "ws";
import { identityOf, type Claims } from "../../shared/auth/claims.js";
import type { RelayLimits } from "../config.js";
import type { Logger } from "../log.js";
import { canRead, canWrite, mayRegister, type DocRecord } from "./access.js";
import { CloseCode, type CloseCodeValue } from "./close-codes.js";
import type { DurableOutbox } from "./durable-outbox.js";
import type { RelayMetrics } from "./metrics.js";
import { PendingRequests } from "./pending-requests.js";
import { TokenBucket } from "./rate.js";
import type { DocumentRegistry } from "./registry.js";
import type { DocumentStorage } from "./storage.js";

/** Messages waiting for an authorization lookup, per connection; more is a flood. */
const MAX_PENDING_CHECKS = 512;
/** Time a closing peer gets to finish the close handshake before its socket is destroyed. */
const CLOSE_GRACE_MS = 2000;
/** setTimeout's ceiling (about 24.8 days); longer expiries are re-armed. */
const MAX_TIMER_MS = 2 ** 31 - 1;
const PROTOCOL_V1 = "1";

interface Session {
  readonly id: string;
  readonly claims: Claims;
  readonly identity: string;
  readonly socket: WebSocket;
  readonly log: Logger;
  readonly messages: TokenBucket;
  readonly documents: TokenBucket;
  /** Documents named in the current one-second window (counted once against `documents`). */
  windowDocs: Set<string>;
  windowStart: number;
  peerId: PeerId | undefined;
  queue: Promise<void>;
  pending: number;
  closing: boolean;
  expiryTimer: NodeJS.Timeout | undefined;
}

/** What a checked message tells about its document. */
interface Checked {
  message: Message & { documentId?: DocumentId };
  documentId: DocumentId | undefined;
  /** Sync/request only. */
  heads: number;
  changes: number;
  changeBytes: number;
}

export interface GuardedAdapterOptions {
  server: WebSocketServer;
  limits: RelayLimits;
  registry: DocumentRegistry;
  storage: DocumentStorage;
  metrics: RelayMetrics;
  logger: Logger;
  /** When given, sync messages leave only once their document is saved. */
  outbox?: DurableOutbox;
  /** Called for every document a peer touches or is sent, for idle unloading. */
  onActivity?: (documentId: string) => void;
}

export class GuardedServerAdapter extends WebSocketServerAdapter {
  readonly #opts: GuardedAdapterOptions;
  readonly #sessions = new WeakMap<WebSocket, Session>();
  readonly #live = new Set<Session>();
  readonly #pending = new PendingRequests<{ session: Session; message: Message }>();
  #connected!: () => void;
  /** Resolves when the Repo has wired this adapter up; connections before that would be lost. */
  readonly connected = new Promise<void>((resolve) => (this.#connected = resolve));

  constructor(opts: GuardedAdapterOptions) {
    // isomorphic-ws re-exports ws; the two declaration copies differ only in module mode.
    super(opts.server as unknown as ConstructorParameters<typeof WebSocketServerAdapter>[0], opts.limits.heartbeatMs);
    this.#opts = opts;
  }

  override connect(peerId: PeerId, peerMetadata?: Parameters<WebSocketServerAdapter["connect"]>[1]): void {
    super.connect(peerId, peerMetadata);
    this.#connected();
  }

  /** Binds a freshly upgraded socket to the claims of its token. Call before the `connection` event. */
  attach(socket: WebSocket, claims: Claims, id: string): void {
    const { limits, logger, metrics } = this.#opts;
    const now = Date.now();
    const session: Session = {
      id,
      claims,
      identity: identityOf(claims),
      socket,
      log: logger.child({ conn: id, sub: claims.sub, team: claims.team, role: claims.role, device: claims.device }),
      messages: new TokenBucket(limits.messagesPerSecond, limits.messagesPerSecond * 2, now),
      documents: new TokenBucket(limits.documentsPerSecond, limits.documentsPerSecond * 2, now),
      windowDocs: new Set(),
      windowStart: now,
      peerId: undefined,
      queue: Promise.resolve(),
      pending: 0,
      closing: false,
      expiryTimer: undefined,
    };
    this.#sessions.set(socket, session);
    this.#live.add(session);
    metrics.connections.inc();
    metrics.connectionsTotal.inc();
    session.log.info("peer connected");

    // ws reports protocol violations (too big, too many fragments, bad frames) as `error` and
    // closes the socket itself with the matching code; an unhandled one would kill the relay.
    socket.on("error", (err: Error & { code?: string }) => {
      const reason = wsErrorReason(err.code);
      metrics.refusals.inc({ reason });
      session.log.warn({ reason, code: err.code, err: err.message }, "socket error, connection closed");
    });
    socket.on("close", (code: number, reason: Buffer) => {
      this.#live.delete(session);
      metrics.connections.dec();
      if (session.expiryTimer) clearTimeout(session.expiryTimer);
      session.log.info({ code, reason: reason.toString("utf8"), peerId: session.peerId }, "peer disconnected");
    });
    this.#armExpiry(session);
  }

  /** Closes every session (relay shutting down). */
  closeAll(code: CloseCodeValue, reason: string): void {
    for (const session of this.#live) this.#close(session, code, reason, "shutdown");
  }

  get sessionCount(): number {
    return this.#live.size;
  }

  /** The claims behind a connected peer id, for the Repo's share configuration. */
  claimsOf(peerId: PeerId): Claims | undefined {
    const socket = this.sockets[peerId];
    return socket ? this.#sessions.get(socket)?.claims : undefined;
  }

  override receiveMessage(messageBytes: Uint8Array, socket: WebSocket): void {
    const session = this.#sessions.get(socket);
    if (!session) {
      // Only sockets that passed the upgrade check reach here; anything else is a bug, not a peer.
      socket.terminate();
      return;
    }
    if (session.closing) return;
    try {
      this.#receive(session, messageBytes);
    } catch (err) {
      session.log.error({ err }, "unexpected error handling a message");
      this.#close(session, CloseCode.InvalidMessage, "internal error handling message", "internal");
    }
  }

  override send(message: FromServerMessage): void {
    const socket = this.sockets[message.targetId];
    if (!socket) return;
    const session = this.#sessions.get(socket);
    if (!session || session.closing) return;
    const { metrics, limits, outbox } = this.#opts;
    const documentId = "documentId" in message ? (message.documentId as DocumentId | undefined) : undefined;

    if (documentId && message.type !== "doc-unavailable") {
      const rec = this.#opts.registry.cached(documentId);
      if (!rec || !canRead(session.claims, rec)) {
        // Defence in depth: the Repo's share config should never ask for this.
        metrics.refusals.inc({ reason: "outgoing-denied" });
        session.log.error({ documentId, type: message.type }, "refused to send a document the peer may not read");
        return;
      }
      this.#opts.onActivity?.(documentId);
    }
    if (socket.bufferedAmount > limits.maxBufferedBytes) {
      this.#close(session, CloseCode.SlowConsumer, `slow consumer: over ${limits.maxBufferedBytes} bytes unread`, "slow-consumer", true);
      return;
    }

    const deliver = (durable: boolean): void => {
      if (session.closing) return;
      if (!durable) {
        this.#close(session, 1011, "relay could not save the document", "storage-error");
        return;
      }
      const bytes = cbor.encode({ ...message, senderId: message.senderId ?? this.peerId });
      metrics.messages.inc({ direction: "out", type: message.type });
      metrics.bytes.inc({ direction: "out" }, bytes.byteLength);
      socket.send(bytes, (err) => {
        if (err) session.log.debug({ err: err.message }, "send failed");
      });
    };
    if (outbox && documentId && message.type === "sync") outbox.enqueue(documentId, deliver);
    else deliver(true);
  }

  // ---- incoming ----

  #receive(session: Session, bytes: Uint8Array): void {
    const { metrics, limits } = this.#opts;
    metrics.bytes.inc({ direction: "in" }, bytes.byteLength);
    if (!session.messages.take()) {
      this.#close(session, CloseCode.RateLimited, `rate limit: over ${limits.messagesPerSecond} messages per second`, "rate-limit");
      return;
    }
    const decoded = decodeFrame(bytes);
    if (typeof decoded === "string") {
      this.#close(session, CloseCode.InvalidMessage, decoded, "invalid-cbor");
      return;
    }
    const type = decoded.type;
    metrics.messages.inc({ direction: "in", type: KNOWN_TYPES.has(type) ? type : "other" });

    if (type === "join") {
      this.#join(session, decoded);
      return;
    }
    if (session.peerId === undefined) {
      this.#close(session, CloseCode.InvalidMessage, "message before join", "invalid-message");
      return;
    }
    if (decoded.senderId !== session.peerId) {
      this.#close(session, CloseCode.InvalidMessage, "senderId is not this connection's peer id", "invalid-message");
      return;
    }
    if (type === "remote-subscription-change" || type === "remote-heads-changed") return; // gossip is off on the relay

    const checked = checkDocMessage(decoded, this.peerId);
    if (typeof checked === "string") {
      this.#close(session, CloseCode.InvalidMessage, checked, checked.startsWith("broken sync") ? "broken-sync" : "invalid-message");
      return;
    }
    const documentId = checked.documentId as DocumentId;
    if (!this.#countDocument(session, documentId)) {
      this.#close(session, CloseCode.RateLimited, `rate limit: over ${limits.documentsPerSecond} documents per second`, "rate-limit");
      return;
    }

    // Fast path keeps the common case (known document, nothing queued) in order without a tick.
    const known = this.#opts.registry.cached(documentId);
    if (known && session.pending === 0) {
      this.#authorize(session, checked, known);
      return;
    }
    if (session.pending >= MAX_PENDING_CHECKS) {
      this.#close(session, CloseCode.RateLimited, "too many messages awaiting checks", "rate-limit");
      return;
    }
    session.pending++;
    session.queue = session.queue
      .then(async () => {
        if (session.closing) return;
        const rec = await this.#resolve(session, checked);
        if (!session.closing) this.#authorize(session, checked, rec);
      })
      .catch((err: unknown) => {
        session.log.error({ err, documentId }, "document lookup failed");
        this.#close(session, 1011, "relay could not check document access", "internal");
      })
      .finally(() => {
        session.pending--;
      });
  }

  /** Finds the registration; a device's first sync of a document it created registers it to its team. */
  async #resolve(session: Session, checked: Checked): Promise<DocRecord | null> {
    const { registry } = this.#opts;
    const documentId = checked.documentId as string;
    const rec = await registry.lookup(documentId);
    if (rec) return rec;
    if (checked.message.type !== "sync" || checked.heads === 0 || !mayRegister(session.claims)) return null;
    const registered = await registry.register({
      _id: documentId,
      team: session.claims.team,
      kind: "ledger-segment",
      readOnly: false,
      owner: session.identity,
      createdAt: new Date(),
    });
    if (registered.owner === session.identity) session.log.info({ documentId }, "document registered to the team");
    return registered;
  }

  #authorize(session: Session, checked: Checked, rec: DocRecord | null): void {
    const { metrics, storage, limits } = this.#opts;
    const { message } = checked;
    const documentId = checked.documentId as DocumentId;
    if (!rec || !canRead(session.claims, rec)) {
      // The same answer as for a document that does not exist: a peer learns nothing about other teams.
      metrics.refusals.inc({ reason: "no-access" });
      session.log.debug({ documentId, type: message.type }, "no access to document");
      if (message.type === "sync" || message.type === "request") {
        this.#sendRaw(session, { type: "doc-unavailable", senderId: this.peerId, targetId: session.peerId, documentId });
        if (!rec) this.#pending.add(documentId, session.id, { session, message });
      }
      return;
    }
    if (checked.changes > 0) {
      if (!canWrite(session.claims, rec)) {
        // Dropping the whole message (not just its changes) keeps the relay from asking for the
        // changes again and again; the peer still receives what others write.
        metrics.refusals.inc({ reason: "read-only" });
        session.log.warn({ documentId, kind: rec.kind, changes: checked.changes }, "refused changes to a read-only document");
        return;
      }
      const after = storage.storedBytes(documentId) + checked.changeBytes;
      if (after > limits.maxDocumentBytes) {
        this.#close(
          session,
          CloseCode.DocumentTooLarge,
          `document ${documentId} over its size budget of ${limits.maxDocumentBytes} bytes`,
          "document-too-large",
        );
        return;
      }
      storage.addPending(documentId, checked.changeBytes);
    }
    this.#opts.onActivity?.(documentId);
    this.emit("message", message);
    if (checked.changes > 0) this.#answerPending(documentId, rec);
  }

  /** A document arrived with content: earlier requests for it from its team are answered now. */
  #answerPending(documentId: DocumentId, rec: DocRecord): void {
    for (const { session, message } of this.#pending.take(documentId)) {
      if (session.closing || !canRead(session.claims, rec)) continue;
      session.log.debug({ documentId }, "answering an earlier request for a document that has arrived");
      this.emit("message", message);
    }
  }

  #join(session: Session, msg: Record<string, unknown>): void {
    const { metrics } = this.#opts;
    const peerId = msg.senderId;
    if (typeof peerId !== "string" || peerId.length === 0 || peerId.length > 200) {
      this.#close(session, CloseCode.InvalidMessage, "join without a valid senderId", "invalid-message");
      return;
    }
    if (session.peerId !== undefined) {
      this.#close(session, CloseCode.InvalidMessage, "second join on one connection", "invalid-message");
      return;
    }
    const versions = msg.supportedProtocolVersions;
    if (versions !== undefined && !(Array.isArray(versions) && versions.includes(PROTOCOL_V1))) {
      this.#sendRaw(session, { type: "error", senderId: this.peerId, message: "unsupported protocol version", targetId: peerId });
      this.#close(session, CloseCode.InvalidMessage, "unsupported protocol version", "invalid-message");
      return;
    }
    const existing = this.sockets[peerId as PeerId];
    if (existing && existing !== session.socket) {
      const other = this.#sessions.get(existing);
      if (other && !other.closing && other.identity !== session.identity) {
        // The stock adapter would close the first socket here: a hijack and a denial of service.
        metrics.refusals.inc({ reason: "peer-id-in-use" });
        session.log.warn({ peerId }, "join refused: peer id belongs to another live session");
        this.#sendRaw(session, { type: "error", senderId: this.peerId, message: "peer id in use", targetId: peerId });
        this.#close(session, CloseCode.PeerIdInUse, "peer id in use by another session", "peer-id-in-use");
        return;
      }
      // Same user and device reconnecting before its old socket timed out: the new one wins.
      if (other) this.#close(other, CloseCode.PeerIdInUse, "replaced by a newer session of the same device", "replaced");
      delete this.sockets[peerId as PeerId];
      this.emit("peer-disconnected", { peerId: peerId as PeerId });
    }
    session.peerId = peerId as PeerId;
    session.log.info({ peerId }, "peer joined");
    this.sockets[session.peerId] = session.socket;
    this.emit("peer-candidate", { peerId: session.peerId, peerMetadata: sanitizeMetadata(msg.peerMetadata) });
    this.#sendRaw(session, {
      type: "peer",
      senderId: this.peerId,
      peerMetadata: this.peerMetadata ?? {},
      selectedProtocolVersion: PROTOCOL_V1,
      targetId: session.peerId,
    });
  }

  #countDocument(session: Session, documentId: string): boolean {
    const now = Date.now();
    if (now - session.windowStart >= 1000) {
      session.windowStart = now;
      session.windowDocs = new Set();
    }
    if (session.windowDocs.has(documentId)) return true;
    session.windowDocs.add(documentId);
    return session.documents.take(1, now);
  }

  // ---- session lifetime ----

  #armExpiry(session: Session): void {
    const delay = session.claims.exp * 1000 - Date.now();
    if (delay <= 0) {
      this.#close(session, CloseCode.TokenExpired, "token expired", "token-expired");
      return;
    }
    session.expiryTimer = setTimeout(() => this.#armExpiry(session), Math.min(delay, MAX_TIMER_MS));
    session.expiryTimer.unref();
  }

  #close(session: Session, code: number, reason: string, label: string, immediately = false): void {
    if (session.closing) return;
    session.closing = true;
    if (label !== "shutdown") this.#opts.metrics.refusals.inc({ reason: label });
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

  #sendRaw(session: Session, message: Record<string, unknown>): void {
    if (session.closing) return;
    const bytes = cbor.encode(message);
    this.#opts.metrics.messages.inc({ direction: "out", type: String(message.type) });
    this.#opts.metrics.bytes.inc({ direction: "out" }, bytes.byteLength);
    session.socket.send(bytes, () => {});
  }
}

const KNOWN_TYPES = new Set(["join", "sync", "request", "ephemeral", "doc-unavailable", "remote-subscription-change", "remote-heads-changed"]);

/** Returns the decoded message object, or the reason it is not one. */
function decodeFrame(bytes: Uint8Array): Record<string, unknown> & { type: string } | string {
  // Every repo message is a CBOR map (major type 5); refusing anything else first means a
  // hostile array or string header never reaches the decoder.
  const first = bytes[0];
  if (first === undefined || first >> 5 !== 5) return "not a CBOR map";
  let value: unknown;
  try {
    value = cborDecode(bytes);
  } catch (err) {
    return `invalid CBOR: ${err instanceof Error ? err.message.slice(0, 60) : "undecodable"}`;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value) || value instanceof Uint8Array) {
    return "message is not a map";
  }
  const msg = value as Record<string, unknown>;
  if (typeof msg.type !== "string") return "message without a type";
  return msg as Record<string, unknown> & { type: string };
}

/** Validates a document message's fields and, for sync messages, the Automerge payload. */
function checkDocMessage(msg: Record<string, unknown> & { type: string }, relayPeerId: PeerId | undefined): Checked | string {
  const { type, documentId, data } = msg;
  if (type !== "sync" && type !== "request" && type !== "ephemeral" && type !== "doc-unavailable") {
    return `unknown message type ${JSON.stringify(type.slice(0, 40))}`;
  }
  if (msg.targetId !== relayPeerId) return "targetId is not the relay";
  if (typeof documentId !== "string" || !isValidDocumentId(documentId)) return "invalid documentId";
  const checked: Checked = {
    message: msg as unknown as Message & { documentId: DocumentId },
    documentId: documentId as DocumentId,
    heads: 0,
    changes: 0,
    changeBytes: 0,
  };
  if (type === "doc-unavailable") return checked;
  if (!(data instanceof Uint8Array) || data.byteLength === 0) return "message without data";
  if (type === "ephemeral") {
    if (typeof msg.count !== "number" || typeof msg.sessionId !== "string") return "ephemeral message without count or sessionId";
    return checked;
  }
  try {
    const sync = A.decodeSyncMessage(data as A.SyncMessage);
    checked.heads = sync.heads.length;
    checked.changes = sync.changes.length;
    checked.changeBytes = sync.changes.reduce((n, c) => n + c.byteLength, 0);
  } catch (err) {
    return `broken sync message: ${err instanceof Error ? err.message.slice(0, 60) : "undecodable"}`;
  }
  return checked;
}

function sanitizeMetadata(value: unknown): PeerMetadata {
  if (typeof value !== "object" || value === null) return {};
  const v = value as Record<string, unknown>;
  const out: PeerMetadata = {};
  if (typeof v.storageId === "string" && v.storageId.length <= 100) out.storageId = v.storageId as StorageId;
  if (typeof v.isEphemeral === "boolean") out.isEphemeral = v.isEphemeral;
  return out;
}

function wsErrorReason(code: string | undefined): string {
  switch (code) {
    case "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH":
      return "frame-too-big";
    case "WS_ERR_TOO_MANY_BUFFERED_PARTS":
      return "too-many-fragments";
    default:
      return "protocol-error";
  }
}
