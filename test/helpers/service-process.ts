/**
 * Runs `server/main.ts` as a real child process, for tests where a crash, a restart or the
 * process boundary is the point. Every process started here is killed when the test process
 * exits, so a failed test leaves nothing behind.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { createTokenService, type TokenService } from "../../server/auth/tokens.js";
import type { CreatedTeam } from "../../server/relay/teams.js";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const live = new Set<ChildProcess>();
process.once("exit", () => {
  for (const p of live) p.kill("SIGKILL");
});

export interface ServiceProcess {
  proc: ChildProcess;
  port: number;
  url: string;
  /** Every JSON log line seen so far. */
  logs: Record<string, unknown>[];
  /** Sends a signal and waits for exit; returns the exit code (null when killed by a signal). */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface SpawnOptions {
  dataDir: string;
  env?: Record<string, string | undefined>;
  /** Script to run instead of server/main.ts (relative to the repo root). */
  script?: string;
  readyMessage?: string;
  timeoutMs?: number;
}

export function spawnService(opts: SpawnOptions): Promise<ServiceProcess> {
  const script = path.join(repoRoot, opts.script ?? "server/main.ts");
  const proc = spawn(process.execPath, ["--import", "tsx", script], {
    cwd: repoRoot,
    env: { ...process.env, PORT: "0", LOG_LEVEL: "info", DATA_DIR: opts.dataDir, ...opts.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  live.add(proc);
  const exited = new Promise<number | null>((resolve) =>
    proc.once("exit", (code) => {
      live.delete(proc);
      resolve(code);
    }),
  );
  const logs: Record<string, unknown>[] = [];
  const tail: string[] = [];
  const readyMessage = opts.readyMessage ?? "listening";

  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      reject(new Error(`service not ready within ${opts.timeoutMs ?? 60_000} ms:\n${tail.join("\n")}`));
    }, opts.timeoutMs ?? 60_000);
    const onLine = (line: string): void => {
      tail.push(line);
      if (tail.length > 30) tail.shift();
      let parsed: Record<string, unknown>;
      try {
        parsed = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      logs.push(parsed);
      if (parsed.msg === readyMessage && typeof parsed.port === "number") {
        clearTimeout(timer);
        const port = parsed.port;
        resolve({
          proc,
          port,
          url: `http://127.0.0.1:${port}`,
          logs,
          stop: async (signal = "SIGTERM") => {
            if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
            return exited;
          },
        });
      }
    };
    if (proc.stdout) createInterface({ input: proc.stdout }).on("line", onLine);
    if (proc.stderr) createInterface({ input: proc.stderr }).on("line", onLine);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`service exited with code ${code} before it was ready:\n${tail.join("\n")}`));
    });
  });
}

/** True while a process with this pid exists. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Creates a team through a running service's API, as an admin would; throws with the answer otherwise. */
export async function createTeamVia(url: string, token: string, team: string): Promise<CreatedTeam> {
  const res = await fetch(`${url}/api/teams`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ team }),
  });
  if (res.status !== 201) throw new Error(`create team ${team}: ${res.status} ${await res.text()}`);
  return (await res.json()) as CreatedTeam;
}

/**
 * A key pair the test and its service processes share through `JWT_PRIVATE_KEY`/`JWT_PUBLIC_KEY`
 * (as the relays of one deployment do), and a token service that signs with it.
 */
export function sharedKeys(): { tokens: TokenService; env: { JWT_PRIVATE_KEY: string; JWT_PUBLIC_KEY: string } } {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const keys = {
    privateKeyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
  };
  const tokens = createTokenService(keys, { issuer: "ledger-sync", audience: "ledger-sync", ttlSeconds: 3600 });
  return { tokens, env: { JWT_PRIVATE_KEY: keys.privateKeyPem, JWT_PUBLIC_KEY: keys.publicKeyPem } };
}
