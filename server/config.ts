/**
 * The service's configuration, read from the environment in this one place so the README's
 * table and the code cannot drift apart.
 */
import path from "node:path";
import { PAUSE_POINTS, type PausePoint } from "./materializer/pause-points.js";

export interface Config {
  /** HTTP and WebSocket port; 0 picks a free one (tests). */
  port: number;
  host: string;
  /** Root of everything the service keeps on disk: documents, keys, the embedded database. */
  dataDir: string;
  /** An external MongoDB; when absent an embedded server is found or started. */
  mongodbUri: string | undefined;
  mongodbDb: string;
  /** The embedded database's port (`EMBEDDED_DB_PORT`); 0: the last run's when free, else any. */
  embeddedDbPort: number;
  logLevel: string;
  /**
   * Where command-line tools reach the running service (`SERVICE_URL`); by default this host's
   * loopback and PORT. Tools that change documents go through it: only the service writes its storage.
   */
  serviceUrl: string;
  /** JWT settings: PEM keys, or generated once into dataDir when absent. */
  jwt: {
    privateKeyPem: string | undefined;
    publicKeyPem: string | undefined;
    issuer: string;
    audience: string;
    /** Lifetime of issued tokens, in seconds. */
    ttlSeconds: number;
    /** Lifetime of device certificates (peer links work offline until then), in seconds. */
    certTtlSeconds: number;
  };
  /** Limits of the WebSocket relay (server/relay); each bounds what one peer can cost the others. */
  relay: RelayLimits;
  /** Where the relay keeps Automerge documents: `files` in dataDir, or `mongodb` (shared by several relays). */
  relayStorage: "files" | "mongodb";
  /** Other relays on the same database this one dials and syncs with (`RELAY_PEERS`, ws URLs of their /sync). */
  relayPeers: string[];
  materializer: MaterializerSettings;
}

export interface MaterializerSettings {
  /** `process`: `npm start` runs and supervises it as a child process; `off`: run it elsewhere. */
  mode: "process" | "off";
  /** Most entries decided in one batch (a batch is one journal append and one projection pass). */
  maxBatch: number;
  /** Only these teams (an optional filter; instances share teams through leases); all teams when empty. */
  teams: string[];
  /** How often each team's recently touched summaries and balances are checked against the journal (0: only at start). */
  selfCheckMs: number;
  /** How many of the latest journal records a self-check looks at to pick the summaries and balances it checks. */
  selfCheckRecent: number;
  /** Tests only (MATERIALIZER_PAUSE_AT=<point>:<n>): stop dead the nth time a batch reaches this point. */
  pauseAt: { point: PausePoint; nth: number } | undefined;
  /** A signed journal checkpoint at least every this many records... */
  checkpointRecords: number;
  /** ...or this many seconds once the journal has moved (server/materializer/anchor.ts). */
  checkpointSeconds: number;
  /** A team lease's length: a dead instance's teams are taken over within it. */
  leaseMs: number;
  /** This instance's name in the leases, stable across its restarts; a random one per process when absent. */
  instance: string | undefined;
}

export interface RelayLimits {
  /** Largest WebSocket message accepted, in bytes; a larger one closes the peer with 1009. */
  maxPayloadBytes: number;
  /** Most fragments one message may arrive in; more closes the peer with 1008. */
  maxFragments: number;
  /** Outgoing bytes queued on one socket before the peer counts as a slow consumer and is cut off. */
  maxBufferedBytes: number;
  /** Ping interval; a peer that misses one pong is dropped. */
  heartbeatMs: number;
  /** Sustained incoming messages per second per connection (burst twice that). */
  messagesPerSecond: number;
  /** Distinct documents one connection may touch per second (burst twice that). */
  documentsPerSecond: number;
  /** Largest stored size of one document; changes beyond it are refused. */
  maxDocumentBytes: number;
  /** A document nobody touched for this long is flushed and unloaded from memory. */
  idleUnloadMs: number;
  /**
   * Open sessions per token identity (team, user and device); the next handshake answers 429.
   * Each session may hold an unfinished message of up to `maxPayloadBytes`, so this also bounds
   * what one identity can make the relay buffer.
   */
  maxConnectionsPerToken: number;
  /** Documents registered to one team; a device registering one more is closed with 4507. */
  maxDocumentsPerTeam: number;
  /**
   * Bytes of received messages waiting for their document's registration lookup, per session,
   * per token identity and in total. Over a bound, the session stops being read (TCP
   * backpressure) until its own messages are checked; nothing is refused.
   */
  maxQueuedBytesPerConnection: number;
  maxQueuedBytesPerToken: number;
  maxQueuedBytes: number;
  /**
   * Requests for documents the relay does not know yet, remembered to be answered when the
   * document arrives (its id and the session only, about 200 bytes each): per session, per token
   * identity and in total. Past a bound the oldest of that scope is forgotten.
   */
  maxPendingRequestsPerConnection: number;
  maxPendingRequestsPerToken: number;
  maxPendingRequests: number;
}

