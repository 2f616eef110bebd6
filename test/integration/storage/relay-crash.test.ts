/**
 * The relay as a real process (server/main.ts), SIGKILLed while a device writes to the team's
 * catalog as fast as the relay takes it, three times, restarted on the same data folder each
 * time. Afterwards every document of the team loads from disk whole: no empty or damaged chunk,
 * and every change the relay had passed on (so saved) before each kill is there.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Repo, type PeerId } from "@automerge/automerge-repo";
import { afterAll, describe, expect, it, inject } from "vitest";
import type { CatalogDoc, SegmentRegistryDoc, StatusDoc, TeamRootDoc } from "../../../shared/docs.js";
import { chunkProblem } from "../../../server/relay/chunk-check.js";
import { createFileStorage } from "../../../server/relay/storage.js";
import { freePort } from "../../../server/db/free-port.js";
import { createTeamVia, sharedKeys, spawnService, type ServiceProcess } from "../../helpers/service-process.js";
import { connectClient, eventually, sleep, type TestClient } from "../relay/harness.js";
import { filesUnder } from "../../helpers/files.js";

const KILLS = 3;
const procs: ServiceProcess[] = [];
const clients: TestClient[] = [];
let dataDir: string | undefined;

afterAll(async () => {
  for (const c of clients) await c.close();
  for (const p of procs) await p.stop("SIGKILL");
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});


describe("relay SIGKILL during heavy writes", () => {
  it(`leaves every team document whole after ${KILLS} kills`, async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), "relay-crash-"));
    const { tokens, env: keyEnv } = sharedKeys();
    const port = await freePort();
    const env = {
      PORT: String(port),
      MONGODB_URI: inject("mongoUri"),
      MONGODB_DB: `relaycrash_${randomBytes(4).toString("hex")}`,
      ...keyEnv,
      MATERIALIZER: "off",
    };
    const syncUrl = `ws://127.0.0.1:${port}/sync`;
    const member = (device: string): string => tokens.issue({ sub: `u-${device}`, team: "shop", role: "member", device });

    let svc = await spawnService({ dataDir, env, timeoutMs: 90_000 });
    procs.push(svc);
    const team = await createTeamVia(svc.url, tokens.issue({ sub: "boss", team: "shop", role: "admin" }), "shop");

    const acknowledged = new Set<string>();
    for (let round = 0; round < KILLS; round++) {
      if (round > 0) {
        svc = await spawnService({ dataDir, env, timeoutMs: 90_000 });
        procs.push(svc);
      }
      const writer = await connectClient(syncUrl, member(`w${round}`), undefined, 300);
      const reader = await connectClient(syncUrl, member(`r${round}`), undefined, 300);
      clients.push(writer, reader);
      const wh = await writer.repo.find<CatalogDoc>(team.catalogUrl);
      const rh = await reader.repo.find<CatalogDoc>(team.catalogUrl);
      // What the relay loaded after the last kill holds everything it had passed on before it.
      for (const key of acknowledged) expect(rh.doc().items[key], `round ${round}: ${key}`).toBeDefined();

      let k = 0;
      const writing = setInterval(() => {
        try {
          // Several items per tick, each with a long name: the relay saves and compacts all the time.
          wh.change((d) => {
            for (let j = 0; j < 5; j++, k++) d.items[`r${round}-${k}`] = { name: `item ${k} ${randomBytes(200).toString("hex")}` };
          });
        } catch {
          // A send on the dying socket can wedge the stock client's handle (AUTOMERGE-NOTES.md).
        }
      }, 10);
      const seenBefore = Object.keys(rh.doc().items).length;
      await eventually(() => Object.keys(rh.doc().items).length >= seenBefore + 60, `round ${round}: reader to see 60 new items`, 60_000);
      await sleep(Math.floor(Math.random() * 400));
      // What the reader has, the relay sent, and it sends only what it has saved.
      for (const key of Object.keys(rh.doc().items)) acknowledged.add(key);
      await svc.stop("SIGKILL");
      clearInterval(writing);
      // Closed here, so not again at teardown (a second close trips an assert in the adapter).
      clients.splice(clients.indexOf(writer), 1);
      clients.splice(clients.indexOf(reader), 1);
      await writer.close();
      await reader.close();
    }

    // Only the files now, as the next start would read them.
    const chunkFiles = (await filesUnder(path.join(dataDir, "automerge"))).filter((f) => /[/\\](snapshot|incremental)[/\\]/.test(f) && !f.includes(".tmp-"));
    for (const f of chunkFiles) expect(chunkProblem(new Uint8Array(await readFile(f))), f).toBeNull();
    const storage = createFileStorage(dataDir);
    const repo = new Repo({ network: [], storage, peerId: "disk" as PeerId });
    try {
      const root = (await repo.find<TeamRootDoc>(team.rootUrl)).doc();
      expect(root).toMatchObject({ type: "team-root", team: "shop" });
      const catalog = (await repo.find<CatalogDoc>(root.catalog)).doc();
      for (const key of acknowledged) expect(catalog.items[key], key).toBeDefined();
      expect((await repo.find<SegmentRegistryDoc>(root.registry)).doc()).toMatchObject({ type: "segment-registry" });
      expect((await repo.find<StatusDoc>(root.status)).doc()).toMatchObject({ type: "status", team: "shop" });
      expect(storage.corruptChunks()).toBe(0);
      expect(storage.damaged()).toEqual([]);
    } finally {
      await repo.shutdown().catch(() => undefined);
    }
  }, 240_000);
});
