/**
 * Issue 5: an offline device records 500 sales and 200 payments, its process restarts while
 * still offline, then it reconnects and all 700 entries reach the relay. The device is the
 * command-line client in real child processes; the relay runs in this process.
 */
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { runCli } from "./cli-process.js";
import { createTeam, relayEntries, removeTmpDirs, startTestRelay, tmpDir, type TestRelay, type TestTeam } from "./helpers.js";

let relay: TestRelay;
let team: TestTeam;

beforeAll(async () => {
  relay = await startTestRelay();
  team = await createTeam(relay, "shop-restart");
});

afterAll(async () => {
  await relay?.close();
  await removeTmpDirs();
});

it("keeps 500 sales and 200 payments across an offline restart and delivers all 700", async () => {
  const data = await tmpDir("restart");
  const keyFile = path.join(data, "team.pub");
  await writeFile(keyFile, relay.service.tokens.publicKeyPem);
  await team.enroll("tablet-1");
  const enroll = await runCli([
    "enroll", "--data", data, "--server", relay.service.url, "--token", team.token("tablet-1"),
    "--device", "tablet-1", "--root", team.rootUrl, "--public-key", keyFile,
  ]);
  expect(enroll.stderr).toBe("");
  expect(enroll.code).toBe(0);

  // Process 1, offline: 500 sales.
  const sales = await runCli(["bulk", "--data", data, "--offline", "--sales", "500"]);
  expect(sales.stderr).toBe("");
  expect(sales.lines[0]).toMatchObject({ sales: 500, entries: 500, pending: 500 });

  // Process 2, still offline: starts from disk alone and pays 200 of those sales.
  const payments = await runCli(["bulk", "--data", data, "--offline", "--payments", "200"]);
  expect(payments.stderr).toBe("");
  expect(payments.lines[0]).toMatchObject({ payments: 200, entries: 700, pending: 700 });
  expect((await relayEntries(relay, team.registryUrl)).entries.size).toBe(0);

  // Process 3, online: runs until the relay has acknowledged every entry.
  const started = Date.now();
  const sync = await runCli(["sync", "--data", data, "--timeout", "90000"]);
  expect(sync.stderr).toBe("");
  expect(sync.lines[0]).toMatchObject({ synced: true, entries: 700, pending: 0 });
  console.log(`[client] 700 offline entries: sales ${String(sales.lines[0]?.ms)} ms, payments ${String(payments.lines[0]?.ms)} ms, sync process ${Date.now() - started} ms`);

  const held = await relayEntries(relay, team.registryUrl);
  expect(held.entries.size).toBe(700);
}, 180_000);
