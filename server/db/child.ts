/**
 * Starts a database server as a child process that cannot outlive us: its standard input is a
 * pipe from this process, and the child (or, for mongod, a small shell guard around it) exits
 * when that pipe closes, which the kernel does even when this process dies by SIGKILL.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";

export interface GuardedChild {
  pid: number;
  /** Resolves when the process has exited, for whatever reason (its supervisor restarts it). */
  exited: Promise<void>;
  stop(): Promise<void>;
  /** SIGKILL, for a process that stopped answering. */
  kill(): void;
}

export interface GuardedChildOptions {
  name: string;
  command: string;
  args: string[];
  /** Called with each output line until it returns true: the server accepts connections. */
  ready: (line: string) => boolean;
  timeoutMs: number;
}

/** Runs "$@" and ends it when our stdin reaches EOF or it exits by itself, whichever is first. */
const GUARD = `"$@" <&- & child=$!
exec 3<&0
( cat <&3 >/dev/null; kill -TERM "$child" 2>/dev/null ) &
wait "$child"`;

export function startGuardedChild(opts: GuardedChildOptions): Promise<GuardedChild> {
  const selfGuarding = opts.name === "ferretdb";
  const proc: ChildProcess = selfGuarding
    ? spawn(opts.command, opts.args, { stdio: ["pipe", "pipe", "pipe"] })
    : spawn("bash", ["-c", GUARD, "guard", opts.command, ...opts.args], { stdio: ["pipe", "pipe", "pipe"] });

  const tail: string[] = [];
  let exited = false;
  const exitPromise = new Promise<void>((resolve) => proc.once("exit", () => { exited = true; resolve(); }));

  const stop = async (): Promise<void> => {
    if (exited) return;
    proc.stdin?.end();
    const killTimer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
    await exitPromise;
    clearTimeout(killTimer);
  };

  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (why: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      void stop();
      reject(new Error(`${opts.name} (${opts.command}) ${why}; last output:\n${tail.join("\n")}`));
    };
    const timer = setTimeout(() => fail(`not ready within ${opts.timeoutMs} ms`), opts.timeoutMs);
    const onLine = (line: string): void => {
      tail.push(line);
      if (tail.length > 20) tail.shift();
      if (!settled && opts.ready(line)) {
        settled = true;
        clearTimeout(timer);
        resolve({ pid: proc.pid ?? -1, exited: exitPromise, stop, kill: () => void proc.kill("SIGKILL") });
      }
    };
    for (const stream of [proc.stdout, proc.stderr]) {
      if (stream) createInterface({ input: stream }).on("line", onLine);
    }
    proc.once("error", (err) => fail(`could not start: ${err.message}`));
    proc.once("exit", (code, signal) => fail(`exited early (code ${code}, signal ${signal})`));
  });
}
