/**
 * SIGKILL during heavy writes, many times: what the storage holds afterwards is whole. A child
 * process writes documents through the relay's storage module as fast as it can (incrementals
 * and compactions, snapshots of hundreds of KB) and is killed at a random moment, 12 times; each
 * run first loads what the killed one left. Then every chunk file is checked and every document
 * loaded: none is empty, truncated or missing entries it held before.
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm, stat, readFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import * as A from "@automerge/automerge";
import { afterAll, describe, expect, it } from "vitest";
import { chunkProblem } from "../../../server/relay/chunk-check.js";
import { createFileStorage } from "../../../server/relay/storage.js";
import { filesUnder } from "../../helpers/files.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, "../../..");
const DOCS = 3;
const ENTRY_BYTES = 4096;
const KILLS = Number(process.env.CRASH_TEST_KILLS ?? 12);
const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** Runs the writer until it is writing, lets it write a random while, kills it; its "loaded" counts. */
async function runAndKill(dataDir: string, writeMs: number): Promise<number[]> {
  const proc = spawn(process.execPath, ["--import", "tsx", path.join(here, "storage-writer.ts")], {
    cwd: repoRoot,
    env: { ...process.env, DATA_DIR: dataDir, DOCS: String(DOCS), ENTRY_BYTES: String(ENTRY_BYTES) },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  const lines: Record<string, unknown>[] = [];
  let stderr = "";
  proc.stderr.on("data", (d: Buffer) => void (stderr += d.toString()));
  try {
    const counts = await new Promise<number[]>((resolve, reject) => {
      let loaded: number[] = [];
      const timer = setTimeout(() => reject(new Error(`writer not writing within 60 s: ${JSON.stringify(lines)} ${stderr}`)), 60_000);
      createInterface({ input: proc.stdout }).on("line", (line) => {
        const o = JSON.parse(line) as { msg: string; counts?: number[] };
        lines.push(o);
        if (o.msg === "loaded") loaded = o.counts!;
        if (o.msg === "writing") {
          clearTimeout(timer);
          resolve(loaded);
        }
      });
      void exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`writer exited: ${JSON.stringify(lines)} ${stderr}`));
      });
    });
    await new Promise((r) => setTimeout(r, writeMs));
    return counts;
  } finally {
    proc.kill("SIGKILL");
    await exited;
  }
}

describe("SIGKILL during heavy writes", () => {
  it("the relay's storage leaves no empty, truncated or lost document after 12 kills", async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), "storage-crash-"));
    dirs.push(dataDir);
    let before = Array.from({ length: DOCS }, () => 0);
    for (let kill = 0; kill < KILLS; kill++) {
      const counts = await runAndKill(dataDir, 150 + Math.floor(Math.random() * 700));
      // Whatever a run loaded, the next one loads at least: no kill took stored entries away.
      counts.forEach((n, i) => expect(n, `document ${i} after kill ${kill}`).toBeGreaterThanOrEqual(before[i]!));
      before = counts;
    }

    const chunkFiles = (await filesUnder(path.join(dataDir, "automerge"))).filter((f) => !f.includes(".tmp-") && /(snapshot|incremental)/.test(f));
    expect(chunkFiles.length).toBeGreaterThanOrEqual(DOCS);
    for (const f of chunkFiles) {
      expect((await stat(f)).size, f).toBeGreaterThan(0);
      expect(chunkProblem(new Uint8Array(await readFile(f))), f).toBeNull();
    }
    const storage = createFileStorage(dataDir);
    for (let i = 0; i < DOCS; i++) {
      const id = `crashdoc${i}`;
      const chunks = [...(await storage.loadRange([id, "snapshot"])), ...(await storage.loadRange([id, "incremental"]))];
      let doc = A.init<{ entries: Record<string, string>; count: number }>();
      for (const c of chunks) doc = A.loadIncremental(doc, c.data!);
      expect(doc.count).toBeGreaterThan(0);
      expect(doc.count).toBeGreaterThanOrEqual(before[i]!);
      expect(Object.keys(doc.entries)).toHaveLength(doc.count);
      for (const text of Object.values(doc.entries)) expect(text).toHaveLength(ENTRY_BYTES);
    }
    expect(storage.corruptChunks()).toBe(0);
    expect(storage.damaged()).toEqual([]);
  }, 180_000);
});
