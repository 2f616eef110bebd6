/**
 * RELAY_STORAGE=mongodb in the real service: a relay killed with SIGKILL is replaced by one on
 * another machine (an empty data folder, the same database), and a new device there gets every
 * change the first relay acknowledged. With file storage the replacement would have nothing.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { MongoClient } from "mongodb";
import { afterAll, describe, expect, it, inject } from "vitest";
import type { CatalogDoc } from "../../../shared/docs.js";
import { CHUNKS_COLLECTION } from "../../../server/relay/mongo-storage.js";
import { createTeamVia, sharedKeys, spawnService, type ServiceProcess } from "../../helpers/service-process.js";
import { connectClient, eventually, type TestClient } from "../relay/harness.js";

const procs: ServiceProcess[] = [];
const clients: TestClient[] = [];
const dirs: string[] = [];
const dbName = `relaystore_${randomBytes(4).toString("hex")}`;

afterAll(async () => {
  for (const c of clients) await c.close();
  for (const p of procs) await p.stop("SIGKILL");
  for (const d of dirs) await rm(d, { recursive: true, force: true });
  const client = new MongoClient(inject("mongoUri"));
  await client.db(dbName).dropDatabase().catch(() => undefined);
  await client.close();
});

describe("relay on MongoDB document storage", () => {
  it("a relay on an empty data folder serves what a killed relay on another folder acknowledged", async () => {
    const { tokens, env: keyEnv } = sharedKeys();
    const env = {
      MONGODB_URI: inject("mongoUri"),
      MONGODB_DB: dbName,
      ...keyEnv,
      RELAY_STORAGE: "mongodb",
      MATERIALIZER: "off",
    };
    const machineA = await mkdtemp(path.join(os.tmpdir(), "relay-a-"));
    const machineB = await mkdtemp(path.join(os.tmpdir(), "relay-b-"));
    dirs.push(machineA, machineB);
    const first = await spawnService({ dataDir: machineA, env });
    procs.push(first);

    const { catalogUrl } = await createTeamVia(first.url, tokens.issue({ sub: "boss", team: "shop", role: "admin" }), "shop");
    const member = (device: string): string => tokens.issue({ sub: `u-${device}`, team: "shop", role: "member", device });
    const syncA = `ws://127.0.0.1:${first.port}/sync`;
    const writer = await connectClient(syncA, member("w"), undefined, 300);
    const reader = await connectClient(syncA, member("r"), undefined, 300);
    clients.push(writer, reader);
    const wh = await writer.repo.find<CatalogDoc>(catalogUrl);
    const rh = await reader.repo.find<CatalogDoc>(catalogUrl);
    for (let i = 0; i < 40; i++) {
      wh.change((d) => {
        d.items[`i${i}`] = { id: `i${i}`, name: `item ${i}`, price: 100 + i, unit: "pcs", group: null, description: "", active: true };
      });
    }
    // What the reader saw, the relay had sent, so it had acknowledged it (durable acks).
    await eventually(() => Object.keys(rh.doc().items).length === 40, "reader to see 40 items", 30_000);
    await first.stop("SIGKILL");

    const second = await spawnService({ dataDir: machineB, env });
    procs.push(second);
    const fresh = await connectClient(`ws://127.0.0.1:${second.port}/sync`, member("fresh"));
    clients.push(fresh);
    const fh = await fresh.repo.find<CatalogDoc>(catalogUrl);
    await eventually(() => Object.keys(fh.doc().items).length === 40, "the new relay to serve all 40 items", 30_000);
    expect((fh.doc().items.i39 as { price?: number } | undefined)?.price).toBe(139);
    // Nothing of the documents is in the data folders: the chunks are in the database.
    expect(await readdir(machineB)).not.toContain("automerge");
    const client = new MongoClient(inject("mongoUri"));
    try {
      expect(await client.db(dbName).collection(CHUNKS_COLLECTION).countDocuments({})).toBeGreaterThan(0);
    } finally {
      await client.close();
    }
  }, 180_000);
});
