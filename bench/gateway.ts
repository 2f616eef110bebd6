/**
 * Gateway vs CRDT path (issue 8). `POST /api/sync` (issue 7) is being built in server/http; until
 * the route exists this benchmark reports nothing rather than a made-up figure, and the runner
 * lists it as TODO.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import type { Benchmark } from "./lib/context.js";
import { repoRoot } from "./lib/procs.js";
import { progress } from "./lib/progress.js";

/** True when some module under server/http declares a `/sync` route. */
export function gatewayExists(): boolean {
  const dir = path.join(repoRoot, "server", "http");
  if (!existsSync(dir)) return false;
  return readdirSync(dir, { recursive: true })
    .map(String)
    .filter((f) => f.endsWith(".ts"))
    .some((f) => /["'`]\/sync["'`]/.test(readFileSync(path.join(dir, f), "utf8")));
}

export const gatewayBench: Benchmark = {
  name: "gateway",
  issue: 8,
  async run() {
    progress(gatewayExists()
      ? "gateway: a /sync route exists in server/http but the gateway benchmark is not written yet — TODO, not measured"
      : "gateway: POST /api/sync not found in server/http — TODO, not measured");
    return [];
  },
};
