/**
 * Messages between the churn harness and its device runners (test/churn/device-runner.ts), over
 * the child's IPC channel. Kept in one module so both ends agree on the shapes.
 */
export interface RunnerConfig {
  /** http:// address the device uses for the relay (the chaos proxy in front of it). */
  serverUrl: string;
  token: string;
  rootUrl: string;
  deviceId: string;
  dataDir: string;
  /** Milliseconds between two sales. */
  intervalMs: number;
}

/** Harness → runner. */
export type RunnerCommand = { type: "start-writing" } | { type: "stop-writing" } | { type: "close" };

/** Runner → harness. */
export type RunnerReport =
  | { type: "ready" }
  | { type: "online" }
  | { type: "offline"; reason: string }
  | { type: "recovered"; documentId: string }
  | { type: "write"; ok: true; id: string }
  | { type: "write"; ok: false; error: string }
  | { type: "stopped-writing"; attempted: number; failed: number; pending: number }
  | { type: "closed"; attempted: number; failed: number; pending: number };

export function isRunnerReport(v: unknown): v is RunnerReport {
  return typeof v === "object" && v !== null && typeof (v as { type?: unknown }).type === "string";
}

export function isRunnerCommand(v: unknown): v is RunnerCommand {
  const t = typeof v === "object" && v !== null ? (v as { type?: unknown }).type : undefined;
  return t === "start-writing" || t === "stop-writing" || t === "close";
}
