/** Runs the command-line device (client/cli.ts) as a real child process. */
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const live = new Set<ChildProcess>();
process.once("exit", () => {
  for (const p of live) p.kill("SIGKILL");
});

export interface CliResult {
  code: number | null;
  lines: Record<string, unknown>[];
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], timeoutMs = 120_000): Promise<CliResult> {
  const proc = spawn(process.execPath, ["--import", "tsx", path.join(repoRoot, "client/cli.ts"), ...args], {
    cwd: repoRoot,
    stdio: ["ignore", "pipe", "pipe"],
  });
  live.add(proc);
  let stdout = "";
  let stderr = "";
  proc.stdout?.on("data", (c: Buffer) => (stdout += c.toString("utf8")));
  proc.stderr?.on("data", (c: Buffer) => (stderr += c.toString("utf8")));
  const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
  return new Promise((resolve) => {
    proc.once("exit", (code) => {
      clearTimeout(timer);
      live.delete(proc);
      const lines = stdout
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      resolve({ code, lines, stdout, stderr });
    });
  });
}

export interface RunningCli {
  /** JSON lines printed so far. */
  lines: Record<string, unknown>[];
  waitForLine(pred: (l: Record<string, unknown>) => boolean, ms?: number): Promise<Record<string, unknown>>;
  exited: Promise<CliResult>;
  kill(): void;
}

/** Starts the command-line device and reads its JSON lines as they come (for long-running commands). */
export function startCli(args: string[], timeoutMs = 120_000): RunningCli {
  const proc = spawn(process.execPath, ["--import", "tsx", path.join(repoRoot, "client/cli.ts"), ...args], {
    cwd: repoRoot,
    stdio: ["ignore", "pipe", "pipe"],
  });
  live.add(proc);
  const lines: Record<string, unknown>[] = [];
  let partial = "";
  let stdout = "";
  let stderr = "";
  proc.stdout?.on("data", (c: Buffer) => {
    stdout += c.toString("utf8");
    partial += c.toString("utf8");
    const parts = partial.split("\n");
    partial = parts.pop() ?? "";
    for (const l of parts) if (l.startsWith("{")) lines.push(JSON.parse(l) as Record<string, unknown>);
  });
  proc.stderr?.on("data", (c: Buffer) => (stderr += c.toString("utf8")));
  const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
  const exited = new Promise<CliResult>((resolve) => {
    proc.once("exit", (code) => {
      clearTimeout(timer);
      live.delete(proc);
      resolve({ code, lines, stdout, stderr });
    });
  });
  let done = false;
  void exited.then(() => (done = true));
  return {
    lines,
    exited,
    kill: () => void proc.kill("SIGTERM"),
    async waitForLine(pred, ms = 60_000) {
      const until = Date.now() + ms;
      for (;;) {
        const hit = lines.find(pred);
        if (hit) return hit;
        if (done || Date.now() > until) throw new Error(`no matching line; stdout ${JSON.stringify(lines)}; stderr ${stderr.slice(0, 2000)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
  };
}
