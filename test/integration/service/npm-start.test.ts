/**
 * `npm start` as a process manager or a container runtime runs it: the compiled service under
 * npm, on the embedded default. A signal to npm itself (what `kill <pid of npm start>` sends)
 * must stop the whole tree, and a SIGKILL of npm must not leave the service running orphaned.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isAlive } from "../../helpers/service-process.js";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const dirs: string[] = [];
const started: ChildProcess[] = [];

beforeAll(() => {
  // `npm install` builds dist/; from a source checkout under test, make sure it is current.
  execFileSync(process.execPath, [path.join(repoRoot, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.build.json"], { cwd: repoRoot, stdio: "inherit" });
}, 120_000);

afterAll(async () => {
  for (const p of started) if (p.pid && isAlive(p.pid)) p.kill("SIGKILL");
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** Every process below `pid`, however deep. */
function descendants(pid: number): number[] {
  const rows = execFileSync("ps", ["-eo", "pid=,ppid="], { encoding: "utf8" })
    .trim()
    .split("\n")
    .map((l) => l.trim().split(/\s+/).map(Number) as [number, number]);
  const out: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const parent = queue.shift()!;
    for (const [child, ppid] of rows) if (ppid === parent) (out.push(child), queue.push(child));
  }
  return out;
}

async function npmStart(): Promise<{ npm: ChildProcess; logs: Record<string, unknown>[]; tree: number[] }> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), "ledger-sync-npm-start-"));
  dirs.push(dataDir);
  const npm = spawn("npm", ["start", "--silent"], {
    cwd: repoRoot,
    env: { ...process.env, MONGODB_URI: "", PORT: "0", DATA_DIR: dataDir, LOG_LEVEL: "info" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  started.push(npm);
  const logs: Record<string, unknown>[] = [];
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("npm start: no 'materializer ready' within 60 s")), 60_000);
    const onLine = (line: string): void => {
      try {
        const parsed = JSON.parse(line) as Record<string, unknown>;
        logs.push(parsed);
        if (parsed.msg === "materializer ready") (clearTimeout(timer), resolve());
      } catch {
        // npm's own lines
      }
    };
    createInterface({ input: npm.stdout! }).on("line", onLine);
    createInterface({ input: npm.stderr! }).on("line", onLine);
    npm.once("exit", (code) => reject(new Error(`npm start exited early with ${code}`)));
  });
  const tree = descendants(npm.pid!);
  return { npm, logs, tree };
}

async function allGone(pids: number[], withinMs: number): Promise<number[]> {
  const deadline = Date.now() + withinMs;
  let alive = pids.filter(isAlive);
  while (alive.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
    alive = alive.filter(isAlive);
  }
  return alive;
}

describe("npm start under a process manager", () => {
  it("SIGTERM to npm stops the service, the materializer and the database, cleanly", async () => {
    const { npm, logs, tree } = await npmStart();
    // the service, its database and the materializer at least
    expect(tree.length).toBeGreaterThanOrEqual(3);
    npm.kill("SIGTERM");
    expect(await allGone([npm.pid!, ...tree], 30_000)).toEqual([]);
    expect(logs.some((l) => l.msg === "stopped")).toBe(true);
  });

  it("SIGKILL to npm leaves no process of the service running", async () => {
    const { npm, tree } = await npmStart();
    npm.kill("SIGKILL");
    expect(await allGone(tree, 30_000)).toEqual([]);
  });
});
