/**
 * `npm start`: resolves the database (external or embedded), starts the service and the
 * materializer process, and stops all three cleanly on SIGINT/SIGTERM.
 */
import { mkdir } from "node:fs/promises";
import { MongoClient } from "mongodb";
import { loadConfig } from "./config.js";
import { DataDirInUseError, lockDataDir } from "./data-lock.js";
import { resolveDatabase } from "./db/resolve.js";
import { watchDatabase } from "./db/watchdog.js";
import { createLogger } from "./log.js";
import { superviseMaterializer, type Supervisor } from "./materializer/supervisor.js";
import { removeServiceFile, writeServiceFile } from "./service-file.js";
import { startService } from "./service.js";
import { exitOnUnhandledExceptSyncTimeouts } from "./unhandled.js";

/** The longest a clean stop may take (flush, materializer, database) before we exit anyway. */
const SHUTDOWN_LIMIT_MS = 30_000;

async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config.logLevel);
  exitOnUnhandledExceptSyncTimeouts(logger);
  await mkdir(config.dataDir, { recursive: true });
  // Before anything else touches the folder: a second service must not start a second database
  // on the same files.
  const lock = await lockDataDir(config.dataDir, "ledger-sync service");
  if (lock.tookOverFrom) logger.warn({ previous: lock.tookOverFrom, dataDir: config.dataDir }, "took over the data folder's lock from a service that is gone");

  const database = await resolveDatabase({ dataDir: config.dataDir, uri: config.mongodbUri, logger, port: config.embeddedDbPort });
  const client = new MongoClient(database.uri);
  await client.connect();
  const db = client.db(config.mongodbDb);
  const watchdog = watchDatabase({ database, db, logger });
  const service = await startService({ config, db, database, logger, watchdog });
  let materializer: Supervisor | undefined;
  if (config.materializer.mode === "process") {
    materializer = superviseMaterializer({
      logger,
      env: {
        RELAY_URL: `ws://127.0.0.1:${service.port}/sync`,
        MONGODB_URI: database.uri,
        MONGODB_DB: config.mongodbDb,
        DATA_DIR: config.dataDir,
      },
    });
  }
  await writeServiceFile(config.dataDir, {
    url: service.url.replace(/\/\/(0\.0\.0\.0|\[::\]):/, "//127.0.0.1:"), pid: process.pid, startedAt: new Date().toISOString(), mongodbUri: database.uri, mongodbDb: config.mongodbDb,
  });

  let stopping = false;
  const shutdown = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "shutting down");
    // A process manager waits only so long before it kills; leave on our own terms first.
    setTimeout(() => {
      logger.error({ afterMs: SHUTDOWN_LIMIT_MS }, "shutdown took too long; exiting");
      process.exit(1);
    }, SHUTDOWN_LIMIT_MS).unref();
    try {
      await removeServiceFile(config.dataDir);
      watchdog.stop();
      await materializer?.stop();
      await service.close();
      await client.close();
      await database.stop();
      await lock.release();
      logger.info("stopped");
      process.exit(0);
    } catch (err) {
      logger.error({ err }, "error during shutdown");
      process.exit(1);
    }
  };
  // Before "listening": whoever waits for that line may signal at once (seen in CI: a SIGTERM
  // sent on the line killed the process by the default action).
  process.on("SIGINT", () => void shutdown("SIGINT"));
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  logger.info({ port: service.port, url: service.url, database: database.kind, materializer: materializer?.pid() ?? null }, "listening");
  // Started by `npm start`: if npm itself is killed (SIGKILL cannot be forwarded), we are
  // re-parented and nobody would stop us; leave with it rather than run on orphaned.
  if (process.env.npm_lifecycle_event) {
    const parent = process.ppid;
    setInterval(() => {
      if (process.ppid !== parent) void shutdown("parent-exited");
    }, 1000).unref();
  }
}

main().catch((err: unknown) => {
  // Before the logger exists a plain line is all we can give; keep it one line of JSON.
  const why = err instanceof DataDirInUseError ? err.message : String(err instanceof Error ? err.stack : err);
  console.error(JSON.stringify({ level: 60, msg: "failed to start", err: why }));
  process.exit(1);
});