function intFrom(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new Error(`configuration ${name}=${JSON.stringify(raw)}: expected an integer from ${min} to ${max}`);
  }
  return n;
}

function materializerMode(raw: string | undefined): "process" | "off" {
  const value = nonEmpty(raw) ?? "process";
  if (value !== "process" && value !== "off") {
    throw new Error(`configuration MATERIALIZER=${JSON.stringify(raw)}: expected process or off`);
  }
  return value;
}

function pauseAt(raw: string | undefined): { point: PausePoint; nth: number } | undefined {
  const value = nonEmpty(raw);
  if (value === undefined) return undefined;
  const [point, nth = "1"] = value.split(":");
  const n = Number(nth);
  if (!PAUSE_POINTS.includes(point as PausePoint) || !Number.isInteger(n) || n < 1) {
    throw new Error(`configuration MATERIALIZER_PAUSE_AT=${JSON.stringify(raw)}: expected <point>[:<n>], point one of ${PAUSE_POINTS.join(", ")}`);
  }
  return { point: point as PausePoint, nth: n };
}

function storageKind(raw: string | undefined): "files" | "mongodb" {
  const value = nonEmpty(raw) ?? "files";
  if (value !== "files" && value !== "mongodb") {
    throw new Error(`configuration RELAY_STORAGE=${JSON.stringify(raw)}: expected files or mongodb`);
  }
  return value;
}

function wsUrl(raw: string): string {
  let url: URL | undefined;
  try {
    url = new URL(raw);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== "ws:" && url.protocol !== "wss:")) {
    throw new Error(`configuration RELAY_PEERS: ${JSON.stringify(raw)} is not a ws:// or wss:// URL`);
  }
  return raw;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === "" ? undefined : value;
}

