/**
 * Two relay processes on one database (RELAY_STORAGE=mongodb, the second linked to the first
 * with RELAY_PEERS): a change a device writes through one relay reaches a device connected to
 * the other, both ways, and the latency is measured. Without links, relay 2 keeps serving the
 * copy it loaded and its device never sees relay 1's change. Then failover: devices behind a
 * load balancer (the first live relay, as nginx's upstream with max_fails) keep writing while
 * relay 1 is SIGKILLed, and every change reaches every device through relay 2.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { MongoClient } from "mongodb";
import { afterAll, describe, expect, it, inject } from "vitest";
import type { CatalogDoc } from "../../../shared/docs.js";
import { createTeamVia, sharedKeys, spawnService, type ServiceProcess } from "../../helpers/service-process.js";
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

/** A TCP balancer: each connection goes to the first upstream that accepts it. */
async function balancer(ports: () => number[]): Promise<{ port: number; close(): void }> {
  const server = net.createServer((client) => {
    client.pause();
    const tryNext = (rest: number[]): void => {
      const [port, ...more] = rest;
      if (port === undefined) return void client.destroy();
      const up = net.connect(port, "127.0.0.1");
      up.once("error", () => tryNext(more));
      up.once("connect", () => {
        up.removeAllListeners("error");
        up.on("error", () => client.destroy());
        client.on("error", () => up.destroy());
        up.on("close", () => client.destroy());
        client.on("close", () => up.destroy());
        client.pipe(up).pipe(client);
        client.resume();
      });
    };
    tryNext(ports());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { port: (server.address() as net.AddressInfo).port, close: () => server.close() };
}

describe("two relays on one database", () => {
  it("a change through relay 1 reaches a device on relay 2, and back", async () => {
    const { tokens, env: keyEnv } = sharedKeys();
    const env = {
      MONGODB_URI: inject("mongoUri"),
      MONGODB_DB: dbName,
      ...keyEnv,
      RELAY_STORAGE: "mongodb",
      MATERIALIZER: "off",
    };
    for (let i = 0; i < 2; i++) dirs.push(await mkdtemp(path.join(os.tmpdir(), `relay-${i + 1}-`)));
    const one = await spawnService({ dataDir: dirs[0]!, env });
    procs.push(one);
    const two = await spawnService({ dataDir: dirs[1]!, env: { ...env, RELAY_PEERS: `ws://127.0.0.1:${one.port}/sync` } });
    procs.push(two);
    await eventually(() => two.logs.some((l) => l.msg === "linked to relay"), "relay 2 linked to relay 1", 30_000);

    const { catalogUrl } = await createTeamVia(one.url, tokens.issue({ sub: "boss", team: "shop", role: "admin" }), "shop");
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

  it("devices behind a balancer move to relay 2 when relay 1 is killed, with nothing lost", async () => {
    const { tokens, env: keyEnv } = sharedKeys();
    const env = {
      MONGODB_URI: inject("mongoUri"),
      MONGODB_DB: `${dbName}_failover`,
      ...keyEnv,
      RELAY_STORAGE: "mongodb",
      MATERIALIZER: "off",
    };
    for (let i = 0; i < 2; i++) dirs.push(await mkdtemp(path.join(os.tmpdir(), `relay-f${i + 1}-`)));
    const one = await spawnService({ dataDir: dirs.at(-2)!, env });
    procs.push(one);
    const two = await spawnService({ dataDir: dirs.at(-1)!, env: { ...env, RELAY_PEERS: `ws://127.0.0.1:${one.port}/sync` } });
    procs.push(two);
    await eventually(() => two.logs.some((l) => l.msg === "linked to relay"), "relay 2 linked to relay 1", 30_000);
    const lb = await balancer(() => [one.port, two.port]);
    try {
      const { catalogUrl } = await createTeamVia(one.url, tokens.issue({ sub: "boss", team: "shop", role: "admin" }), "shop");
      const member = (device: string): string => tokens.issue({ sub: `u-${device}`, team: "shop", role: "member", device });
      const viaLb = `ws://127.0.0.1:${lb.port}/sync`;
      const writer = await connectClient(viaLb, member("w"), undefined, 300);
      const watcher = await connectClient(`ws://127.0.0.1:${two.port}/sync`, member("v"), undefined, 300);
      clients.push(writer, watcher);
      const wh = await writer.repo.find<CatalogDoc>(catalogUrl);
      const vh = await watcher.repo.find<CatalogDoc>(catalogUrl);
      for (let i = 0; i < 20; i++) wh.change((d) => void (d.items[`w${i}`] = item(i, "w")));
      await eventually(() => Object.keys(vh.doc().items).length === 20, "relay 2's device to see the first 20 items", 30_000);

      await one.stop("SIGKILL");
      // Written while the writer's relay is dead: kept on the device, sent once it reconnects.
      for (let i = 20; i < 40; i++) wh.change((d) => void (d.items[`w${i}`] = item(i, "w")));
      await eventually(() => Object.keys(vh.doc().items).length === 40, "every item to reach relay 2's device after failover", 60_000);
      const late = await connectClient(viaLb, member("late"), undefined, 300);
      clients.push(late);
      const lh = await late.repo.find<CatalogDoc>(catalogUrl);
      await eventually(() => Object.keys(lh.doc().items).length === 40, "a new device behind the balancer to get all 40", 30_000);
    } finally {
      lb.close();
    }
  }, 180_000);
});
