/**
 * The relay's WebSocket network adapter: automerge-repo's server adapter with every incoming
 * message decoded, checked and authorized before the Repo sees it, and every outgoing message
 * checked before it leaves.
 *
 * The stock adapter trusts the peer: it takes the `senderId` a client announces, lets a second
 * join with the same id drop the first socket, closes silently on bad CBOR and never looks at
 * documents. Here each socket carries the verified claims of its token (set at the HTTP
 * upgrade), and a message is forwarded only when it is well formed and allowed. This class
 * orchestrates; the parts live beside it: frames.ts (decoding, checks), session.ts (per-socket
 * state, closing), peer-binding.ts (join, peer keys), queued-bytes.ts, pending-requests.ts,
 * connections.ts and team-quota.ts (what a peer may make the relay hold).
 */
import { next as A } from "@automerge/automerge";
import { cbor, type DocumentId, type Message, type PeerId } from "@automerge/automerge-repo";
import { WebSocketServerAdapter, type FromServerMessage } from "@automerge/automerge-repo-network-websocket";
import type { WebSocket, WebSocketServer } from "ws";
import type { Claims } from "../../shared/auth/claims.js";
import type { RelayLimits } from "../config.js";
import type { Logger } from "../log.js";
import { canRead, canWrite, mayRegister, type DocRecord } from "./access.js";
import { CloseCode, type CloseCodeValue } from "./close-codes.js";
import { ConnectionCounts } from "./connections.js";
import type { DurableOutbox } from "./durable-outbox.js";
import { checkDocMessage, decodeFrame, typeLabel, wsErrorReason, type Checked, type DecodedFrame } from "./frames.js";
import type { RelayMetrics } from "./metrics.js";
import { announcedOf, checkJoin, peerKey, principalOf, PROTOCOL_V1 } from "./peer-binding.js";
import { PendingRequests } from "./pending-requests.js";
import { QueuedBytes } from "./queued-bytes.js";
import { resolveRegistration } from "./registration.js";
import type { DocumentRegistry } from "./registry.js";
import { armExpiry, closeSession, countDocument, createSession, sendRaw, type Session } from "./session.js";
import type { DocumentStorage } from "./storage.js";
import type { TeamDocumentQuota } from "./team-quota.js";

/** Messages waiting for an authorization lookup, per connection; more is a flood. */
const MAX_PENDING_CHECKS = 512;

/** The smallest valid request: "I have nothing". Stands in for a remembered request's payload. */
const EMPTY_REQUEST = A.generateSyncMessage(A.init(), A.initSyncState())[1] as Uint8Array;

export interface GuardedAdapterOptions {
  server: WebSocketServer;
  limits: RelayLimits;
  registry: DocumentRegistry;
  storage: DocumentStorage;
  metrics: RelayMetrics;
  logger: Logger;
  /** Documents per team; without it registrations are unbounded. */
  quota?: TeamDocumentQuota;
  /** When given, sync messages leave only once their document is saved. */
  outbox?: DurableOutbox;
  /** Called for every document a peer touches or is sent, for idle unloading. */
  onActivity?: (documentId: string) => void;
}

export class GuardedServerAdapter extends WebSocketServerAdapter {
  readonly #opts: GuardedAdapterOptions;
  readonly #sessions = new WeakMap<WebSocket, Session>();
  readonly #live = new Map<string, Session>();
  readonly #connections: ConnectionCounts;
  readonly #queued: QueuedBytes;
  readonly #pending: PendingRequests;
  #connected!: () => void;
  /** Resolves when the Repo has wired this adapter up; connections before that would be lost. */
  readonly connected = new Promise<void>((resolve) => (this.#connected = resolve));

  constructor(opts: GuardedAdapterOptions) {
    // isomorphic-ws re-exports ws; the two declaration copies differ only in module mode.
    super(opts.server as unknown as ConstructorParameters<typeof WebSocketServerAdapter>[0], opts.limits.heartbeatMs);
    this.#opts = opts;
    const { limits, metrics } = opts;
    this.#connections = new ConnectionCounts(limits.maxConnectionsPerToken);
    this.#queued = new QueuedBytes({ perConnection: limits.maxQueuedBytesPerConnection, perToken: limits.maxQueuedBytesPerToken, total: limits.maxQueuedBytes });
    this.#pending = new PendingRequests({
      perConnection: limits.maxPendingRequestsPerConnection,
      perToken: limits.maxPendingRequestsPerToken,
      total: limits.maxPendingRequests,
    });
    metrics.observeHeld(() => ({
      queuedBytes: this.#queued.total,
      pendingRequests: this.#pending.size,
      pendingRequestBytes: this.#pending.bytes,
      pendingRequestsDropped: this.#pending.dropped,
    }));
  }

