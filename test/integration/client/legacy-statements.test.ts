/**
 * Documents written before server statements: a materializer without a signing key publishes
 * unsigned verdicts and stock, which devices (holding the service's public key) still read from
 * the relay. The next materializer, with the key, signs those documents when it opens the team,
 * and from then on a tablet can carry them to another over a peer link.
 */
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Device, DeviceOptions } from "../../../client/device.js";
import { openDevice } from "../../../client/node.js";
import { loadOrCreateKeys } from "../../../server/auth/keys.js";
import { Materializer } from "../../../server/materializer/materializer.js";
import type { StatusDoc, VerdictsDoc } from "../../../shared/docs.js";
import { checkStatement } from "../../../shared/statement.js";
import { databaseInfo } from "../../helpers/db.js";
import { connectClient, type TestClient } from "../relay/harness.js";
import { createTeam, eventually, enrollForPeers, removeTmpDirs, startTestRelay, tmpDir, type TestRelay, type TestTeam } from "./helpers.js";

let relay: TestRelay;
let shop: TestTeam;
let service: TestClient;
let materializer: Materializer | undefined;
const opened: Device[] = [];

function startMaterializer(statementKeyPem?: string): Promise<void> {
  materializer = new Materializer({
    db: relay.db.db, client: relay.db.client, features: databaseInfo().features, repo: service.repo,
    logger: pino({ level: "warn" }), teamPollMs: 200, ...(statementKeyPem ? { statementKeyPem } : {}),
  });
  return materializer.start();
}

async function open(id: string, extra: Partial<DeviceOptions> = {}): Promise<Device> {
  await enrollForPeers(relay.db.db, shop.team, id);
  const d = await openDevice({
    serverUrl: relay.service.url, token: shop.token(id), rootUrl: shop.rootUrl, deviceId: id, dataDir: await tmpDir(id),
    publicKeyPem: relay.service.tokens.publicKeyPem, backoff: { baseMs: 100, maxMs: 1000 }, ...extra,
  });
  opened.push(d);
  if (!extra.offline) await d.peers.certify();
  return d;
}

beforeAll(async () => {
  relay = await startTestRelay();
  shop = await createTeam(relay, "shop-legacy");
  service = await connectClient(relay.service.syncUrl, relay.token({ sub: "materializer", team: "*", role: "service" }));
});

afterAll(async () => {
  for (const d of opened) await d.close().catch(() => undefined);
  await materializer?.stop();
  await service?.close();
  await relay?.close();
  await removeTmpDirs();
});

describe("documents from before statements", () => {
  it("are read from the relay unsigned, signed by the next materializer, then carried by peers", async () => {
    await startMaterializer();
    const a = await open("old-a");
    const later = await open("old-c");
    later.goOffline();
    const tea = await a.catalogEditor.addItem({ name: "Tea", price: 300 });
    await a.recordStock({ item: tea.id, delta: 10, reason: "delivery" });
    const sale = await a.recordSale({ lines: [{ item: tea.id, quantity: 2 }] });
    await eventually(() => a.entryStatus(sale.id).status === "accepted" && a.provisional().stock[tea.id] === 8, "unsigned verdict and stock on a", 60_000);
    const status = await a.repo.find<StatusDoc>(shop.statusUrl);
    expect(checkStatement(relay.service.tokens.publicKeyPem, status.documentId, status.doc())).toEqual({ ok: false, reason: "unsigned" });

    await materializer!.stop();
    const { privateKeyPem } = await loadOrCreateKeys({ privateKeyPem: undefined, publicKeyPem: undefined, dataDir: relay.dataDir });
    await startMaterializer(privateKeyPem);
    const verdicts = await a.repo.find<VerdictsDoc>(status.doc().verdicts[a.currentSegment()!.url]!);
    const signed = (h: { documentId: string; doc(): unknown }): boolean => checkStatement(relay.service.tokens.publicKeyPem, h.documentId, h.doc()).ok;
    await eventually(() => signed(status) && signed(verdicts), "status and verdicts signed on a", 60_000);
    expect(a.entryStatus(sale.id).status).toBe("accepted");
    expect(a.provisional().stock[tea.id]).toBe(8);

    // A tablet enrolled before any of this gets the signed figures from a, with the relay out of reach.
    a.goOffline();
    const dropped: string[] = [];
    later.on("dropped", (e) => dropped.push(e.reason));
    const port = await a.listen(0);
    later.connectPeer(`ws://127.0.0.1:${port}/`);
    await eventually(() => later.provisional().stock[tea.id] === 8, "signed stock carried to the later tablet", 30_000);
    expect(dropped).toEqual([]);
  }, 180_000);
});
