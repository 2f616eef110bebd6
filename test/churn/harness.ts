/**
 * The churn harness (issue 9): N device processes writing one sale per interval through a chaos
 * proxy to the relay (a real `server/main.ts` process with its materializer), while a driver
 * cuts a random connection every few seconds (graceful closes and TCP resets) and restarts the
 * relay with SIGKILL on the same port and data folder. After a quiet period it checks that every
 * sale a device reported as written is on the relay and decided in the materializer's journal.
 *
 * Everything listens on 127.0.0.1 and every phase has a deadline. Every process started here is
 * killed in `finally`, and on process exit as a last resort, whatever failed.
 */
import { readFileSync } from "node:fs";
import { spawn, type ChildProcess } from "node:child_process";
import { generateKeyPairSync, randomUUID } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Repo, type AutomergeUrl, type PeerId } from "@automerge/automerge-repo";
import { MongoClient } from "mongodb";
import { nodeRelaySocket } from "../../client/node.js";
import { readSegments, segmentEntries } from "../../client/read-docs.js";
import { ReconnectingClientAdapter } from "../../client/ws-client-adapter.js";
import { createTokenService, type TokenService } from "../../server/auth/tokens.js";
import { freePort } from "../../server/db/free-port.js";
import type { CreatedTeam } from "../../server/relay/teams.js";
import { isAlive, spawnService, type ServiceProcess } from "../helpers/service-process.js";
import { ChaosProxy, type CutKind } from "./proxy.js";
import { isRunnerReport, type RunnerCommand, type RunnerConfig, type RunnerReport } from "./protocol.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, "../..");
const RUNNER = path.join(here, "device-runner.ts");

const live = new Set<ChildProcess>();
process.once("exit", () => {
  for (const p of live) p.kill("SIGKILL");
});

export interface ChurnOptions {
  devices: number;
  /** How long devices write, in ms; the chaos runs over the same window. */
  writeMs: number;
  /** Milliseconds between two sales of one device. */
  intervalMs: number;
  /** A cut every cutMinMs..cutMaxMs. */
  cutMinMs: number;
  cutMaxMs: number;
  /** Relay SIGKILL restarts, spread evenly over the write window. */
  relayRestarts: number;
  /** Longest wait after the writes for every entry to be on the relay and decided. */
  quietMaxMs: number;
  /** A MongoDB-wire server and a database of this run's own. */
  mongoUri: string;
  dbName: string;
  log?: (line: string) => void;
  random?: () => number;
  /** Writes every JSON log line of the relay processes (and their materializers) here, for diagnosis. */
  relayLogFile?: string;
}

export interface ChurnResult {
  devices: number;
  writesAttempted: number;
  writesFailed: number;
  entriesWritten: number;
  /** Written entries the relay does not hold after the quiet period. */
  missingOnRelay: number;
  /** Written entries with no journal record after the quiet period. */
  undecided: number;
  /** Written entries not on the relay or not decided. */
  entriesMissing: number;
  reconnects: number;
  crashes: number;
  /** Wedged handles the devices recovered (safe-change.ts). */
  recoveries: number;
  cuts: Record<CutKind, number>;
  relayRestarts: number;
  decisions: Record<string, number>;
  /** Time from the end of the writes until everything was on the relay and decided. */
  settleMs: number;
  /** What the materializer processes logged (through the relay's output): where the settle time goes. */
  materializer: { started: number; ready: number; batches: number; largestBatch: number; slowestBatchMs: number };
  totalMs: number;
  /** Up to ten distinct failure messages and crash descriptions, for diagnosis. */
  problems: string[];
}

interface RunnerState {
  deviceId: string;
  proc: ChildProcess;
  ready: Promise<void>;
  onlines: number;
  recovered: number;
  attempted: number;
  failed: number;
  ids: string[];
  errors: string[];
  stderr: string[];
  closeRequested: boolean;
  crashed: string | undefined;
  exited: Promise<void>;
  waiters: Array<{ type: RunnerReport["type"]; resolve: () => void }>;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]);
}

