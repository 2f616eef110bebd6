/**
 * The materializer as its own process (`server/materializer/main.ts` under tsx) against a test
 * relay: what the crash tests kill with SIGKILL. Tied to the test process through its stdin pipe.
 */
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { createInterface } from "node:readline";
import type { TestRelay } from "../relay/harness.js";

const repoRoot = path.resolve(import.meta.dirname, "../../..");

export interface MaterializerProcess {
  proc: ChildProcess;
  /** Every log line so far (JSON text). */
  lines: string[];
  /** Resolves once a log line contains `text` (already seen or to come). */
  waitFor(text: string, ms: number): Promise<void>;
  /** Sends the signal and resolves when the process has exited. */
  stop(signal: NodeJS.Signals): Promise<void>;
}

export interface SpawnOptions {
  /** Print its log lines. */
  verbose?: boolean;
  /** Called with each log line as it comes. */
  onLine?: (line: string) => void;
  /** How long it may take to log `materializer ready` (default 30 s). */
  readyMs?: number;
}

/** Starts one and resolves when it logs `materializer ready`; `env` adds to (or overrides) the defaults. */
export function spawnMaterializer(relay: TestRelay, env: Record<string, string>, opts: SpawnOptions = {}): Promise<MaterializerProcess> {
  const proc = spawn(process.execPath, ["--import", "tsx", "server/materializer/main.ts"], {
    cwd: repoRoot,
    env: {
      ...process.env,
      RELAY_URL: relay.service.syncUrl,
      MONGODB_URI: relay.db.uri,
      MONGODB_DB: relay.db.dbName,
      DATA_DIR: relay.dataDir,
      LOG_LEVEL: "info",
      // Our stdin pipe ties it to this process: it exits if the test process dies.
      MATERIALIZER_SUPERVISED: "1",
      ...env,
    },
    stdio: ["pipe", "pipe", "pipe"],
  });
  const lines: string[] = [];
  const waiters = new Set<{ text: string; resolve: () => void }>();
  for (const s of [proc.stdout, proc.stderr]) {
    createInterface({ input: s! }).on("line", (line) => {
      if (opts.verbose) console.log(line.slice(0, 300));
      lines.push(line);
      opts.onLine?.(line);
      for (const w of waiters) {
        if (line.includes(w.text)) {
          waiters.delete(w);
          w.resolve();
        }
      }
    });
  }
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  const handle: MaterializerProcess = {
    proc,
    lines,
    waitFor(text, ms) {
      if (lines.some((l) => l.includes(text))) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`materializer: no line with ${JSON.stringify(text)} within ${ms} ms:\n${lines.slice(-20).join("\n")}`)), ms);
        const waiter = { text, resolve: () => (clearTimeout(timer), resolve()) };
        waiters.add(waiter);
        void exited.then(() => {
          if (!waiters.delete(waiter)) return;
          clearTimeout(timer);
          reject(new Error(`materializer exited (${proc.exitCode ?? proc.signalCode}) before ${JSON.stringify(text)}:\n${lines.slice(-20).join("\n")}`));
        });
      });
    },
    async stop(signal) {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      await exited;
    },
  };
  return handle.waitFor('"materializer ready"', opts.readyMs ?? 30_000).then(
    () => handle,
    async (err: unknown) => {
      await handle.stop("SIGKILL");
      throw err;
    },
  );
}
