/**
 * The relays a benchmark compares, each as a real process on 127.0.0.1: ours (`server/main.ts`,
 * auth and checks, optionally with its materializer) and the bare automerge-repo relay. Both
 * expose the same shape so a workload runs unchanged against either.
 */
import { mkdir, mkdtemp } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { loadOrCreateKeys } from "../../server/auth/keys.js";
import { createTokenService, type IssueClaims, type TokenService } from "../../server/auth/tokens.js";
import { loadConfig } from "../../server/config.js";
import type { CreatedTeam } from "../../server/relay/teams.js";
import { rssMb, spawnTsx, type Child } from "./procs.js";

export type RelayKind = "ours" | "bare";

export interface RelayProcess {
  kind: RelayKind;
  dataDir: string;
  port: number;
  /** ws://127.0.0.1:port/sync (ours) or ws://127.0.0.1:port (bare). */
  syncUrl: string;
  httpUrl: string;
  pid(): number;
  rssMb(): number;
  /** The last warnings and errors the relay logged (its JSON lines), to explain a failed run. */
  warnings(): string[];
  /** A token for `claims` (ours); "" for the bare relay, which checks nothing. */
  token(claims: IssueClaims): string;
  /** The WebSocket address with the token in the query (what a plain Repo client dials). */
  dial(claims: IssueClaims): string;
  stop(): Promise<void>;
  /** Stop and start again on the same data folder (and port-less: a new port). */
  restart(): Promise<void>;
}

export interface OursOptions {
  mongoUri: string;
  dbName: string;
  materializer: boolean;
  dataDir?: string;
  env?: Record<string, string>;
}

export async function benchDir(prefix: string): Promise<string> {
  const root = path.join(os.tmpdir(), "ledger-bench");
  await mkdir(root, { recursive: true });
  return mkdtemp(path.join(root, `${prefix}-`));
}

export async function startOurs(opts: OursOptions): Promise<RelayProcess & { tokens: TokenService; createTeam(team: string): Promise<CreatedTeam> }> {
  const dataDir = opts.dataDir ?? (await benchDir("ours"));
  // Keys made here first, so the bench signs tokens the service (which finds them) accepts.
  const config = loadConfig({ DATA_DIR: dataDir });
  const tokens = createTokenService(await loadOrCreateKeys({ ...config.jwt, dataDir }), config.jwt);
  const env = {
    PORT: "0",
    DATA_DIR: dataDir,
    MONGODB_URI: opts.mongoUri,
    MONGODB_DB: opts.dbName,
    MATERIALIZER: opts.materializer ? "process" : "off",
    LOG_LEVEL: "info",
    ...opts.env,
  };
  const launch = (): Promise<Child> =>
    spawnTsx({ script: "server/main.ts", env, ready: (l) => l.msg === "listening" && typeof l.port === "number" });
  let child = await launch();
  const relay = {
    kind: "ours" as const,
    dataDir,
    port: 0,
    syncUrl: "",
    httpUrl: "",
    tokens,
    pid: () => child.pid,
    rssMb: () => rssMb(child.pid),
    warnings: () => warningsOf(child.logs),
    token: (claims: IssueClaims) => tokens.issue(claims),
    dial: (claims: IssueClaims) => `${relay.syncUrl}?token=${encodeURIComponent(tokens.issue(claims))}`,
    stop: () => child.stop(),
    async restart() {
      await child.stop();
      child = await launch();
      setAddress(Number(child.ready.port));
    },
    async createTeam(team: string): Promise<CreatedTeam> {
      const res = await fetch(`${relay.httpUrl}/api/teams`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${tokens.issue({ sub: "bench", team: "*", role: "service" })}` },
        body: JSON.stringify({ team }),
      });
      if (res.status !== 201) throw new Error(`create team ${team}: ${res.status} ${await res.text()}`);
      return (await res.json()) as CreatedTeam;
    },
  };
  const setAddress = (port: number): void => {
    relay.port = port;
    relay.syncUrl = `ws://127.0.0.1:${port}/sync`;
    relay.httpUrl = `http://127.0.0.1:${port}`;
  };
  setAddress(Number(child.ready.port));
  return relay;
}

export async function startBare(dataDirGiven?: string): Promise<RelayProcess> {
  const dataDir = dataDirGiven ?? (await benchDir("bare"));
  const launch = (): Promise<Child> =>
    spawnTsx({ script: "bench/bare-relay.ts", env: { DATA_DIR: dataDir, PORT: "0" }, ready: (l) => l.msg === "listening" });
  let child = await launch();
  const relay: RelayProcess = {
    kind: "bare",
    dataDir,
    port: Number(child.ready.port),
    syncUrl: `ws://127.0.0.1:${Number(child.ready.port)}`,
    httpUrl: `http://127.0.0.1:${Number(child.ready.port)}`,
    pid: () => child.pid,
    rssMb: () => rssMb(child.pid),
    warnings: () => warningsOf(child.logs),
    token: () => "",
    dial: () => relay.syncUrl,
    stop: () => child.stop(),
    async restart() {
      await child.stop();
      child = await launch();
      relay.port = Number(child.ready.port);
      relay.syncUrl = `ws://127.0.0.1:${relay.port}`;
      relay.httpUrl = `http://127.0.0.1:${relay.port}`;
    },
  };
  return relay;
}

function warningsOf(logs: readonly Record<string, unknown>[]): string[] {
  return logs.filter((l) => typeof l.level === "number" && l.level >= 40).slice(-10).map((l) => JSON.stringify(l).slice(0, 400));
}