function serviceUrl(raw: string | undefined, host: string, port: number): string {
  if (raw === undefined) {
    const local = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host.includes(":") ? `[${host}]` : host;
    return `http://${local}:${port}`;
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error(`configuration SERVICE_URL=${JSON.stringify(raw)}: expected an http(s) URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new Error(`configuration SERVICE_URL=${JSON.stringify(raw)}: expected an http(s) URL`);
  }
  return url.toString().replace(/\/+$/, "");
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const port = intFrom(env, "PORT", 8080, 0, 65535);
  const host = nonEmpty(env.HOST) ?? "127.0.0.1";
  return {
    port,
    host,
    serviceUrl: serviceUrl(nonEmpty(env.SERVICE_URL), host, port),
    dataDir: path.resolve(nonEmpty(env.DATA_DIR) ?? "data"),
    mongodbUri: nonEmpty(env.MONGODB_URI),
    mongodbDb: nonEmpty(env.MONGODB_DB) ?? "ledger_sync",
    embeddedDbPort: intFrom(env, "EMBEDDED_DB_PORT", 0, 0, 65535),
    logLevel: nonEmpty(env.LOG_LEVEL) ?? "info",
    jwt: {
      privateKeyPem: nonEmpty(env.JWT_PRIVATE_KEY),
      publicKeyPem: nonEmpty(env.JWT_PUBLIC_KEY),
      issuer: nonEmpty(env.JWT_ISSUER) ?? "ledger-sync",
      audience: nonEmpty(env.JWT_AUDIENCE) ?? "ledger-sync",
      ttlSeconds: intFrom(env, "JWT_TTL_SECONDS", 12 * 3600, 60, 90 * 24 * 3600),
      certTtlSeconds: intFrom(env, "PEER_CERT_TTL_SECONDS", 7 * 24 * 3600, 60, 90 * 24 * 3600),
    },
    relay: {
      maxPayloadBytes: intFrom(env, "RELAY_MAX_PAYLOAD_BYTES", 8 * 1024 * 1024, 1024, 256 * 1024 * 1024),
      maxFragments: intFrom(env, "RELAY_MAX_FRAGMENTS", 64, 1, 16384),
      maxBufferedBytes: intFrom(env, "RELAY_MAX_BUFFERED_BYTES", 32 * 1024 * 1024, 64 * 1024, 1024 * 1024 * 1024),
      heartbeatMs: intFrom(env, "RELAY_HEARTBEAT_MS", 15_000, 100, 600_000),
      messagesPerSecond: intFrom(env, "RELAY_MESSAGES_PER_SECOND", 500, 1, 1_000_000),
      documentsPerSecond: intFrom(env, "RELAY_DOCUMENTS_PER_SECOND", 200, 1, 1_000_000),
      maxDocumentBytes: intFrom(env, "RELAY_MAX_DOCUMENT_BYTES", 16 * 1024 * 1024, 1024, 1024 * 1024 * 1024),
      idleUnloadMs: intFrom(env, "RELAY_IDLE_UNLOAD_MS", 5 * 60_000, 100, 24 * 3600_000),
      maxConnectionsPerToken: intFrom(env, "RELAY_MAX_CONNECTIONS_PER_TOKEN", 8, 1, 100_000),
      maxDocumentsPerTeam: intFrom(env, "RELAY_MAX_DOCUMENTS_PER_TEAM", 20_000, 10, 100_000_000),
      maxQueuedBytesPerConnection: intFrom(env, "RELAY_MAX_QUEUED_BYTES_PER_CONNECTION", 16 * 1024 * 1024, 1024, 1024 * 1024 * 1024),
      maxQueuedBytesPerToken: intFrom(env, "RELAY_MAX_QUEUED_BYTES_PER_TOKEN", 32 * 1024 * 1024, 1024, 1024 * 1024 * 1024),
      maxQueuedBytes: intFrom(env, "RELAY_MAX_QUEUED_BYTES", 128 * 1024 * 1024, 1024, 16 * 1024 * 1024 * 1024),
      maxPendingRequestsPerConnection: intFrom(env, "RELAY_MAX_PENDING_REQUESTS_PER_CONNECTION", 1_000, 1, 1_000_000),
      maxPendingRequestsPerToken: intFrom(env, "RELAY_MAX_PENDING_REQUESTS_PER_TOKEN", 2_000, 1, 1_000_000),
      maxPendingRequests: intFrom(env, "RELAY_MAX_PENDING_REQUESTS", 20_000, 1, 10_000_000),
    },
    relayStorage: storageKind(env.RELAY_STORAGE),
    relayPeers: (nonEmpty(env.RELAY_PEERS) ?? "").split(",").map((u) => u.trim()).filter((u) => u !== "").map(wsUrl),
    materializer: {
      mode: materializerMode(env.MATERIALIZER),
      maxBatch: intFrom(env, "MATERIALIZER_MAX_BATCH", 5000, 1, 100_000),
      teams: (nonEmpty(env.MATERIALIZER_TEAMS) ?? "").split(",").map((t) => t.trim()).filter((t) => t !== ""),
      pauseAt: pauseAt(env.MATERIALIZER_PAUSE_AT),
      selfCheckMs: intFrom(env, "MATERIALIZER_SELF_CHECK_MS", 10 * 60_000, 0, 7 * 24 * 3600_000),
      selfCheckRecent: intFrom(env, "MATERIALIZER_SELF_CHECK_RECENT", 5000, 1, 10_000_000),
      checkpointRecords: intFrom(env, "MATERIALIZER_CHECKPOINT_RECORDS", 1000, 1, 1_000_000),
      checkpointSeconds: intFrom(env, "MATERIALIZER_CHECKPOINT_SECONDS", 60, 1, 24 * 3600),
      leaseMs: intFrom(env, "MATERIALIZER_LEASE_MS", 15_000, 1000, 600_000),
      instance: nonEmpty(env.MATERIALIZER_INSTANCE),
    },
  };
}