function startRunner(cfg: RunnerConfig): RunnerState {
  const proc = spawn(process.execPath, ["--import", "tsx", RUNNER], {
    cwd: repoRoot,
    env: { ...process.env, CHURN_DEVICE_CONFIG: JSON.stringify(cfg) },
    stdio: ["ignore", "pipe", "pipe", "ipc"],
  });
  live.add(proc);
  let readyResolve!: () => void;
  let readyReject!: (err: Error) => void;
  const state: RunnerState = {
    deviceId: cfg.deviceId,
    proc,
    ready: new Promise<void>((resolve, reject) => {
      readyResolve = resolve;
      readyReject = reject;
    }),
    onlines: 0,
    recovered: 0,
    attempted: 0,
    failed: 0,
    ids: [],
    errors: [],
    stderr: [],
    closeRequested: false,
    crashed: undefined,
    exited: Promise.resolve(),
    waiters: [],
  };
  // A rejected `ready` nobody awaits yet must not become an unhandled rejection.
  state.ready.catch(() => undefined);
  const keepTail = (chunk: Buffer): void => {
    state.stderr.push(...chunk.toString("utf8").split("\n").filter((l) => l.trim() !== ""));
    if (state.stderr.length > 20) state.stderr.splice(0, state.stderr.length - 20);
  };
  proc.stderr?.on("data", keepTail);
  proc.stdout?.on("data", keepTail);
  proc.on("message", (msg: unknown) => {
    if (!isRunnerReport(msg)) return;
    switch (msg.type) {
      case "ready":
        readyResolve();
        break;
      case "online":
        state.onlines += 1;
        break;
      case "recovered":
        state.recovered += 1;
        break;
      case "write":
        state.attempted += 1;
        if (msg.ok) state.ids.push(msg.id);
        else {
          state.failed += 1;
          state.errors.push(msg.error);
        }
        break;
      default:
        break;
    }
    for (const w of state.waiters.filter((x) => x.type === msg.type)) {
      state.waiters.splice(state.waiters.indexOf(w), 1);
      w.resolve();
    }
  });
  state.exited = new Promise<void>((resolve) => {
    proc.once("exit", (code, signal) => {
      live.delete(proc);
      if (!state.closeRequested || (code !== 0 && code !== null) || signal !== null) {
        state.crashed = `device ${cfg.deviceId} exited (code ${code}, signal ${signal})${state.closeRequested ? "" : " before it was asked to close"}: ${state.stderr.slice(-5).join(" | ")}`;
      }
      readyReject(new Error(state.crashed ?? `device ${cfg.deviceId} exited`));
      for (const w of state.waiters.splice(0)) w.resolve();
      resolve();
    });
  });
  return state;
}

function command(r: RunnerState, cmd: RunnerCommand): void {
  if (r.proc.connected) r.proc.send(cmd);
}

function waitFor(r: RunnerState, type: RunnerReport["type"]): Promise<void> {
  if (r.proc.exitCode !== null || r.proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => r.waiters.push({ type, resolve }));
}

async function createTeam(url: string, tokens: TokenService, team: string): Promise<CreatedTeam> {
  const res = await fetch(`${url}/api/teams`, {
    method: "POST",
    headers: { authorization: `Bearer ${tokens.issue({ sub: "boss", team, role: "admin" })}`, "content-type": "application/json" },
    body: JSON.stringify({ team }),
  });
  if (res.status !== 201) throw new Error(`creating team ${team}: HTTP ${res.status} ${await res.text()}`);
  return (await res.json()) as CreatedTeam;
}

/** Entry ids the relay holds for the team, read by a fresh client connected straight to it. */
async function relayEntryIds(syncUrl: string, token: string, registryUrl: AutomergeUrl, deadline: number): Promise<Set<string>> {
  const adapter = new ReconnectingClientAdapter({ url: syncUrl, token: () => token, createSocket: nodeRelaySocket, backoff: { baseMs: 100, maxMs: 1000 } });
  const repo = new Repo({ network: [adapter], peerId: `churn-checker-${randomUUID().slice(0, 8)}` as PeerId });
  const ids = new Set<string>();
  try {
    // find() before the relay's answer can report a document unavailable (AUTOMERGE-NOTES.md).
    while (!adapter.online) {
      if (Date.now() > deadline) throw new Error(`checker could not reach the relay: ${adapter.lastReason}`);
      await sleep(100);
    }
    const fetchDoc = async (url: AutomergeUrl): Promise<unknown> => {
      for (;;) {
        const h = await repo.find<unknown>(url, { allowableStates: ["ready", "unavailable", "requesting"] });
        await Promise.race([h.whenReady(["ready"]), sleep(2_000)]);
        if (h.isReady()) return h.doc();
        if (Date.now() > deadline) return undefined;
        adapter.reconnectNow();
        await sleep(500);
      }
    };
    const registry = await fetchDoc(registryUrl);
    for (const url of readSegments(registry).values()) {
      const seg = await fetchDoc(url);
      for (const [id] of segmentEntries(seg)) ids.add(id);
    }
    return ids;
  } finally {
    await repo.shutdown().catch(() => undefined);
  }
}

