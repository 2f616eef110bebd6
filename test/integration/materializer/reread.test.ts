/**
 * A segment read again from the start after a crash (its checkpoint not yet saved when the
 * process died, though its entries were journaled) must find every entry decided, invalid ones
 * included: they were decided again, journaled a second time (E11000), and the team's batches
 * failed for ever.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pino } from "pino";
import { Materializer } from "../../../server/materializer/materializer.js";
import { databaseInfo } from "../../helpers/db.js";
import { connectClient, type TestClient } from "../relay/harness.js";
import { addItem, Device, sale, settled, startShop, type Shop } from "./harness.js";

let shop: Shop;
let device: Device;
let second: Materializer | undefined;
let peer: TestClient | undefined;

beforeAll(async () => {
  shop = await startShop();
  await addItem(shop, "tea", "Tea", 300);
  device = new Device(shop, "till-a");
});

afterAll(async () => {
  await second?.stop();
  await peer?.close();
  await device.close();
  await shop.close();
});

describe("a segment read again after a crash", () => {
  it("finds its invalid entries decided and goes on deciding", async () => {
    const stock = device.write({ kind: "stock", item: "tea", delta: 10, reason: "delivery", at: "2026-11-20T08:00:00.000Z" });
    const invalid = device.write({ kind: "sale", lines: [{ item: "tea", quantity: -1, price: 5 }], subtotal: -5, tax: 0, discount: 0, total: -5, customer: null, paid: 0, at: "2026-11-20T09:00:00.000Z" });
    await device.online();
    await settled(shop, [stock, invalid]);
    const { c } = shop.materializer;
    expect((await c.journal.findOne({ entryId: invalid, team: shop.team.team }))?.status).toBe("invalid");

    // As if the process had died after the journal write and before the checkpoint.
    await shop.materializer.stop();
    await c.checkpoints.deleteMany({ team: shop.team.team });
    const logs: Record<string, unknown>[] = [];
    peer = await connectClient(shop.relay.service.syncUrl, shop.relay.token({ sub: "materializer", team: "*", role: "service" }));
    second = new Materializer({
      db: shop.relay.db.db,
      client: shop.relay.db.client,
      features: databaseInfo().features,
      repo: peer.repo,
      logger: pino({ level: "info" }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) }),
      teamPollMs: 200,
    });
    await second.start();
    const next = device.write({ ...sale("tea", 1, 300), at: "2026-11-20T10:00:00.000Z" });
    await settled({ ...shop, materializer: second }, [next], 60_000);

    expect(await c.journal.countDocuments({ team: shop.team.team })).toBe(3);
    expect(logs.filter((l) => l.msg === "batch failed; retrying")).toEqual([]);
  }, 120_000);
});
