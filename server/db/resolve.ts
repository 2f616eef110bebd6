/**
 * Finds or starts the MongoDB-wire server the service uses, in the order the README gives:
 * MONGODB_URI; a `mongod` on the PATH (as a one-node replica set, so transactions work); a
 * mongod binary already cached by mongodb-memory-server; the embedded FerretDB v1 (SQLite) built
 * from tools/ferretdb. Callers get what the server can do (transactions, change streams) so they
 * choose a code path instead of failing on a missing feature.
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { execFileSync } from "node:child_process";
import { MongoClient } from "mongodb";
import { packageRoot } from "../entry-point.js";
import type { Logger } from "../log.js";
import { startGuardedChild, type GuardedChild } from "./child.js";
import { freePort } from "./free-port.js";

export type DatabaseKind = "external" | "mongod" | "memory-server" | "ferretdb";

export interface DatabaseFeatures {
  transactions: boolean;
  changeStreams: boolean;
  /**
   * Queries other than `_id` equality use indexes. False on FerretDB v1, which scans the whole
   * collection for them, `$in` on `_id` included (our build answers `_id` equality from the
   * index: tools/ferretdb/sqlite-id-index.patch): callers then prefer point lookups by `_id`.
   */
  indexedQueries: boolean;
}

export interface DatabaseHandle {
  uri: string;
  kind: DatabaseKind;
  /** Server name and version as it reports them, e.g. "MongoDB 7.0.14" or "FerretDB v1.24.2". */
  server: string;
  features: DatabaseFeatures;
  /** Stops the server if this process started it; a no-op for an external one. */
  stop(): Promise<void>;
  /** For a server this process started: its process, which the watchdog can restart (same port, same URI). */
  embedded?: EmbeddedServer;
}

export interface EmbeddedServer {
  /** Resolves when the current server process exits. */
  exited(): Promise<void>;
  /** Ends the current process (SIGKILL when it hangs) and starts a new one on the same port. */
  restart(): Promise<void>;
}

export interface ResolveOptions {
  dataDir: string;
  uri?: string | undefined;
  logger?: Logger;
  /** Pin the embedded server to this port (a clear error when it is taken); 0 or absent: choose. */
  port?: number;
}

export const FERRETDB_BINARY = path.join(packageRoot, ".bin", "ferretdb-embedded");
const FERRETDB_BUILD = path.join(packageRoot, "tools", "ferretdb", "build.sh");

export async function resolveDatabase(opts: ResolveOptions): Promise<DatabaseHandle> {
  const log = opts.logger?.child({ module: "db" });
  if (opts.uri) {
    const probe = await probeServer(opts.uri);
    log?.info({ kind: "external", server: probe.server, features: probe.features }, "using MONGODB_URI");
    return { uri: opts.uri, kind: "external", ...probe, stop: async () => {} };
  }

  const mongod = findOnPath("mongod");
  if (mongod) return startMongod(mongod, "mongod", opts, log);

  const cached = findMemoryServerBinary();
  if (cached) return startMongod(cached, "memory-server", opts, log);

  return startFerretDb(opts, log);
}

/** Asks the server what it is and what it supports, without relying on features it may lack. */
export async function probeServer(uri: string): Promise<{ server: string; features: DatabaseFeatures }> {
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 10_000 });
  try {
    await client.connect();
    const admin = client.db("admin");
    const hello = await admin.command({ hello: 1 });
    const build = await admin.command({ buildInfo: 1 });
    const ferret = typeof build.ferretdbVersion === "string" ? build.ferretdbVersion : undefined;
    const server = ferret ? `FerretDB ${ferret}` : `MongoDB ${String(build.version)}`;
    // Transactions and change streams need a replica set (or mongos); FerretDB v1 has neither.
    const replicated = !ferret && (typeof hello.setName === "string" || hello.msg === "isdbgrid");
    return { server, features: { transactions: replicated, changeStreams: replicated, indexedQueries: !ferret } };
  } finally {
    await client.close();
  }
}

function findOnPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // not in this folder
    }
  }
  return undefined;
}

/** mongodb-memory-server keeps downloaded binaries here; we use one only if it is already there. */
function findMemoryServerBinary(): string | undefined {
  const explicit = process.env.MONGOMS_SYSTEM_BINARY;
  if (explicit && existsSync(explicit)) return explicit;
  const dirs = [process.env.MONGOMS_DOWNLOAD_DIR, path.join(os.homedir(), ".cache", "mongodb-binaries")];
  for (const dir of dirs) {
    if (!dir || !existsSync(dir)) continue;
    const binaries = readdirSync(dir).filter((f) => f.startsWith("mongod")).sort();
    const newest = binaries.at(-1);
    if (newest) return path.join(dir, newest);
  }
  return undefined;
}

