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
