/**
 * An in-process relay on 127.0.0.1 with captured JSON logs, real automerge-repo clients, and a
 * raw WebSocket peer for speaking the protocol badly on purpose. Every setup returns its teardown.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { pino } from "pino";
import WebSocket from "ws";
import { Repo, cbor, type PeerId } from "@automerge/automerge-repo";
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket";
import { loadConfig, type RelayLimits } from "../../../server/config.js";
import { startService, type RunningService } from "../../../server/service.js";
import type { IssueClaims } from "../../../server/auth/tokens.js";
import { freshDb, type TestDb } from "../../helpers/db.js";

export type LogLine = Record<string, unknown> & { msg?: string };

export interface TestRelay {
  service: RunningService;
  logs: LogLine[];
  db: TestDb;
  dataDir: string;
  token(claims: IssueClaims, ttlSeconds?: number): string;
  close(): Promise<void>;
}

export async function startTestRelay(limits: Partial<RelayLimits> = {}): Promise<TestRelay> {
  const db = await freshDb("relay");
  const dataDir = await mkdtemp(path.join(os.tmpdir(), "relay-test-"));
  const base = loadConfig({ PORT: "0", DATA_DIR: dataDir, LOG_LEVEL: "debug" });
  const config = { ...base, relay: { ...base.relay, ...limits } };
  const logs: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString("utf8").split("\n")) {
        if (line) logs.push(JSON.parse(line) as LogLine);
      }
      cb();
    },
  });
  const logger = pino({ level: "debug" }, sink);
  const service = await startService({
    config,
    db: db.db,
    database: { uri: db.uri, kind: "external", server: "test", features: { transactions: false, changeStreams: false, indexedQueries: true }, stop: async () => {} },
    logger,
  });
  return {
    service,
    logs,
    db,
    dataDir,
    token: (claims, ttl) => service.tokens.issue(claims, ttl),
    async close() {
      await service.close();
      await db.close();
      // A save the relay started before it closed can still be renaming its file into place.
      await rm(dataDir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
    },
  };
}

/**
 * The stock client adapter throws ws errors other than ECONNREFUSED out of an event handler,
 * which kills the test process when the relay goes away (AUTOMERGE-NOTES.md); swallow them.
 */
export class QuietClientAdapter extends WebSocketClientAdapter {
  override onError = (): void => {};
}

export interface TestClient {
  repo: Repo;
  peerId: PeerId;
  close(): Promise<void>;
}

export async function connectClient(url: string, token: string, peerId?: string, retryMs = 500): Promise<TestClient> {
  const adapter = new QuietClientAdapter(`${url}?token=${encodeURIComponent(token)}`, retryMs);
  const id = (peerId ?? `client-${Math.random().toString(36).slice(2, 10)}`) as PeerId;
  const repo = new Repo({ network: [adapter], peerId: id });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`client ${id} got no peer from the relay`)), 10_000);
    repo.networkSubsystem.once("peer", () => {
      clearTimeout(timer);
      resolve();
    });
  });
  return {
    repo,
    peerId: id,
    async close() {
      await repo.shutdown().catch(() => undefined);
    },
  };
}

export interface RawPeer {
  ws: WebSocket;
  /** Decoded messages received. */
  received: Record<string, unknown>[];
  relayPeerId: string;
  closed: Promise<{ code: number; reason: string }>;
  send(message: Record<string, unknown>): void;
  waitFor(pred: (m: Record<string, unknown>) => boolean, ms?: number): Promise<Record<string, unknown>>;
}

/** Opens a socket; with `join`, completes the join handshake and resolves once the relay answered. */
export async function rawPeer(url: string, token: string, peerId: string, join = true): Promise<RawPeer> {
  const ws = new WebSocket(`${url}?token=${encodeURIComponent(token)}`);
  ws.on("error", () => {});
  const received: Record<string, unknown>[] = [];
  const listeners = new Set<() => void>();
  ws.on("message", (data: Buffer) => {
    try {
      received.push(cbor.decode(new Uint8Array(data)) as Record<string, unknown>);
    } catch {
      received.push({ type: "undecodable" });
    }
    for (const l of listeners) l();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.once("close", (code, reason) => resolve({ code, reason: reason.toString("utf8") })),
  );
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("unexpected-response", (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
  });
  const waitFor = (pred: (m: Record<string, unknown>) => boolean, ms = 5000): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      const check = (): boolean => {
        const hit = received.find(pred);
        if (hit) {
          listeners.delete(onMsg);
          clearTimeout(timer);
          resolve(hit);
          return true;
        }
        return false;
      };
      const onMsg = (): void => void check();
      const timer = setTimeout(() => {
        listeners.delete(onMsg);
        reject(new Error(`no matching message within ${ms} ms; got ${received.map((m) => m.type).join(",")}`));
      }, ms);
      if (!check()) listeners.add(onMsg);
    });
  const peer: RawPeer = {
    ws,
    received,
    relayPeerId: "",
    closed,
    send: (message) => ws.send(cbor.encode(message)),
    waitFor,
  };
  if (join) {
    peer.send({ type: "join", senderId: peerId, peerMetadata: {}, supportedProtocolVersions: ["1"] });
    const answer = await waitFor((m) => m.type === "peer" || m.type === "error");
    peer.relayPeerId = String(answer.senderId);
  }
  return peer;
}

/** Waits until `check` returns true, polling; fails with `what` after `ms`. */
export async function eventually(check: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Status code and body of a refused upgrade. */
export function handshake(url: string, token: string | undefined): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(token === undefined ? url : `${url}?token=${encodeURIComponent(token)}`);
    ws.on("error", () => {});
    ws.once("open", () => {
      ws.close();
      resolve({ status: 101, body: "" });
    });
    ws.once("unexpected-response", (_req, res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString("utf8")));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      res.on("error", reject);
    });
  });
}
