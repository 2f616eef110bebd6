/** Structured JSON logs (pino). One root logger; modules take a child with their own name. */
import { pino, type Logger } from "pino";

export type { Logger };

export function createLogger(level: string = process.env.LOG_LEVEL ?? "info"): Logger {
  return pino({
    level,
    base: { service: "ledger-sync" },
    timestamp: pino.stdTimeFunctions.isoTime,
    // Tokens and passwords must never reach a log line, whatever object a caller passes.
    redact: { paths: ["token", "*.token", "password", "*.password", "authorization", "*.authorization"], remove: true },
  });
}
