/**
 * Issue 15: cold start of each process as installed (compiled JavaScript under plain node)
 * beside the same entry point run from TypeScript through tsx, in the same run:
 *  - the service until `/readyz` answers 200 (database already up: MONGODB_URI),
 *  - the materializer until it logs "materializer ready" (service running),
 *  - one offline device command (`status --offline`) from spawn to exit.
 * Goals (2 cores): service ≤ 3 s, materializer ≤ 3 s, a device command ≤ 1 s beyond its network.
 */
import { spawn } from "node:child_process";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import type { Benchmark, BenchContext } from "./lib/context.js";
import { benchDir, startOurs } from "./lib/servers.js";
import { repoRoot, spawnTsx } from "./lib/procs.js";
import { progress, until } from "./lib/progress.js";
import { Collector } from "./lib/report.js";

type Form = "compiled" | "source";
const FORMS: Form[] = ["compiled", "source"];

async function serviceStart(ctx: BenchContext, form: Form): Promise<number> {
  const dataDir = await benchDir("startup-svc");
  const t0 = performance.now();
  const child = await spawnTsx({
    script: "server/main.ts",
    form,
    env: { PORT: "0", DATA_DIR: dataDir, MONGODB_URI: ctx.db.handle.uri, MONGODB_DB: ctx.db.fresh("startup").name, MATERIALIZER: "off", LOG_LEVEL: "info" },
    ready: (l) => l.msg === "listening" && typeof l.port === "number",
  });
  try {
    const url = `http://127.0.0.1:${Number(child.ready.port)}/readyz`;
    await until(async () => (await fetch(url).catch(() => undefined))?.status === 200, "/readyz 200", 60_000);
    return (performance.now() - t0) / 1000;
  } finally {
    await child.stop();
  }
}

async function materializerStart(relay: Awaited<ReturnType<typeof startOurs>>, mongoUri: string, dbName: string, form: Form): Promise<number> {
  const t0 = performance.now();
  const child = await spawnTsx({
    script: "server/materializer/main.ts",
    form,
    env: { RELAY_URL: relay.syncUrl, MONGODB_URI: mongoUri, MONGODB_DB: dbName, DATA_DIR: relay.dataDir, LOG_LEVEL: "info" },
    ready: (l) => l.msg === "materializer ready",
    stdinPipe: true,
  });
  const seconds = (performance.now() - t0) / 1000;
  await child.stop();
  return seconds;
}

function deviceCommand(args: string[], form: Form): Promise<number> {
  const script = form === "compiled" ? [path.join(repoRoot, "dist/client/cli.js")] : ["--import", "tsx", path.join(repoRoot, "client/cli.ts")];
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [...script, ...args], { cwd: repoRoot, stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    proc.stderr.on("data", (c: Buffer) => (err += c.toString("utf8")));
    proc.once("exit", (code) => (code === 0 ? resolve((performance.now() - t0) / 1000) : reject(new Error(`device ${args[0]}: exit ${code}: ${err}`))));
  });
}

export const startupBench: Benchmark = {
  name: "startup",
  issue: 15,
  async run(ctx) {
    const col = new Collector("startup");
    for (const [metric, note] of [
      ["service start until /readyz answers", "database already running"],
      ["materializer start until ready", "service running"],
      ["device command (status --offline), spawn to exit", "enrolled device, no network"],
    ] as const) {
      col.define(metric, "s", "lower", { baselineName: "same entry point through tsx", note });
    }
    const dbName = ctx.db.fresh("startup-team").name;
    const relay = await startOurs({ mongoUri: ctx.db.handle.uri, dbName, materializer: false });
    try {
      const team = await relay.createTeam("startup");
      const deviceDir = await benchDir("startup-device");
      // Enrolled as an admin would (the API's answer), so enroll can certify the device's key.
      const service = relay.token({ sub: "bench", team: "*", role: "service" });
      const api = (route: string, body: unknown) =>
        fetch(`${relay.httpUrl}/api${route}`, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${service}` }, body: JSON.stringify(body) });
      const user = await api(`/teams/${team.team}/users`, { username: "clerk", password: "startup-bench-1", role: "member" });
      if (user.status !== 201) throw new Error(`create user: ${user.status} ${await user.text()}`);
      const enrolled = await api(`/teams/${team.team}/devices`, { device: "till-1", user: "clerk" });
      if (enrolled.status !== 201) throw new Error(`enroll device: ${enrolled.status} ${await enrolled.text()}`);
      const enrollment = path.join(deviceDir, "enrollment.json");
      await writeFile(enrollment, await enrolled.text());
      await deviceCommand(["enroll", "--data", deviceDir, "--server", relay.syncUrl, "--enrollment", enrollment], "compiled");
      for (let rep = 0; rep < ctx.reps; rep++) {
        // Alternate which form goes first, so neither always gets a warmer disk cache.
        const order = rep % 2 === 0 ? FORMS : [...FORMS].reverse();
        for (const form of order) {
          const put = (metric: string, seconds: number): void => (form === "compiled" ? col.ours(metric, seconds) : col.baseline(metric, seconds));
          put("service start until /readyz answers", await serviceStart(ctx, form));
          put("materializer start until ready", await materializerStart(relay, ctx.db.handle.uri, dbName, form));
          put("device command (status --offline), spawn to exit", await deviceCommand(["status", "--data", deviceDir, "--offline"], form));
          progress(`startup rep ${rep + 1}: ${form} measured`);
        }
      }
    } finally {
      await relay.stop();
    }
    return col.rows();
  },
};
