/**
 * Sync status when a device lists one entry id in two of its segments: the journal decides the
 * id once, so the second copy is reported as a duplicate (with the segments), never as undecided.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LedgerSegmentDoc, SegmentRegistryDoc } from "../../../shared/docs.js";
import { Device, eventually, settled } from "../materializer/harness.js";
import { startApiShop, type ApiShop } from "./harness.js";

let shop: ApiShop;
beforeAll(async () => {
  shop = await startApiShop();
});
afterAll(async () => {
  await shop?.close();
});

interface StatusRow { device: string; entries: number | null; decided: number; undecided: number | null; duplicates: number; duplicateEntries: { id: string; segments: string[] }[] }

describe("sync status", () => {
  it("an entry id listed in two segments of a device is a duplicate, not undecided", async () => {
    const device = new Device(shop, "tab-dup");
    try {
      const twice = device.write({ kind: "stock", id: randomUUID(), item: "crate", delta: 4, reason: "delivery" });
      const once = device.write({ kind: "stock", item: "crate", delta: 1, reason: "found one" });
      await device.online();
      await settled(shop, [twice, once]);
      // A second segment of the same device carries a copy of the first entry.
      const copy = JSON.parse(JSON.stringify(device.segment.doc().entries[twice])) as unknown;
      const second = device.repo.create<LedgerSegmentDoc>({ type: "ledger-segment", team: shop.team.team, device: "tab-dup", n: 1, createdAt: new Date().toISOString(), entries: { [twice]: copy } });
      const registry = await device.repo.find<SegmentRegistryDoc>(shop.team.registryUrl);
      registry.change((d) => {
        d.segments["tab-dup/1"] = second.url;
      });
      let row: StatusRow | undefined;
      await eventually(async () => {
        const r = await shop.call<{ devices: StatusRow[] }>("GET", "/sync-status", { token: shop.auditor });
        row = r.body.devices.find((d) => d.device === "tab-dup");
        return row?.entries === 3;
      }, "both segments counted", 30_000);
      expect(row).toMatchObject({ entries: 3, decided: 2, undecided: 0, duplicates: 1 });
      expect(row!.duplicateEntries).toEqual([{ id: twice, segments: ["tab-dup/0", "tab-dup/1"] }]);
      // Still so once the materializer has read the second segment (it decides the id once).
      await eventually(async () => (await shop.materializer.c.checkpoints.findOne({ _id: second.documentId })) !== null, "second segment read", 30_000);
      const again = await shop.call<{ devices: StatusRow[]; materializer: { undecided: number | null } }>("GET", "/sync-status", { token: shop.auditor });
      expect(again.body.devices.find((d) => d.device === "tab-dup")).toMatchObject({ entries: 3, decided: 2, undecided: 0, duplicates: 1 });
      expect(again.body.materializer.undecided).toBe(0);
    } finally {
      await device.close();
    }
  });
});