async function startMongod(
  binary: string,
  kind: "mongod" | "memory-server",
  opts: ResolveOptions,
  log: Logger | undefined,
): Promise<DatabaseHandle> {
  const dbPath = path.join(opts.dataDir, "mongod");
  await mkdir(dbPath, { recursive: true });
  const port = opts.port || (await freePort());
  log?.info({ kind, binary, dbPath, port }, "starting mongod as a one-node replica set");
  const child = await startGuardedChild({
    name: "mongod",
    command: binary,
    args: ["--dbpath", dbPath, "--port", String(port), "--bind_ip", "127.0.0.1", "--replSet", "rs0", "--quiet"],
    ready: (line) => line.includes("Waiting for connections") || line.includes('"Waiting for connections"'),
    timeoutMs: 60_000,
  });
  const uri = `mongodb://127.0.0.1:${port}/?directConnection=true`;
  await initiateReplicaSet(uri, port);
  const probe = await probeServer(uri);
  log?.info({ kind, uri, server: probe.server, features: probe.features }, "database ready");
  return { uri, kind, ...probe, stop: () => child.stop() };
}

async function initiateReplicaSet(uri: string, port: number): Promise<void> {
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 10_000 });
  try {
    const admin = client.db("admin");
    try {
      await admin.command({ replSetInitiate: { _id: "rs0", members: [{ _id: 0, host: `127.0.0.1:${port}` }] } });
    } catch (err) {
      // A data folder from an earlier run is already initiated; anything else is real.
      if (!/already initialized/i.test(String(err))) throw err;
    }
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      const hello = await admin.command({ hello: 1 });
      if (hello.isWritablePrimary === true) return;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`mongod on port ${port}: replica set did not elect a primary within 30 s`);
  } finally {
    await client.close();
  }
}

async function startFerretDb(opts: ResolveOptions, log: Logger | undefined): Promise<DatabaseHandle> {
  if (!existsSync(FERRETDB_BINARY)) {
    log?.info("no mongod found; building the embedded FerretDB");
    execFileSync("bash", [FERRETDB_BUILD], { stdio: ["ignore", "inherit", "inherit"] });
  }
  const dir = path.join(opts.dataDir, "ferretdb");
  await mkdir(dir, { recursive: true });
  const portFile = path.join(dir, "port");
  const launch = async (port: number): Promise<{ child: GuardedChild; uri: string }> => {
    let uri = "";
    const child = await startGuardedChild({
      name: "ferretdb",
      command: FERRETDB_BINARY,
      args: ["-dir", dir, "-listen", `127.0.0.1:${port}`],
      ready: (line) => {
        const match = /^READY (\S+)/.exec(line);
        if (match?.[1]) uri = match[1];
        return match !== null;
      },
      timeoutMs: 30_000,
    });
    return { child, uri };
  };
  // The port of the last run when it is free, so the URI (and every client's connection string)
  // stays the same across restarts of the service and of the database.
  const saved = await readSavedPort(portFile);
  let started: { child: GuardedChild; uri: string } | undefined;
  if (opts.port) {
    started = await launch(opts.port).catch((err: unknown) => {
      throw new Error(`EMBEDDED_DB_PORT=${opts.port}: the embedded database could not listen there (${err instanceof Error ? err.message : String(err)})`);
    });
  }
  if (saved !== undefined) started ??= await launch(saved).catch(() => undefined);
  started ??= await launch(0);
  const port = Number(new URL(started.uri).port);
  if (port !== saved) await writeFile(portFile, `${port}\n`);
  let child = started.child;
  const uri = started.uri;
  const probe = await probeServer(uri);
  log?.info({ kind: "ferretdb", uri, dir, server: probe.server, features: probe.features, portReused: port === saved }, "database ready");
  return {
    uri,
    kind: "ferretdb",
    ...probe,
    stop: () => child.stop(),
    embedded: {
      exited: () => child.exited,
      async restart() {
        child.kill();
        await child.exited;
        // The same port: a restart that cannot have it fails (and is tried again), rather than
        // moving to a port no client knows.
        child = (await launch(port)).child;
        log?.info({ kind: "ferretdb", uri, pid: child.pid }, "database restarted");
      },
    },
  };
}

async function readSavedPort(file: string): Promise<number | undefined> {
  try {
    const n = Number((await readFile(file, "utf8")).trim());
    return Number.isInteger(n) && n > 0 && n < 65536 ? n : undefined;
  } catch {
    return undefined;
  }
}
