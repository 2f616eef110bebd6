/**
 * The service on one port: HTTP API under `/api` (express), WebSocket sync at `/sync` (the
 * relay), operations endpoints (`/healthz`, `/readyz`, `/metrics`), and the browser pages
 * (`/app/` the till, `/audit/` the audit view: server/http/web.ts).
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import express, { type NextFunction, type Request, type Response } from "express";
import type { Db } from "mongodb";
import type { Config } from "./config.js";
import type { DatabaseHandle } from "./db/resolve.js";
import type { DatabaseWatchdog } from "./db/watchdog.js";
import type { Logger } from "./log.js";
import { loadOrCreateKeys } from "./auth/keys.js";
import { createTokenService, type TokenService } from "./auth/tokens.js";
import { createActivityRecorder } from "./accounts/activity.js";
import { DEFAULT_LOGIN_LIMIT, RateLimiter } from "./accounts/rate-limit.js";
import { loginTicketKey } from "./accounts/login-tickets.js";
import { accounts as createAccounts } from "./accounts/store.js";
import { Gateway } from "./gateway/gateway.js";
import { apiRouter } from "./http/api.js";
import { securityHeaders } from "./http/headers.js";
import { webPages, webPagesBuilt } from "./http/web.js";
import { createHealthMetrics } from "./health/metrics.js";
import { teamProblems } from "./health/team-health.js";
import { collections } from "./materializer/collections.js";
import { materializerReadiness } from "./materializer/readiness.js";
import { startRelay, type Relay } from "./relay/relay.js";
import type { Teams } from "./relay/teams.js";
import type { Repo } from "@automerge/automerge-repo";

export interface ServiceOptions {
  config: Config;
  db: Db;
  database: DatabaseHandle;
  logger: Logger;
  /** The database watchdog (server/db/watchdog.ts), when the service runs one. */
  watchdog?: DatabaseWatchdog;
}

export interface RunningService {
  port: number;
  /** http://host:port */
  url: string;
  /** ws://host:port/sync */
  syncUrl: string;
  /** The relay's Repo (server-side reads and writes, tests). */
  repo: Repo;
  /** createTeam, registerDocument, rootUrl. */
  teams: Teams;
  /** issue(claims) and verify(token); `tokens.publicKeyPem` verifies offline (shared/auth/verify.ts). */
  tokens: TokenService;
  relay: Relay;
  /** Stops accepting, closes sessions, flushes documents, closes the HTTP server. Safe to call twice. */
  close(): Promise<void>;
}

