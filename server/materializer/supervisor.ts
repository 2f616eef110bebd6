/**
 * Runs the materializer as a child process of the service and restarts it when it exits, with a
 * growing delay so a materializer that cannot start does not spin. The child's standard input is
 * a pipe from us: it exits when that closes, so it never outlives the service, even a killed one.
 */
import { spawn, type ChildProcess } from "node:child_process";
import os from "node:os";
import { createInterface } from "node:readline";
import { entryArgs } from "../entry-point.js";
import type { Logger } from "../log.js";

const ENTRY = entryArgs(import.meta.url, "main.ts");

export interface SupervisorOptions {
  env: Record<string, string>;
  logger: Logger;
}

export interface Supervisor {
  /** Pid of the running child, if any. */
  pid(): number | undefined;
  restarts(): number;
  stop(): Promise<void>;
}

export function superviseMaterializer(opts: SupervisorOptions): Supervisor {
  const log = opts.logger.child({ module: "supervisor" });
  let child: ChildProcess | undefined;
  let stopping = false;
  let restarts = 0;
  let delay = 500;
  let timer: NodeJS.Timeout | undefined;

  const start = (): void => {
    const started = Date.now();
    const proc = spawn(process.execPath, ENTRY, {
      // One name for every restart of this child, so a restarted materializer takes its team
      // leases back at once instead of waiting for them to expire (one service per data folder).
      env: { MATERIALIZER_INSTANCE: `${os.hostname()}:${opts.env.DATA_DIR ?? "service"}`, ...process.env, ...opts.env, MATERIALIZER_SUPERVISED: "1" },
      stdio: ["pipe", "pipe", "pipe"],
    });
    child = proc;
    // Its log lines are already JSON: pass them through as they are.
    for (const stream of [proc.stdout, proc.stderr]) {
      if (stream) createInterface({ input: stream }).on("line", (line) => process.stdout.write(`${line}\n`));
    }
    proc.once("error", (err) => log.error({ err: err.message }, "materializer could not start"));
    proc.once("exit", (code, signal) => {
      child = undefined;
      if (stopping) return;
      // A child that ran for a while is restarted quickly; one that keeps failing, ever slower.
      delay = Date.now() - started > 30_000 ? 500 : Math.min(delay * 2, 30_000);
      restarts += 1;
      log.warn({ code, signal, restartInMs: delay }, "materializer exited; restarting");
      timer = setTimeout(start, delay);
    });
    log.info({ pid: proc.pid }, "materializer started");
  };
  start();

  return {
    pid: () => child?.pid,
    restarts: () => restarts,
    async stop() {
      stopping = true;
      if (timer) clearTimeout(timer);
      const proc = child;
      if (!proc) return;
      const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
      proc.kill("SIGTERM");
      const kill = setTimeout(() => proc.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(kill);
    },
  };
}