export async function runChurn(opts: ChurnOptions): Promise<ChurnResult> {
  const log = opts.log ?? (() => undefined);
  const random = opts.random ?? Math.random;
  const startedAt = Date.now();
  const workDir = await mkdtemp(path.join(os.tmpdir(), "churn-"));
  const relayDataDir = path.join(workDir, "relay");
  const runners: RunnerState[] = [];
  const relays: ServiceProcess[] = [];
  let proxy: ChaosProxy | undefined;
  const mongo = new MongoClient(opts.mongoUri);
  const problems = new Set<string>();
  try {
    await mongo.connect();
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const keys = {
      privateKeyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
      publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
    };
    const tokens = createTokenService(keys, { issuer: "ledger-sync", audience: "ledger-sync", ttlSeconds: 6 * 3600 });
    // The relay must come back on the same port after a restart, so it gets an explicit one.
    const relayPort = await freePort();
    const env = {
      PORT: String(relayPort),
      MONGODB_URI: opts.mongoUri,
      MONGODB_DB: opts.dbName,
      JWT_PRIVATE_KEY: keys.privateKeyPem,
      JWT_PUBLIC_KEY: keys.publicKeyPem,
      MATERIALIZER: "process",
    };
    const startRelay = async (): Promise<ServiceProcess> => {
      const svc = await spawnService({ dataDir: relayDataDir, env, timeoutMs: 90_000 });
      relays.push(svc);
      return svc;
    };
    let relay = await startRelay();
    log(`relay up on ${relayPort} (pid ${relay.proc.pid})`);
    const team = `churn${randomUUID().slice(0, 8)}`;
    const created = await createTeam(relay.url, tokens, team);

    proxy = new ChaosProxy(0, relayPort);
    const proxyPort = await proxy.start();
    const serverUrl = `http://127.0.0.1:${proxyPort}`;

    for (let i = 0; i < opts.devices; i++) {
      const deviceId = `till${String(i).padStart(2, "0")}`;
      runners.push(
        startRunner({
          serverUrl,
          token: tokens.issue({ sub: `clerk-${deviceId}`, team, role: "member", device: deviceId }),
          rootUrl: created.rootUrl,
          deviceId,
          dataDir: path.join(workDir, deviceId),
          intervalMs: opts.intervalMs,
        }),
      );
    }
    await withTimeout(Promise.all(runners.map((r) => r.ready)), 180_000, "devices to open");
    log(`${runners.length} devices open after ${Date.now() - startedAt} ms`);

    // ---- writes and chaos ----
    for (const r of runners) command(r, { type: "start-writing" });
    const writeStart = Date.now();
    const writeEnd = writeStart + opts.writeMs;
    const restartAt = Array.from({ length: opts.relayRestarts }, (_, i) => writeStart + (opts.writeMs * (i + 1)) / (opts.relayRestarts + 1));
    const cuts: Record<CutKind, number> = { close: 0, reset: 0 };
    let restarts = 0;
    while (Date.now() < writeEnd) {
      await sleep(Math.min(writeEnd - Date.now(), opts.cutMinMs + random() * (opts.cutMaxMs - opts.cutMinMs)));
      if (Date.now() >= writeEnd) break;
      if (restarts < restartAt.length && Date.now() >= (restartAt[restarts] as number)) {
        await relay.stop("SIGKILL");
        restarts += 1;
        log(`relay SIGKILLed (restart ${restarts}) at +${Date.now() - writeStart} ms`);
        relay = await startRelay();
        log(`relay back (pid ${relay.proc.pid}) at +${Date.now() - writeStart} ms`);
        continue;
      }
      const kind: CutKind = random() < 0.5 ? "close" : "reset";
      if (proxy.cut(kind, random)) cuts[kind] += 1;
    }
    log(`writes done: cuts ${JSON.stringify(cuts)}, restarts ${restarts}`);

    await withTimeout(
      Promise.all(
        runners.map((r) => {
          const stopped = waitFor(r, "stopped-writing");
          command(r, { type: "stop-writing" });
          return stopped;
        }),
      ),
      60_000,
      "devices to stop writing",
    );

    // ---- quiet period ----
    const written = new Set(runners.flatMap((r) => r.ids));
    const journal = mongo.db(opts.dbName).collection<{ team: string; entryId: string; status: string }>("journal");
    const quietEnd = Date.now() + opts.quietMaxMs;
    const quietStart = Date.now();
    let decided = new Map<string, string>();
    for (;;) {
      decided = new Map();
      for await (const rec of journal.find({ team }, { projection: { entryId: 1, status: 1 } })) decided.set(rec.entryId, rec.status);
      const left = [...written].filter((id) => !decided.has(id)).length;
      if (left === 0 || Date.now() > quietEnd) {
        log(`quiet period: ${left} undecided after ${Date.now() - quietStart} ms`);
        break;
      }
      await sleep(1_000);
    }
    const settleMs = Date.now() - quietStart;
    const onRelay = await relayEntryIds(
      `ws://127.0.0.1:${relayPort}/sync`,
      tokens.issue({ sub: "checker", team, role: "member", device: "churn-checker" }),
      created.registryUrl,
      Date.now() + 60_000,
    );

    // ---- close the devices ----
    await Promise.all(
      runners.map(async (r) => {
        r.closeRequested = true;
        command(r, { type: "close" });
        try {
          await withTimeout(r.exited, 30_000, `device ${r.deviceId} to close`);
        } catch (err) {
          problems.add(err instanceof Error ? err.message : String(err));
          r.proc.kill("SIGKILL");
          await r.exited;
        }
      }),
    );

    const mlogs = relays.flatMap((svc) => svc.logs);
    const batches = mlogs.filter((l) => l.msg === "batch decided");
    const materializer = {
      started: mlogs.filter((l) => l.msg === "materializer started").length,
      ready: mlogs.filter((l) => l.msg === "materializer ready").length,
      batches: batches.length,
      largestBatch: Math.max(0, ...batches.map((l) => (typeof l.batch === "number" ? l.batch : 0))),
      slowestBatchMs: Math.max(0, ...batches.map((l) => (typeof l.ms === "number" ? l.ms : 0))),
    };
    const missingOnRelay = [...written].filter((id) => !onRelay.has(id));
    const undecided = [...written].filter((id) => !decided.has(id));
    const decisions: Record<string, number> = {};
    for (const id of written) {
      const s = decided.get(id);
      if (s) decisions[s] = (decisions[s] ?? 0) + 1;
    }
    for (const r of runners) {
      for (const e of r.errors) if (problems.size < 10) problems.add(`${r.deviceId}: ${e}`);
      if (r.crashed && problems.size < 10) problems.add(r.crashed);
    }
    return {
      devices: opts.devices,
      writesAttempted: runners.reduce((n, r) => n + r.attempted, 0),
      writesFailed: runners.reduce((n, r) => n + r.failed, 0),
      entriesWritten: written.size,
      missingOnRelay: missingOnRelay.length,
      undecided: undecided.length,
      entriesMissing: new Set([...missingOnRelay, ...undecided]).size,
      reconnects: runners.reduce((n, r) => n + Math.max(0, r.onlines - 1), 0),
      crashes: runners.filter((r) => r.crashed !== undefined).length,
      recoveries: runners.reduce((n, r) => n + r.recovered, 0),
      cuts,
      relayRestarts: restarts,
      decisions,
      settleMs,
      materializer,
      totalMs: Date.now() - startedAt,
      problems: [...problems],
    };
  } finally {
    for (const r of runners) if (r.proc.exitCode === null && r.proc.signalCode === null) r.proc.kill("SIGKILL");
    await Promise.all(runners.map((r) => r.exited));
    // The materializer is the relay's child and exits when the relay's pipe closes; make sure.
    const materializers = relays.flatMap((s) => s.logs).filter((l) => l.msg === "materializer started" && typeof l.pid === "number").map((l) => l.pid as number);
    for (const s of relays) await s.stop("SIGKILL");
    for (const pid of materializers) {
      // Only a materializer: the pid may belong to another process by now (pids are reused, and a
      // wrong kill once took down the test run's database).
      if (isAlive(pid) && isMaterializer(pid)) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // Gone in between.
        }
      }
    }
    if (opts.relayLogFile) {
      const lines = relays.flatMap((svc, i) => svc.logs.map((l) => JSON.stringify({ relayRun: i, ...l })));
      await writeFile(opts.relayLogFile, `${lines.join("\n")}\n`).catch(() => undefined);
    }
    await proxy?.close();
    await mongo.close().catch(() => undefined);
    await rm(workDir, { recursive: true, force: true }).catch(() => undefined);
  }
}