  override connect(peerId: PeerId, peerMetadata?: Parameters<WebSocketServerAdapter["connect"]>[1]): void {
    super.connect(peerId, peerMetadata);
    this.#connected();
  }

  /** Why a session for these claims would be refused now (connections per token), or undefined. */
  refusal(claims: Claims): string | undefined {
    return this.#connections.refusal(principalOf(claims));
  }

  /**
   * Binds a freshly upgraded socket to the claims of its token. Call before the `connection`
   * event. Returns false, having closed the socket, when the token already has its share of
   * sessions (the handshake checks `refusal` first; this settles upgrades that raced it).
   */
  attach(socket: WebSocket, claims: Claims, id: string): boolean {
    const { limits, logger, metrics } = this.#opts;
    const session = createSession(socket, claims, id, limits, logger);
    const refused = this.#connections.refusal(session.principal);
    if (refused) {
      metrics.refusals.inc({ reason: "too-many-connections" });
      session.log.warn({ reason: refused }, "connection refused");
      socket.on("error", () => {});
      socket.close(CloseCode.TooManyConnections, refused);
      setTimeout(() => socket.terminate(), 2000).unref();
      return false;
    }
    this.#sessions.set(socket, session);
    this.#live.set(session.id, session);
    this.#connections.opened(session.principal);
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
      this.#live.delete(session.id);
      this.#connections.closed(session.principal);
      this.#pending.dropSession(session.id);
      metrics.connections.dec();
      if (session.expiryTimer) clearTimeout(session.expiryTimer);
      session.log.info({ code, reason: reason.toString("utf8"), peerId: session.peerId }, "peer disconnected");
    });
    armExpiry(session, () => this.#close(session, CloseCode.TokenExpired, "token expired", "token-expired"));
    return true;
  }

  /** Closes every session (relay shutting down). */
  closeAll(code: CloseCodeValue, reason: string): void {
    for (const session of this.#live.values()) this.#close(session, code, reason, "shutdown");
  }

  get sessionCount(): number {
    return this.#live.size;
  }

  /** The claims behind a connected peer (by the key the Repo knows it by), for the share configuration. */
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
    if (!session || session.closing || !session.peerId) return;
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

    // Peers see their own announced id and the relay's, never another session's key.
    const targetId = session.peerId;
    const senderId = announcedOf(message.senderId ?? (this.peerId as PeerId));
    const deliver = (durable: boolean): void => {
      if (session.closing) return;
      if (!durable) {
        this.#close(session, 1011, "relay could not save the document", "storage-error");
        return;
      }
      const bytes = cbor.encode({ ...message, senderId, targetId });
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
    metrics.messages.inc({ direction: "in", type: typeLabel(type) });

    if (type === "join") {
      this.#join(session, decoded);
      return;
    }
    if (session.peerId === undefined || session.key === undefined) {
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
    // The Repo knows this peer by its key (peer-binding.ts).
    checked.message = { ...checked.message, senderId: session.key };
    const { documentId } = checked;
    if (!countDocument(session, documentId)) {
      this.#close(session, CloseCode.RateLimited, `rate limit: over ${limits.documentsPerSecond} documents per second`, "rate-limit");
      return;
    }

    // Fast path keeps the common case (known document, nothing queued) in order without a tick.
    const known = this.#opts.registry.cached(documentId);
    if (known && session.pending === 0) {
      this.#authorize(session, checked, known);
      return;
    }
    this.#enqueue(session, checked, bytes.byteLength);
  }

  /** Queues a message behind its session's earlier ones until its document's registration is known. */
  #enqueue(session: Session, checked: Checked, size: number): void {
    if (session.pending >= MAX_PENDING_CHECKS) {
      this.#close(session, CloseCode.RateLimited, "too many messages awaiting checks", "rate-limit");
      return;
    }
    session.pending++;
    if (this.#queued.add(session, size) && !session.socket.isPaused) {
      this.#opts.metrics.backpressure.inc();
      session.log.debug({ queuedBytes: session.queuedBytes, total: this.#queued.total }, "reading paused: messages awaiting checks over their bound");
      session.socket.pause();
    }
    const { documentId } = checked;
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
        this.#queued.release(session, size);
        if (session.socket.isPaused && !this.#queued.over(session)) session.socket.resume();
      });
  }

  /** Finds the registration, or registers a device's new document (registration.ts). */
  async #resolve(session: Session, checked: Checked): Promise<DocRecord | null> {
    const { registry, quota } = this.#opts;
    const found = await resolveRegistration({ registry, quota }, session, checked);
    if ("refused" in found) {
      this.#close(session, CloseCode.TeamDocumentLimit, found.refused, "team-document-limit");
      return null;
    }
    if (found.registered) session.log.info({ documentId: checked.documentId }, "document registered to the team");
    return found.record;
  }

  #authorize(session: Session, checked: Checked, rec: DocRecord | null): void {
    const { metrics, storage, limits } = this.#opts;
    const { message } = checked;
    const documentId = checked.documentId;
    if (!rec || !canRead(session.claims, rec)) {
      // The same answer as for a document that does not exist: a peer learns nothing about other teams.
      metrics.refusals.inc({ reason: "no-access" });
      session.log.debug({ documentId, type: message.type }, "no access to document");
      if (message.type === "sync" || message.type === "request") {
        sendRaw(session, metrics, { type: "doc-unavailable", senderId: this.peerId, targetId: session.peerId, documentId });
        if (!rec) this.#pending.add({ documentId, session: session.id, principal: session.principal });
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
    for (const request of this.#pending.take(documentId)) {
      const session = this.#live.get(request.session);
      if (!session || session.closing || !session.key || !canRead(session.claims, rec)) continue;
      session.log.debug({ documentId }, "answering an earlier request for a document that has arrived");
      // A fresh "I have nothing" request: the peer asked because it had nothing, and its original
      // payload was not kept.
      const fresh: Message = { type: "request", senderId: session.key, targetId: this.peerId as PeerId, documentId, data: EMPTY_REQUEST };
      this.emit("message", fresh);
    }
  }

  #join(session: Session, msg: DecodedFrame): void {
    const { metrics } = this.#opts;
    const join = checkJoin(msg, session.peerId !== undefined);
    if (!join.ok) {
      if (join.tell && join.peerId) sendRaw(session, metrics, { type: "error", senderId: this.peerId, message: join.tell, targetId: join.peerId });
      this.#close(session, CloseCode.InvalidMessage, join.reason, "invalid-message");
      return;
    }
    const key = peerKey(session.principal, join.peerId);
    const existing = this.sockets[key];
    if (existing && existing !== session.socket) {
      // Same team, user and device, same peer id: the device reconnected before its old socket
      // timed out, and the new one wins. Anyone else has a key of their own (peer-binding.ts).
      const other = this.#sessions.get(existing);
      if (other) this.#close(other, CloseCode.PeerIdInUse, "replaced by a newer session of the same device", "replaced");
      delete this.sockets[key];
      this.emit("peer-disconnected", { peerId: key });
    }
    session.peerId = join.peerId;
    session.key = key;
    // A device may register documents soon: have its team's document count ready by then.
    if (mayRegister(session.claims)) this.#opts.quota?.prefetch(session.claims.team);
    session.log.info({ peerId: join.peerId }, "peer joined");
    this.sockets[key] = session.socket;
    this.emit("peer-candidate", { peerId: key, peerMetadata: join.metadata });
    sendRaw(session, metrics, {
      type: "peer",
      senderId: this.peerId,
      peerMetadata: this.peerMetadata ?? {},
      selectedProtocolVersion: PROTOCOL_V1,
      targetId: session.peerId,
    });
  }

  #close(session: Session, code: number, reason: string, label: string, immediately = false): void {
    closeSession(session, this.#opts.metrics, code, reason, label, immediately);
  }
}
