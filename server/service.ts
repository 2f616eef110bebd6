/**
 * The service on one port: HTTP API (express) and, as it grows, the WebSocket relay.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import express from "express";
import type { Db } from "mongodb";
import type { Config } from "./config.js";
import type { DatabaseHandle } from "./db/resolve.js";
import type { Logger } from "./log.js";

export interface ServiceOptions {
  config: Config;
  db: Db;
  database: DatabaseHandle;
  logger: Logger;
}

export interface RunningService {
  port: number;
  url: string;
  close(): Promise<void>;
}

export async function startService(opts: ServiceOptions): Promise<RunningService> {
  const { config, database, logger } = opts;
  const app = express();
  app.disable("x-powered-by");

  app.get("/healthz", (_req, res) => {
    res.json({
      status: "ok",
      database: { kind: database.kind, server: database.server, features: database.features },
    });
  });

  const server = http.createServer(app);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  logger.debug({ port }, "http server bound");

  return {
    port,
    url: `http://${config.host}:${port}`,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
