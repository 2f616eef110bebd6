/**
 * Workload clients spread over processes of their own (bench/client-worker.ts), so the bench's
 * single event loop never delays what it measures: with 50 clients in one process, a client
 * handled a change late because 49 others were being handled, and that counted as the relay's.
 */
import os from "node:os";
import type { ExchangeConfig, ProbeConfig, WorkerConfig } from "../client-worker.js";
import { spawnTsx, type Child } from "./procs.js";
import { until } from "./progress.js";

/** Processes per workload: one per core beyond the relay's, at least two. */
export const WORKER_PROCESSES = Math.max(2, os.availableParallelism() - 1);

export interface Workers {
  /** Sends a command line to every process. */
  send(cmd: Record<string, unknown>): void;
  /** Each process's "result" line (its fields without `msg`). */
  results(timeoutMs: number): Promise<Array<Record<string, unknown>>>;
  stop(): Promise<void>;
}

/** Splits `clients` round-robin over `processes` (client i to process i mod n). */
export function spread<T>(clients: readonly T[], processes: number): T[][] {
  const out: T[][] = Array.from({ length: Math.min(processes, clients.length) }, () => []);
  clients.forEach((c, i) => out[i % out.length]!.push(c));
  return out;
}

export async function startWorkers(configs: readonly WorkerConfig[], readyTimeoutMs = 180_000): Promise<Workers> {
  const children: Child[] = [];
  try {
    for (const config of configs) {
      children.push(
        await spawnTsx({
          script: "bench/client-worker.ts",
          env: { BENCH_WORKER: JSON.stringify(config) },
          ready: (l) => l.msg === "ready" || l.msg === "failed",
          stdinPipe: true,
          timeoutMs: readyTimeoutMs,
        }),
      );
      const failed = children.at(-1)!.logs.find((l) => l.msg === "failed");
      if (failed) throw new Error(`bench client process: ${String(failed.err)}`);
    }
  } catch (err) {
    await Promise.all(children.map((c) => c.stop(2000)));
    throw err;
  }
  return {
    send(cmd) {
      for (const c of children) c.proc.stdin?.write(`${JSON.stringify(cmd)}\n`);
    },
    async results(timeoutMs) {
      const lineOf = (c: Child): Record<string, unknown> | undefined => c.logs.find((l) => l.msg === "result" || l.msg === "failed");
      await until(() => children.every((c) => lineOf(c) !== undefined), "every bench client process's result", timeoutMs, 50);
      return children.map((c) => {
        const line = lineOf(c)!;
        if (line.msg === "failed") throw new Error(`bench client process: ${String(line.err)}`);
        const { msg: _msg, ...rest } = line;
        return rest;
      });
    },
    async stop() {
      await Promise.all(children.map((c) => c.stop(5000)));
    },
  };
}

export function exchangeConfigs(clients: ReadonlyArray<{ url: string; id: number }>, docUrl: ExchangeConfig["docUrl"], processes = WORKER_PROCESSES): ExchangeConfig[] {
  return spread(clients, processes).map((mine) => ({ role: "exchange", clients: mine, total: clients.length, docUrl }));
}

export function probeConfigs(clients: ReadonlyArray<{ url: string; id: number }>, team: string, everyMs: number, processes = WORKER_PROCESSES): ProbeConfig[] {
  return spread(clients, processes).map((mine) => ({ role: "probe", clients: mine, team, everyMs }));
}
