/**
 * Watches the database the service uses: a ping every few seconds with a deadline, and, for the
 * embedded server this process started, its process exit. A server that died or stopped answering
 * is restarted on the same port (the drivers of the service and of the materializer reconnect by
 * themselves); an external one is reported down until it answers again. The state is what
 * `/healthz`, `/readyz` and the metrics report.
 */
import type { Db } from "mongodb";
import { Counter, Gauge, type Registry } from "prom-client";
import type { Logger } from "../log.js";
import type { DatabaseHandle } from "./resolve.js";

export type DatabaseStatus = "up" | "down" | "restarting";

export interface DatabaseHealth {
  status: DatabaseStatus;
  /** Restarts of the embedded server by this process. */
  restarts: number;
  /** Why it is not up, when it is not. */
  reason?: string;
  since: string;
}

export interface DatabaseWatchdog {
  health(): DatabaseHealth;
  /** Pings with the watchdog's deadline: a hung server must not hang the caller. */
  ping(): Promise<void>;
  registerMetrics(registry: Registry): void;
  stop(): void;
}

export interface WatchdogOptions {
  database: DatabaseHandle;
  db: Db;
  logger: Logger;
  intervalMs?: number;
  /** A ping slower than this counts as failed. */
  timeoutMs?: number;
  /** Consecutive failed pings before an embedded server counts as hung and is restarted. */
  failuresBeforeRestart?: number;
}

export function watchDatabase(opts: WatchdogOptions): DatabaseWatchdog {
  const log = opts.logger.child({ module: "db-watchdog" });
  const timeoutMs = opts.timeoutMs ?? 3000;
  const failuresBeforeRestart = opts.failuresBeforeRestart ?? 3;
  let state: DatabaseHealth = { status: "up", restarts: 0, since: new Date().toISOString() };
  let failures = 0;
  let stopped = false;
  let restarting: Promise<void> | null = null;
  let up: Gauge | undefined;
  let restartsMetric: Counter | undefined;

  const set = (status: DatabaseStatus, reason?: string): void => {
    if (state.status !== status) {
      state = { status, restarts: state.restarts, since: new Date().toISOString(), ...(reason ? { reason } : {}) };
      if (status === "up") log.info({ restarts: state.restarts }, "database answers again");
      else log.warn({ status, reason }, "database not available");
    }
    up?.set(status === "up" ? 1 : 0);
  };

  const ping = async (): Promise<void> => {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        opts.db.command({ ping: 1 }),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer to ping within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  };

  const restart = (reason: string): Promise<void> => {
    const embedded = opts.database.embedded;
    if (!embedded || stopped) return Promise.resolve();
    restarting ??= (async () => {
      set("restarting", reason);
      for (let delay = 500; !stopped; delay = Math.min(delay * 2, 10_000)) {
        try {
          await embedded.restart();
          state.restarts += 1;
          restartsMetric?.inc();
          watchExit();
          failures = 0;
          set("up");
          return;
        } catch (err) {
          log.error({ err: err instanceof Error ? err.message : String(err), retryInMs: delay }, "database restart failed");
          await new Promise((r) => setTimeout(r, delay));
        }
      }
    })().finally(() => (restarting = null));
    return restarting;
  };

  const watchExit = (): void => {
    const embedded = opts.database.embedded;
    if (!embedded) return;
    const exited = embedded.exited();
    void exited.then(() => {
      // A restart under way ended this process itself.
      if (stopped || restarting) return;
      void restart("database process exited");
    });
  };
  watchExit();

  const timer = setInterval(() => {
    if (restarting || stopped) return;
    ping().then(
      () => {
        failures = 0;
        set("up");
      },
      (err: unknown) => {
        failures += 1;
        const reason = err instanceof Error ? err.message : String(err);
        if (opts.database.embedded && failures >= failuresBeforeRestart) void restart(`hung: ${reason}`);
        else set("down", reason);
      },
    );
  }, opts.intervalMs ?? 2000);
  timer.unref();

  return {
    health: () => ({ ...state }),
    ping,
    registerMetrics(registry) {
      up = new Gauge({ name: "database_up", help: "1 while the database answers pings", registers: [registry] });
      up.set(state.status === "up" ? 1 : 0);
      restartsMetric = new Counter({ name: "database_restarts_total", help: "Restarts of the embedded database by the service", registers: [registry] });
    },
    stop() {
      stopped = true;
      clearInterval(timer);
    },
  };
}
