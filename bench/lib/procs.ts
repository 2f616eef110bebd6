/**
 * Child processes of the bench (relays, the service, the materializer): started with tsx, ready
 * when they log a JSON line, and killed when the bench exits by any path, so a failed run leaves
 * nothing behind.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import { entryArgs, packageRoot } from "../../server/entry-point.js";
import { progress } from "./progress.js";

export const repoRoot = packageRoot;

const live = new Set<ChildProcess>();
let hooked = false;

function killAll(): void {
  for (const p of live) p.kill("SIGKILL");
  live.clear();
}

/** Kills every child on exit, on Ctrl-C and on an uncaught error (once per process). */
export function killChildrenOnExit(): void {
  if (hooked) return;
  hooked = true;
  process.once("exit", killAll);
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(sig, () => {
      killAll();
      process.exit(130);
    });
  }
}

export interface Child {
  proc: ChildProcess;
  pid: number;
  /** The JSON line that said it was ready. */
  ready: Record<string, unknown>;
  /** Every JSON line seen so far. */
  logs: Record<string, unknown>[];
  /** SIGTERM, then SIGKILL after `graceMs`; resolves on exit. */
  stop(graceMs?: number): Promise<void>;
  exited: Promise<number | null>;
}

export interface SpawnOptions {
  script: string;
  args?: string[];
  env: Record<string, string | undefined>;
  /** True for the log line that means ready. */
  ready(line: Record<string, unknown>): boolean;
  timeoutMs?: number;
  /** Keep stdin as a pipe (the child may watch it to notice our death). */
  stdinPipe?: boolean;
  /** Force compiled JavaScript (`dist/`) or TypeScript through tsx; default: as the bench runs. */
  form?: "compiled" | "source";
}

function scriptArgs(opts: SpawnOptions): string[] {
  if (opts.form === "compiled") return [path.join(repoRoot, "dist", opts.script.replace(/\.ts$/, ".js"))];
  if (opts.form === "source") return ["--import", "tsx", path.join(repoRoot, opts.script)];
  return entryArgs(import.meta.url, path.join("../..", opts.script));
}

export function spawnTsx(opts: SpawnOptions): Promise<Child> {
  killChildrenOnExit();
  // BENCH_CPU_PROFILE=<dir>: every child writes a V8 CPU profile there when it exits, to see
  // where a figure's time goes (open it in Chrome DevTools).
  const profile = process.env.BENCH_CPU_PROFILE ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_CPU_PROFILE}`] : [];
  const proc = spawn(process.execPath, [...profile, ...scriptArgs(opts), ...(opts.args ?? [])], {
    cwd: repoRoot,
    env: { ...process.env, ...opts.env },
    stdio: [opts.stdinPipe ? "pipe" : "ignore", "pipe", "pipe"],
  });
  live.add(proc);
  let stopping = false;
  const exited = new Promise<number | null>((resolve) =>
    proc.once("exit", (code, signal) => {
      live.delete(proc);
      // A child that dies on its own mid-run is why a benchmark then waits in vain: say so.
      if (!stopping) progress(`${opts.script} (pid ${proc.pid}) exited on its own: code ${code}, signal ${signal}; its last lines:\n${tail.join("\n")}`);
      resolve(code);
    }),
  );
  const logs: Record<string, unknown>[] = [];
  const tail: string[] = [];
  return new Promise((resolve, reject) => {
    const timeoutMs = opts.timeoutMs ?? 90_000;
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      reject(new Error(`${opts.script} not ready within ${timeoutMs} ms:\n${tail.join("\n")}`));
    }, timeoutMs);
    const onLine = (line: string): void => {
      tail.push(line);
      if (tail.length > 20) tail.shift();
      let parsed: Record<string, unknown>;
      try {
        parsed = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      // The most recent lines: what explains a failure is near its end.
      logs.push(parsed);
      if (logs.length > 20_000) logs.shift();
      if (opts.ready(parsed)) {
        clearTimeout(timer);
        resolve({
          proc,
          pid: proc.pid ?? -1,
          ready: parsed,
          logs,
          exited,
          async stop(graceMs = 15_000) {
            if (proc.exitCode !== null || proc.signalCode !== null) return;
            stopping = true;
            proc.kill("SIGTERM");
            const t = setTimeout(() => proc.kill("SIGKILL"), graceMs);
            await exited;
            clearTimeout(t);
          },
        });
      }
    };
    if (proc.stdout) createInterface({ input: proc.stdout }).on("line", onLine);
    if (proc.stderr) createInterface({ input: proc.stderr }).on("line", onLine);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${opts.script} exited with code ${code} before it was ready:\n${tail.join("\n")}`));
    });
  });
}

/** Resident memory of a process in MB (Linux /proc); NaN when it cannot be read. */
export function rssMb(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const m = /VmRSS:\s+(\d+) kB/.exec(status);
    return m ? Number(m[1]) / 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}
