/**
 * The relay: an automerge-repo Repo behind the guarded WebSocket adapter, with file storage,
 * team registration, idle unloading and durable acknowledgements. Knows nothing of HTTP routes.
 */
import { Repo, type DocumentId, type PeerId } from "@automerge/automerge-repo";
import { WebSocketServer } from "ws";
import type { Db } from "mongodb";
import type { RelayLimits } from "../config.js";
import type { Logger } from "../log.js";
import type { Claims } from "../../shared/auth/claims.js";
import { canRead } from "./access.js";
import { GuardedServerAdapter } from "./adapter.js";
import { CloseCode } from "./close-codes.js";
import { DurableOutbox } from "./durable-outbox.js";
import { startIdleUnloader, type IdleUnloader } from "./idle.js";
import { createRelayMetrics, type RelayMetrics } from "./metrics.js";
import { startRelayLinks, type RelayLinks } from "./relay-links.js";
import { createDocumentRegistry, type DocumentRegistry } from "./registry.js";
import { createDocumentStorage, type DocumentStorage, type StorageKind } from "./storage.js";
import { TeamDocumentQuota } from "./team-quota.js";
import { createTeams, type Teams } from "./teams.js";
import { createUpgradeHandler } from "./upgrade.js";

export interface RelayOptions {
  dataDir: string;
  db: Db;
  limits: RelayLimits;
  logger: Logger;
  verify(token: string): Claims;
  /** Defaults to `storageKind` (files under `<dataDir>/automerge` when absent). */
  storage?: DocumentStorage;
  storageKind?: StorageKind;
  /** Other relays on the same database to sync with (RELAY_PEERS), and the token to dial them with. */
  peers?: readonly string[];
  peerToken?: () => string;
  /** Told when an authenticated session opens and closes (device last-seen records). */
  onSession?: (claims: Claims, event: "open" | "close") => void;
}

export interface Relay {
  repo: Repo;
  teams: Teams;
  registry: DocumentRegistry;
  /** The documents on disk; `damaged()` lists those that cannot load. */
  storage: DocumentStorage;
  metrics: RelayMetrics;
  idle: IdleUnloader;
  handleUpgrade: ReturnType<typeof createUpgradeHandler>;
  sessionCount(): number;
  /** Closes sessions, flushes every document, stops timers. Safe to call twice. */
  close(): Promise<void>;
}

export async function startRelay(opts: RelayOptions): Promise<Relay> {
  const logger = opts.logger.child({ module: "relay" });
  const registry = createDocumentRegistry(opts.db);
  await registry.ensureIndexes();
  const storage = opts.storage ?? createDocumentStorage(opts.storageKind ?? "files", opts.dataDir, opts.db, logger);
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: opts.limits.maxPayloadBytes,
    maxFragments: opts.limits.maxFragments,
    perMessageDeflate: false,
  });
  wss.on("error", (err) => logger.error({ err }, "websocket server error"));

  let repo: Repo | undefined;
  let idle: IdleUnloader | undefined;
  const metrics = createRelayMetrics(() => (repo ? Object.keys(repo.handles).length : 0));
  const outbox = new DurableOutbox(
    async (documentId) => {
      const handle = repo?.handles[documentId as DocumentId];
      if (handle?.isReady()) await repo?.flush([documentId as DocumentId]);
    },
    (documentId, err) => logger.error({ err, documentId }, "could not save document before acknowledging"),
  );
  const adapter = new GuardedServerAdapter({
    server: wss,
    limits: opts.limits,
    registry,
    storage,
    metrics,
    logger,
    outbox,
    quota: new TeamDocumentQuota({
      max: opts.limits.maxDocumentsPerTeam,
      countDocuments: (team) => opts.db.collection("documents").countDocuments({ team }),
    }),
    onActivity: (documentId) => idle?.touch(documentId),
  });

  let links: RelayLinks | undefined;
  const access = async (peerId: PeerId, documentId?: DocumentId): Promise<boolean> => {
    if (documentId && links?.isRelay(peerId)) return !storage.isDamaged(documentId);
    const claims = adapter.claimsOf(peerId);
    if (!claims || !documentId) return false;
    // A document whose stored chunks are damaged is answered "unavailable" instead of leaving
    // the peer waiting on a load that failed (its first request still waits: that load found it).
    if (storage.isDamaged(documentId)) return false;
    const rec = registry.cached(documentId) ?? (await registry.lookup(documentId));
    return rec !== null && canRead(claims, rec);
  };
  repo = new Repo({
    network: [adapter],
    storage,
    peerId: `relay-${process.pid}-${Math.random().toString(36).slice(2, 8)}` as PeerId,
    // The relay never pushes documents nobody asked for: peers request what they need, and the
    // Repo then keeps those peers up to date (access && requested).
    // Other relays are the exception: they get every document this one holds, so changes cross.
    shareConfig: { announce: async (peerId) => links?.isRelay(peerId) ?? false, access },
  });
  await adapter.connected;
  // Always: relays that dial this one are recognized even when this one dials nobody.
  const peerToken = opts.peerToken;
  links = startRelayLinks({ repo, urls: peerToken ? (opts.peers ?? []) : [], token: () => peerToken?.() ?? "", claimsOf: (p) => adapter.claimsOf(p), logger });
  idle = startIdleUnloader(repo, storage, opts.limits.idleUnloadMs, logger);

  let accepting = true;
  let closed: Promise<void> | undefined;
  const handleUpgrade = createUpgradeHandler({
    wss,
    verify: opts.verify,
    refusal: (claims) => adapter.refusal(claims),
    attach: (socket, claims, id) => {
      if (!adapter.attach(socket, claims, id)) return false;
      if (opts.onSession) {
        const onSession = opts.onSession;
        onSession(claims, "open");
        socket.once("close", () => onSession(claims, "close"));
      }
      return true;
    },
    metrics,
    logger,
    accepting: () => accepting,
  });

  const liveRepo = repo;
  const liveIdle = idle;
  return {
    repo: liveRepo,
    teams: createTeams(liveRepo, registry),
    registry,
    storage,
    metrics,
    idle: liveIdle,
    handleUpgrade,
    sessionCount: () => adapter.sessionCount,
    close() {
      closed ??= (async () => {
        accepting = false;
        liveIdle.stop();
        adapter.closeAll(CloseCode.GoingAway, "relay shutting down");
        // A handle that never became ready (its stored chunks damaged, or unavailable) has no
        // document to save, and automerge-repo's flush of every handle throws on it: flush the
        // ready ones, then let shutdown disconnect whatever its own flush says.
        const ready = Object.entries(liveRepo.handles).filter(([, h]) => h.isReady()).map(([id]) => id as DocumentId);
        await liveRepo.flush(ready);
        await liveRepo.shutdown().catch((err: unknown) => logger.debug({ err }, "repo shutdown: handles not ready were not flushed"));
        await new Promise<void>((resolve) => wss.close(() => resolve()));
        logger.info("relay stopped, documents flushed");
      })();
      return closed;
    },
  };
}
