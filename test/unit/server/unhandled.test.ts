/**
 * The relay process must outlive automerge-repo's unhandled sync-wait timeout, and still end on
 * any other unhandled rejection: each case runs in a real child process.
 */
import { spawnSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

function run(rejection: string): { status: number | null; stdout: string } {
  const code = `
    import { createLogger } from "./server/log.ts";
    import { exitOnUnhandledExceptSyncTimeouts } from "./server/unhandled.ts";
    exitOnUnhandledExceptSyncTimeouts(createLogger("info"));
    class TimeoutError extends Error { constructor(m) { super(m); this.name = "TimeoutError"; } }
    void Promise.reject(${rejection});
    setTimeout(() => { console.log(JSON.stringify({ msg: "still running" })); process.exit(0); }, 300);
  `;
  const r = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], { cwd: root, encoding: "utf8", timeout: 30_000 });
  return { status: r.status, stdout: r.stdout };
}

describe("unhandled rejections in the server processes", () => {
  it("logs automerge-repo's sync-wait timeout and keeps running", () => {
    const r = run(`new TimeoutError("withTimeout: timed out after 60000ms")`);
    expect(r.stdout).toContain("automerge-repo sync wait timed out");
    expect(r.stdout).toContain("still running");
    expect(r.status).toBe(0);
  });

  it("ends the process on any other unhandled rejection, with the error in the log", () => {
    const r = run(`new Error("disk on fire")`);
    expect(r.stdout).toContain("unhandled rejection");
    expect(r.stdout).toContain("disk on fire");
    expect(r.stdout).not.toContain("still running");
    expect(r.status).toBe(1);
  });
});
