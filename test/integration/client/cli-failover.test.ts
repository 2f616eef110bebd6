/**
 * The device command line with several relays (issue 17): enrolled with `--relay` whose first
 * address is dead, the device enrolls, certifies its key and syncs through the next one, and
 * keeps the list for later commands; a malformed `--relay` is refused before anything is made.
 */
import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../../server/db/free-port.js";
import { runCli } from "./cli-process.js";
import { createTeam, relayEntries, removeTmpDirs, startTestRelay, tmpDir, type TestRelay, type TestTeam } from "./helpers.js";

let relay: TestRelay;
let team: TestTeam;

beforeAll(async () => {
  relay = await startTestRelay();
  team = await createTeam(relay, "shop-failover-cli");
});

afterAll(async () => {
  await relay?.close();
  await removeTmpDirs();
});

describe("device enroll --relay", () => {
  it("enrolls, certifies and syncs through the next relay when the first is down, and keeps the list", async () => {
    const data = await tmpDir("cli-failover");
    await team.enroll("till-9");
    const keyFile = path.join(data, "team.pub");
    await writeFile(keyFile, relay.service.tokens.publicKeyPem);
    const dead = `ws://127.0.0.1:${await freePort()}/sync`;
    const relays = `${dead},${relay.service.syncUrl}`;
    const enroll = await runCli(["enroll", "--data", data, "--json", "--relay", relays, "--token", team.token("till-9"), "--device", "till-9", "--root", team.rootUrl, "--public-key", keyFile]);
    expect(enroll.stderr).toBe("");
    expect(enroll.lines[0]).toMatchObject({ enrolled: true, device: "till-9" });
    expect(JSON.parse(await readFile(path.join(data, "device.json"), "utf8"))).toMatchObject({ relays: [dead, relay.service.syncUrl] });

    const item = await runCli(["item", "add", "--data", data, "--json", "--name", "Tea", "--price", "300", "--offline"]);
    expect(item.code, item.stderr).toBe(0);
    const entry = await runCli(["stock", "receive", "--data", data, "--json", "--item", String(item.lines[0]!.id), "--qty", "5", "--offline"]);
    expect(entry.code, entry.stderr).toBe(0);
    const sync = await runCli(["sync", "--data", data, "--json", "--timeout", "60000"]);
    expect(sync.code, sync.stderr).toBe(0);
    expect(sync.lines[0]).toMatchObject({ synced: true, pending: 0 });
    expect((await relayEntries(relay, team.registryUrl)).entries.has(String(entry.lines[0]!.id))).toBe(true);
    const status = await runCli(["status", "--data", data, "--json"]);
    expect(status.lines[0]).toMatchObject({ online: true, relay: relay.service.syncUrl, pending: 0 });
  }, 120_000);

  it("refuses an address that is not a URL, naming it, and makes no data folder", async () => {
    const data = path.join(await tmpDir("cli-failover-bad"), "till");
    const r = await runCli(["enroll", "--data", data, "--json", "--relay", `${relay.service.syncUrl},relay2:8080`, "--token", "t", "--device", "d", "--root", team.rootUrl]);
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).toMatch(/--relay relay2:8080: expected a ws:\/\/, wss:\/\/, http:\/\/ or https:\/\/ address/);
    expect(existsSync(data)).toBe(false);
  }, 60_000);
});
