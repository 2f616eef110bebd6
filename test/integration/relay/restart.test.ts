/**
 * The relay as a real process, killed with SIGKILL mid-stream and restarted on the same data
 * folder: every change it acknowledged survives and clients reconnect and converge.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it, inject } from "vitest";
import type { CatalogDoc } from "../../../shared/docs.js";
import { freePort } from "../../../server/db/free-port.js";
import { createTeamVia, sharedKeys, spawnService, type ServiceProcess } from "../../helpers/service-process.js";
import { connectClient, eventually, type TestClient } from "./harness.js";

const procs: ServiceProcess[] = [];
const clients: TestClient[] = [];
let dataDir: string | undefined;

afterAll(async () => {
  for (const c of clients) await c.close();
  for (const p of procs) await p.stop("SIGKILL");
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});


describe("relay restart", () => {
  it("keeps every acknowledged change across SIGKILL, and clients converge after reconnecting", async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), "relay-restart-"));
    const { tokens, env: keyEnv } = sharedKeys();
    const port = await freePort();
    const env = {
      PORT: String(port),
      MONGODB_URI: inject("mongoUri"),
      MONGODB_DB: `restart_${randomBytes(4).toString("hex")}`,
      ...keyEnv,
    };
    const first = await spawnService({ dataDir, env });
    procs.push(first);
    const syncUrl = `ws://127.0.0.1:${port}/sync`;

    const { catalogUrl } = await createTeamVia(first.url, tokens.issue({ sub: "boss", team: "shop", role: "admin" }), "shop");

    const member = (device: string): string => tokens.issue({ sub: `u-${device}`, team: "shop", role: "member", device });
    const writer = await connectClient(syncUrl, member("w"), undefined, 300);
    const reader = await connectClient(syncUrl, member("r"), undefined, 300);
    clients.push(writer, reader);
    const wh = await writer.repo.find<CatalogDoc>(catalogUrl);
    const rh = await reader.repo.find<CatalogDoc>(catalogUrl);

    // The writer writes continuously; the relay is killed once the reader has seen 30 items.
    // What the reader saw, the relay had sent, so it had acknowledged it.
    let i = 0;
    const writing = setInterval(() => {
      const k = i++;
      try {
        wh.change((d) => {
          d.items[`i${k}`] = { name: `item ${k}` };
        });
      } catch {
        // A send on the dying socket can wedge the stock client's handle (AUTOMERGE-NOTES.md).
      }
    }, 20);
    await eventually(() => Object.keys(rh.doc().items).length >= 30, "reader to see 30 items");
    const acknowledged = Object.keys(rh.doc().items);
    await first.stop("SIGKILL");
    clearInterval(writing);

    const second = await spawnService({ dataDir, env });
    procs.push(second);
    const fresh = await connectClient(syncUrl, member("fresh"));
    clients.push(fresh);
    const fh = await fresh.repo.find<CatalogDoc>(catalogUrl);
    const afterRestart = Object.keys(fh.doc().items);
    for (const key of acknowledged) expect(afterRestart, `acknowledged ${key}`).toContain(key);

    // The surviving clients reconnect and converge with the restarted relay.
    await eventually(() => writer.repo.peers.length > 0 && reader.repo.peers.length > 0, "clients to reconnect", 10_000);
    const late = await connectClient(syncUrl, member("late"));
    clients.push(late);
    const lh = await late.repo.find<CatalogDoc>(catalogUrl);
    lh.change((d) => {
      d.items["after-restart"] = { name: "new" };
    });
    await eventually(() => rh.doc().items["after-restart"] !== undefined, "reader to get a change made after the restart", 15_000);
    await eventually(
      () => Object.keys(fh.doc().items).length === Object.keys(rh.doc().items).length,
      "fresh and reader to converge",
      15_000,
    );
    expect(Object.keys(rh.doc().items).length).toBeGreaterThanOrEqual(acknowledged.length + 1);
  });
});
