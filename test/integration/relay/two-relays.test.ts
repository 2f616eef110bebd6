/**
 * Two relay processes on one database (RELAY_STORAGE=mongodb, the second linked to the first
 * with RELAY_PEERS): a change a device writes through one relay reaches a device connected to
 * the other, both ways, and the latency is measured. Without links, relay 2 keeps serving the
 * copy it loaded and its device never sees relay 1's change.
 */
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { MongoClient } from "mongodb";
import { afterAll, describe, expect, it, inject } from "vitest";
import type { AutomergeUrl } from "@automerge/automerge-repo";
import type { CatalogDoc } from "../../../shared/docs.js";
import { createTokenService } from "../../../server/auth/tokens.js";
import { spawnService, type ServiceProcess } from "../../helpers/service-process.js";
import { connectClient, eventually, type TestClient } from "./harness.js";

const procs: ServiceProcess[] = [];
const clients: TestClient[] = [];
const dirs: string[] = [];
const dbName = `tworelays_${randomBytes(4).toString("hex")}`;

afterAll(async () => {
  for (const c of clients) await c.close();
  for (const p of procs) await p.stop("SIGKILL");
  for (const d of dirs) await rm(d, { recursive: true, force: true });
  const client = new MongoClient(inject("mongoUri"));
  await client.db(dbName).dropDatabase().catch(() => undefined);
  await client.close();
});

const item = (i: number, by: string) => ({ id: `${by}${i}`, name: `item ${i} by ${by}`, price: 100 + i, unit: "pcs", group: null, description: "", active: true });

describe("two relays on one database", () => {
  it("a change through relay 1 reaches a device on relay 2, and back", async () => {
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const keys = {
      privateKeyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
      publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
    };
    const tokens = createTokenService(keys, { issuer: "ledger-sync", audience: "ledger-sync", ttlSeconds: 3600 });
    const env = {
      MONGODB_URI: inject("mongoUri"),
      MONGODB_DB: dbName,
      JWT_PRIVATE_KEY: keys.privateKeyPem,
      JWT_PUBLIC_KEY: keys.publicKeyPem,
      RELAY_STORAGE: "mongodb",
      MATERIALIZER: "off",
    };
    for (let i = 0; i < 2; i++) dirs.push(await mkdtemp(path.join(os.tmpdir(), `relay-${i + 1}-`)));
    const one = await spawnService({ dataDir: dirs[0]!, env });
    procs.push(one);
    const two = await spawnService({ dataDir: dirs[1]!, env: { ...env, RELAY_PEERS: `ws://127.0.0.1:${one.port}/sync` } });
    procs.push(two);
    await eventually(() => two.logs.some((l) => l.msg === "linked to relay"), "relay 2 linked to relay 1", 30_000);

    const res = await fetch(`${one.url}/api/teams`, {
      method: "POST",
      headers: { authorization: `Bearer ${tokens.issue({ sub: "boss", team: "shop", role: "admin" })}`, "content-type": "application/json" },
      body: JSON.stringify({ team: "shop" }),
    });
    expect(res.status).toBe(201);
    const { catalogUrl } = (await res.json()) as { catalogUrl: AutomergeUrl };
    const member = (device: string): string => tokens.issue({ sub: `u-${device}`, team: "shop", role: "member", device });
    const onOne = await connectClient(`ws://127.0.0.1:${one.port}/sync`, member("a"), undefined, 300);
    const onTwo = await connectClient(`ws://127.0.0.1:${two.port}/sync`, member("b"), undefined, 300);
    clients.push(onOne, onTwo);
    // Both relays hold the catalog before anything changes (relay 2 loaded it from the database).
    const h1 = await onOne.repo.find<CatalogDoc>(catalogUrl);
    const h2 = await onTwo.repo.find<CatalogDoc>(catalogUrl);

    const latencies: number[] = [];
    for (let i = 0; i < 15; i++) {
      const [from, to, by] = i % 2 === 0 ? [h1, h2, "one"] : [h2, h1, "two"];
      const t0 = performance.now();
      from.change((d) => void (d.items[`${by}${i}`] = item(i, by)));
      await eventually(() => to.doc().items[`${by}${i}`] !== undefined, `change ${i} through relay ${by} to reach the other relay's device`, 30_000);
      latencies.push(performance.now() - t0);
    }
    latencies.sort((a, b) => a - b);
    console.log(`[two relays] cross-relay change latency p50 ${latencies[7]!.toFixed(0)} ms, max ${latencies.at(-1)!.toFixed(0)} ms (15 changes)`);
    expect(Object.keys(h1.doc().items).sort()).toEqual(Object.keys(h2.doc().items).sort());

    // Team isolation holds on the linked relay too: another team's member gets nothing there,
    // although relay 2 holds the document and syncs it with relay 1.
    const stranger = await connectClient(`ws://127.0.0.1:${two.port}/sync`, tokens.issue({ sub: "u-x", team: "other", role: "member", device: "x" }), undefined, 300);
    clients.push(stranger);
    await expect(stranger.repo.find<CatalogDoc>(catalogUrl)).rejects.toThrow(/unavailable/);

  }, 180_000);
});
