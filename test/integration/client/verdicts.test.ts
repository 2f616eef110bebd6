/**
 * Verdicts reach the device: the server side (here the relay's own Repo standing in for the
 * materializer) publishes a verdicts document for the device's segment and lists it in the
 * status document (strings as text or as immutable scalars); the device reports each own entry's status and emits `verdict` events.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { ImmutableString } from "@automerge/automerge";
import type { AutomergeUrl } from "@automerge/automerge-repo";
import type { StatusDoc, VerdictsDoc } from "../../../shared/docs.js";
import { openDevice } from "../../../client/node.js";
import type { Device } from "../../../client/device.js";
import { createTeam, eventually, removeTmpDirs, startTestRelay, tmpDir, type TestRelay, type TestTeam } from "./helpers.js";

let relay: TestRelay;
let team: TestTeam;
let device: Device | undefined;

beforeAll(async () => {
  relay = await startTestRelay();
  team = await createTeam(relay, "shop-verdicts");
});

afterAll(async () => {
  await device?.close();
  await relay?.close();
  await removeTmpDirs();
});

it("shows undecided, accepted and rejected-with-reason verdicts as they arrive", async () => {
  device = await openDevice({
    serverUrl: relay.service.url, token: team.token("till-v"), rootUrl: team.rootUrl, deviceId: "till-v", dataDir: await tmpDir("verdicts"),
  });
  const s1 = await device.recordSale({ lines: [{ item: "v-1", quantity: 1, price: 100, name: "Jam" }] });
  const s2 = await device.recordSale({ lines: [{ item: "v-2", quantity: 1, price: 100, name: "Jam" }] });
  await device.whenSynced(30_000);
  expect(device.entryStatus(s1.id)).toEqual({ status: "undecided" });

  const events: string[] = [];
  device.on("verdict", (e) => events.push(`${e.entryId}:${e.verdict.status}`));
  const segUrl = device.currentSegment()!.url;
  const repo = relay.service.repo;
  const now = new Date().toISOString();
  const verdicts = repo.create<VerdictsDoc>({
    type: "verdicts", team: team.team, segment: segUrl,
    verdicts: {
      [s1.id]: { status: "accepted", seq: 1, decidedAt: now },
      // As the materializer writes them now (immutable strings); s1's as documents written before.
      [s2.id]: {
        status: new ImmutableString("rejected"), reason: new ImmutableString("insufficient stock for item v-2: requested 1, available 0"),
        seq: 2, decidedAt: new ImmutableString(now),
      },
    },
  });
  await relay.service.teams.registerDocument(team.team, verdicts.documentId, "verdicts");
  const status = await repo.find<StatusDoc>(team.statusUrl);
  status.change((d) => {
    d.verdicts[segUrl] = verdicts.url as AutomergeUrl;
  });

  await eventually(() => events.length === 2, "two verdict events", 30_000);
  expect(device.entryStatus(s1.id)).toEqual({ status: "accepted" });
  expect(device.entryStatus(s2.id)).toMatchObject({ status: "rejected", reason: expect.stringMatching(/insufficient stock/) });
}, 60_000);
