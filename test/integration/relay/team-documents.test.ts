/**
 * Documents per team are bounded: a device bringing one document more than the team's limit is
 * closed with 4507 and a reason naming the team and the document; nothing more is registered.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { next as A } from "@automerge/automerge";
import { generateAutomergeUrl, parseAutomergeUrl } from "@automerge/automerge-repo";
import { eventually, rawPeer, startTestRelay, type TestRelay } from "./harness.js";

const MAX = 10;
let relay: TestRelay;

beforeAll(async () => {
  relay = await startTestRelay({ maxDocumentsPerTeam: MAX });
  await relay.service.teams.createTeam("junk"); // root, registry, catalog, status: 4 of the 10
});

afterAll(async () => {
  await relay?.close();
});

describe("documents per team", () => {
  it("refuses the document past the team's limit with 4507 and registers nothing more", async () => {
    const token = relay.token({ sub: "u-junk", team: "junk", role: "member", device: "d1" });
    const p = await rawPeer(relay.service.syncUrl, token, "device-d1-junk");
    const documents = relay.db.db.collection("documents");
    const sent: string[] = [];
    for (let i = 0; i < MAX; i++) {
      const [, first] = A.generateSyncMessage(A.from({ n: i }), A.initSyncState());
      const documentId = parseAutomergeUrl(generateAutomergeUrl()).documentId;
      sent.push(documentId);
      p.send({ type: "sync", senderId: "device-d1-junk", targetId: p.relayPeerId, documentId, data: first! });
      // One at a time, so the count in MongoDB says which one was refused.
      await eventually(
        async () => p.ws.readyState !== p.ws.OPEN || (await documents.countDocuments({ _id: documentId as never })) === 1,
        `document ${i + 1} registered or refused`,
        15_000,
      );
      if (p.ws.readyState !== p.ws.OPEN) break;
    }
    const closed = await Promise.race([p.closed, new Promise<{ code: number; reason: string }>((r) => setTimeout(() => r({ code: 0, reason: "still open" }), 10_000))]);
    expect(closed.code).toBe(4507);
    expect(closed.reason).toBe(`team junk has reached its limit of ${MAX} documents; ${sent[6]} refused`);
    expect(await documents.countDocuments({ team: "junk" })).toBe(MAX);
    const metrics = await (await fetch(`${relay.service.url}/metrics`)).text();
    expect(metrics).toMatch(/relay_refusals_total\{reason="team-document-limit"\} 1/);
  });
});