export async function startService(opts: ServiceOptions): Promise<RunningService> {
  const { config, database, db, logger, watchdog } = opts;
  const keys = await loadOrCreateKeys({
    privateKeyPem: config.jwt.privateKeyPem,
    publicKeyPem: config.jwt.publicKeyPem,
    dataDir: config.dataDir,
  });
  const tokens = createTokenService(keys, config.jwt);
  const activity = createActivityRecorder(db, logger.child({ module: "activity" }), config.relay.heartbeatMs);
  await activity.clearAtStart();
  const relay = await startRelay({
    dataDir: config.dataDir,
    db,
    limits: config.relay,
    storageKind: config.relayStorage,
    peers: config.relayPeers,
    // Long-lived: a link redials with the token it was made with (relay restarts renew it).
    peerToken: () => tokens.issue({ sub: "relay", team: "*", role: "service" }, 30 * 24 * 3600),
    logger,
    verify: (token) => tokens.verify(token),
    onSession: activity.onSession,
  });
  watchdog?.registerMetrics(relay.metrics.registry);
  const accounts = createAccounts(db);
  await accounts.ensureIndexes();
  const gateway = new Gateway({ db, repo: relay.repo, registry: relay.registry, logger, pointLookups: !database.features.indexedQueries });
  await gateway.ensureIndexes();

  let stopping = false;
  const app = express();
  app.disable("x-powered-by");
  app.use(securityHeaders);

  app.get("/healthz", (_req, res) => {
    const health = watchdog?.health();
    res.json({
      status: !health || health.status === "up" ? "ok" : "degraded",
      database: { kind: database.kind, server: database.server, features: database.features, ...(health ? { health } : {}) },
    });
  });
  const problems = (team?: string) => teamProblems(db, relay.storage, relay.registry, team);
  const healthMetrics = createHealthMetrics({ problems: () => problems(), corruptChunks: () => relay.storage.corruptChunks() });
  app.get("/readyz", async (_req, res) => {
    if (stopping) {
      res.status(503).json({ ready: false, reason: "shutting down" });
      return;
    }
    let unhealthy;
    let materializer;
    try {
      // With a deadline: a hung database must not hang the probe.
      if (watchdog) await watchdog.ping();
      else await db.command({ ping: 1 });
      unhealthy = await problems();
      materializer = await materializerReadiness(db, config.materializer.mode === "process");
    } catch (err) {
      res.status(503).json({ ready: false, reason: `database: ${err instanceof Error ? err.message : "unreachable"}`, ...(watchdog ? { database: watchdog.health() } : {}) });
      return;
    }
    // A team whose documents cannot load is losing work silently: not ready until someone looks.
    const teams = { ok: unhealthy.length === 0, unhealthy };
    const reasons = [
      ...(teams.ok ? [] : [`teams: ${[...new Set(unhealthy.map((p) => p.team))].join(", ")} cannot load their documents`]),
      ...(materializer.ready ? [] : ["materializer: not caught up (see materializer)"]),
    ];
    const body = { ready: reasons.length === 0, sessions: relay.sessionCount(), teams, materializer: materializer.part };
    res.status(reasons.length === 0 ? 200 : 503).json(reasons.length === 0 ? body : { ...body, reason: reasons.join("; ") });
  });
  app.get("/metrics", async (_req, res) => {
    res.set("Content-Type", relay.metrics.registry.contentType);
    res.send(`${await relay.metrics.registry.metrics()}\n${await healthMetrics.metrics()}`);
  });
  app.use(
    "/api",
    apiRouter({
      db,
      repo: relay.repo,
      teams: relay.teams,
      registry: relay.registry,
      tokens,
      logger: logger.child({ module: "api" }),
      tokenTtlSeconds: config.jwt.ttlSeconds,
      accounts,
      loginLimiter: new RateLimiter(DEFAULT_LOGIN_LIMIT),
      loginTicketKey: loginTicketKey(keys.privateKeyPem),
      gateway,
      c: collections(db),
      pointLookups: !database.features.indexedQueries,
      teamProblems: (team) => problems(team),
    }),
  );
  if (!webPagesBuilt()) logger.warn("the browser pages are not built (dist/web): /app/ and /audit/ answer 404 until npm run build");
  app.use(webPages());
  // Malformed JSON bodies and the like: a JSON answer, never an HTML stack trace.
  app.use((err: Error & { status?: number }, _req: Request, res: Response, _next: NextFunction) => {
    const status = typeof err.status === "number" && err.status >= 400 && err.status < 500 ? err.status : 500;
    if (status === 500) logger.error({ err }, "request failed");
    res.status(status).json({ error: { code: status === 500 ? "internal" : "bad-request", message: status === 500 ? "internal error" : err.message } });
  });

  const server = http.createServer(app);
  server.on("upgrade", relay.handleUpgrade);
  server.on("clientError", (err, socket) => {
    logger.debug({ err: err.message }, "http client error");
    socket.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  logger.debug({ port }, "http server bound");

  let closed: Promise<void> | undefined;
  return {
    port,
    url: `http://${config.host}:${port}`,
    syncUrl: `ws://${config.host}:${port}/sync`,
    repo: relay.repo,
    teams: relay.teams,
    tokens,
    relay,
    close() {
      closed ??= (async () => {
        stopping = true;
        activity.stop();
        await relay.close();
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
      })();
      return closed;
    },
  };
}
