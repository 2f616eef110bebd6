/**
 * The materializer as a process of its own (DESIGN.md "Where it runs"): a privileged peer of the
 * relay with a service token, so a crash, a restart or a long batch never stalls devices.
 * Started and supervised by server/main.ts; can be run alone with RELAY_URL and MONGODB_URI.
 */
import http from "node:http";
import os from "node:os";
import { randomUUID } from "node:crypto";
import { Repo, type PeerId } from "@automerge/automerge-repo";
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket";
import { MongoClient } from "mongodb";
import { loadOrCreateKeys } from "../auth/keys.js";
import { createTokenService } from "../auth/tokens.js";
import { loadConfig } from "../config.js";
import { probeServer } from "../db/resolve.js";
import { createLogger } from "../log.js";
import { exitOnUnhandledExceptSyncTimeouts } from "../unhandled.js";
import { createCheckpointSigner } from "../audit/signer.js";
import { Leases } from "./leases.js";
import { Materializer } from "./materializer.js";
import { armPausePoint } from "./pause-points.js";

/** The process restarts itself before its service token expires (the supervisor starts it again). */
const TOKEN_TTL_SECONDS = 24 * 3600;

/** Set once the materializer runs; until then there is nothing to stop cleanly. */
let stopGracefully: ((signal: string) => Promise<void>) | undefined;

if (process.env.MATERIALIZER_SUPERVISED === "1") {
  // The supervisor holds our stdin open; its end means the service is gone, and this must be
  // heard from the first moment (a relay killed while we still wait for it included). Exit even
  // if a clean stop hangs: the journal-first order makes any point safe to stop at.
  process.stdin.on("end", () => {
    setTimeout(() => process.exit(0), 3000).unref();
    if (stopGracefully) void stopGracefully("supervisor-gone");
    else process.exit(0);
  });
  process.stdin.resume();
}

async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config.logLevel).child({ process: "materializer" });
  exitOnUnhandledExceptSyncTimeouts(logger);
  if (config.materializer.pauseAt) {
    armPausePoint(config.materializer.pauseAt, (point) => logger.warn({ point, pid: process.pid }, "paused at a pause point"));
  }
  const relayUrl = process.env.RELAY_URL;
  if (!relayUrl || !config.mongodbUri) throw new Error("materializer: RELAY_URL and MONGODB_URI are required");

  const keys = await loadOrCreateKeys({ ...config.jwt, dataDir: config.dataDir });
  const tokens = createTokenService(keys, config.jwt);
  const token = tokens.issue({ sub: "materializer", team: "*", role: "service" }, TOKEN_TTL_SECONDS);

  const probe = await probeServer(config.mongodbUri);
  const client = new MongoClient(config.mongodbUri);
  await client.connect();
  const db = client.db(config.mongodbDb);

  const adapter = new WebSocketClientAdapter(`${relayUrl}?token=${encodeURIComponent(token)}`, 1000);
  const repo = new Repo({ network: [adapter], peerId: `materializer-${randomUUID()}` as PeerId, sharePolicy: async () => true });
  // find() before the relay answers can report a document as unavailable (AUTOMERGE-NOTES.md).
  await new Promise<void>((resolve) => {
    if (repo.peers.length > 0) return resolve();
    repo.networkSubsystem.once("peer", () => resolve());
  });

  const materializer = new Materializer({
    db,
    client,
    features: probe.features,
    repo,
    logger,
    maxBatch: config.materializer.maxBatch,
    teams: config.materializer.teams,
    selfCheckMs: config.materializer.selfCheckMs,
    selfCheckRecent: config.materializer.selfCheckRecent,
    // The service's own key (DATA_DIR/keys or JWT_PRIVATE_KEY): the supervisor passes DATA_DIR.
    anchor: {
      signer: createCheckpointSigner(keys),
      publicKeyPem: keys.publicKeyPem,
      policy: { everyRecords: config.materializer.checkpointRecords, everyMs: config.materializer.checkpointSeconds * 1000 },
    },
    statementKeyPem: keys.privateKeyPem,
    leases: new Leases(db, { owner: config.materializer.instance ?? `${os.hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`, leaseMs: config.materializer.leaseMs }),
  });
  await materializer.start();

  let metricsServer: http.Server | undefined;
  const metricsPort = process.env.MATERIALIZER_METRICS_PORT;
  if (metricsPort) {
    metricsServer = http.createServer((req, res) => {
      if (req.url !== "/metrics") return void res.writeHead(404).end();
      void materializer.metrics.registry.metrics().then((text) => {
        res.writeHead(200, { "content-type": materializer.metrics.registry.contentType }).end(text);
      });
    });
    metricsServer.listen(Number(metricsPort), "127.0.0.1");
  }
  logger.info({ relay: relayUrl, database: probe.server }, "materializer ready");

  const stop = async (signal: string): Promise<void> => {
    logger.info({ signal }, "materializer stopping");
    await materializer.stop();
    metricsServer?.close();
    await repo.shutdown().catch(() => undefined);
    await client.close();
    process.exit(0);
  };
  stopGracefully = stop;
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
  setTimeout(() => void stop("token-renewal"), (TOKEN_TTL_SECONDS - 3600) * 1000).unref();
}

main().catch((err: unknown) => {
  console.error(JSON.stringify({ level: 60, process: "materializer", msg: "materializer failed", err: String(err instanceof Error ? err.stack : err) }));
  process.exit(1);
});