export function formatChurn(r: ChurnResult): string {
  return [
    `churn: ${r.devices} devices, ${r.cuts.close} closes + ${r.cuts.reset} resets, ${r.relayRestarts} relay SIGKILL restarts, ${Math.round(r.totalMs / 1000)} s`,
    `  writes attempted: ${r.writesAttempted}`,
    `  writes failed:    ${r.writesFailed}`,
    `  entries written:  ${r.entriesWritten}`,
    `  entries missing:  ${r.entriesMissing} (not on relay: ${r.missingOnRelay}, undecided: ${r.undecided})`,
    `  decisions:        ${JSON.stringify(r.decisions)} (settled ${Math.round(r.settleMs / 1000)} s after the writes)`,
    `  materializer:     ${r.materializer.ready} of ${r.materializer.started} starts got ready, ${r.materializer.batches} batches logged (largest ${r.materializer.largestBatch} entries, slowest ${Math.round(r.materializer.slowestBatchMs / 1000)} s)`,
    `  reconnects:       ${r.reconnects}`,
    `  crashes:          ${r.crashes}`,
    `  wedge recoveries: ${r.recoveries}`,
    ...(r.problems.length ? ["  problems:", ...r.problems.map((p) => `    ${p}`)] : []),
  ].join("\n");
}

function isMaterializer(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("materializer/main.ts");
  } catch {
    return false;
  }
}
