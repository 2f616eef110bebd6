/**
 * A segment listed in the registry before its content reaches the relay (its till listed it and
 * dropped offline) arrives minutes later. automerge-repo stops waiting for a document after 60 s;
 * the device must still take it when it comes, or it would never hold that till's entries. The
 * same wait let a new device of a 100,000-entry team miss segments the busy relay sent late.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import * as A from "@automerge/automerge";
import { generateAutomergeUrl, parseAutomergeUrl } from "@automerge/automerge-repo";
import type { SegmentRegistryDoc } from "../../../shared/docs.js";
import { openDevice } from "../../../client/node.js";
import type { Device } from "../../../client/device.js";
import { salesOf } from "../../../bench/lib/fixtures.js";
import { connectClient, type TestClient } from "../relay/harness.js";
import { createTeam, eventually, removeTmpDirs, startTestRelay, tmpDir, type TestRelay, type TestTeam } from "./helpers.js";

let relay: TestRelay;
let team: TestTeam;
let device: Device | undefined;
let till: TestClient | undefined;

beforeAll(async () => {
  relay = await startTestRelay();
  team = await createTeam(relay, "shop-late");
});

afterAll(async () => {
  await device?.close();
  await till?.close();
  await relay?.close();
  await removeTmpDirs();
});

it("holds a segment whose content reaches the relay more than a minute after it was listed", async () => {
  device = await openDevice({
    serverUrl: relay.service.url, token: team.token("tablet"), rootUrl: team.rootUrl, deviceId: "tablet", dataDir: await tmpDir("late"),
  });
  const [sale] = salesOf("till-late", 1);
  const segment = A.change<Record<string, unknown>>(A.from<Record<string, unknown>>({ type: "ledger-segment", team: "shop-late", device: "till-late", n: 0, createdAt: sale!.at, entries: {} }), (d) => {
    (d.entries as Record<string, unknown>)[sale!.id] = JSON.parse(JSON.stringify(sale)) as unknown;
  });

  // The till lists its segment; the content stays on the till.
  till = await connectClient(relay.service.syncUrl, team.token("till-late"));
  const lateUrl = generateAutomergeUrl();
  const registry = await till.repo.find<SegmentRegistryDoc>(team.registryUrl);
  registry.change((d) => {
    d.segments["till-late/0"] = lateUrl;
  });
  await new Promise((r) => setTimeout(r, 65_000));
  expect(device.entries().map((e) => e.id)).not.toContain(sale!.id);

  // Back online with the content.
  till.repo.import(A.save(segment), { docId: parseAutomergeUrl(lateUrl).documentId });
  await eventually(() => device!.entries().some((e) => e.id === sale!.id), "the device holds the late segment's sale", 20_000);
}, 120_000);
