/**
 * Enrollment, catalog edits, ledger operations with their input checks, offline writes and
 * sync to the relay, all on an in-process relay on 127.0.0.1 and real files.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ClientError } from "../../../client/errors.js";
import { openDevice } from "../../../client/node.js";
import type { Device } from "../../../client/device.js";
import { createTeam, eventually, relayEntries, removeTmpDirs, startTestRelay, tmpDir, type TestRelay, type TestTeam } from "./helpers.js";

let relay: TestRelay;
let team: TestTeam;
let device: Device;
const opened: Device[] = [];

beforeAll(async () => {
  relay = await startTestRelay();
  team = await createTeam(relay, "shop-ops");
  device = await openDevice({
    serverUrl: relay.service.url, token: team.token("till-1"), rootUrl: team.rootUrl, deviceId: "till-1",
    dataDir: await tmpDir("ops"), publicKeyPem: relay.service.tokens.publicKeyPem,
  });
  opened.push(device);
});

afterAll(async () => {
  for (const d of opened) await d.close();
  await relay?.close();
  await removeTmpDirs();
});

async function expectRefused(p: Promise<unknown>, message: RegExp): Promise<void> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(ClientError);
  expect((err as ClientError).code).toBe("invalid-input");
  expect((err as ClientError).message).toMatch(message);
}

describe("a device", () => {
  it("edits the catalog and records a sale, a payment, stock and a void that reach the relay", async () => {
    const cat = device.catalogEditor;
    const group = await cat.addGroup("Drinks");
    const cola = await cat.addItem({ name: "Cola", price: 150, group: group.id });
    await cat.renameItem(cola.id, "Cola 0.5l");
    await cat.repriceItem(cola.id, 180);
    const customer = await cat.addCustomer({ name: "Ada", phone: "555-1" });
    expect(device.catalog().items.find((i) => i.id === cola.id)).toMatchObject({ name: "Cola 0.5l", price: 180, active: true });

    await device.recordStock({ item: cola.id, delta: 10, reason: "delivery" });
    const sale = await device.recordSale({ lines: [{ item: cola.id, quantity: 2 }], tax: 36, customer: customer.id, paid: 100 });
    expect(sale).toMatchObject({ kind: "sale", subtotal: 360, total: 396, paid: 100, device: "till-1" });
    await device.recordPayment({ invoice: sale.id, amount: 96 });
    expect(device.provisional().stock[cola.id]).toBe(8);
    expect(device.provisional().invoices[sale.id]).toMatchObject({ outstanding: 200 });
    const other = await device.recordSale({ lines: [{ item: cola.id, quantity: 1 }] });
    await device.voidSale({ invoice: other.id, reason: "wrong item" });
    expect(device.provisional().stock[cola.id]).toBe(8);
    expect(device.ownEntries().map((e) => e.status)).toEqual(["undecided", "undecided", "undecided", "undecided", "undecided"]);

    await device.whenSynced(30_000);
    const held = await relayEntries(relay, team.registryUrl);
    expect(held.entries.size).toBe(5);
    expect(held.segments).toEqual(["till-1/0"]);
  });

  it("refuses bad input to every ledger operation and writes nothing", async () => {
    const cola = device.catalog().items[0]!;
    const before = device.entries().length;
    const seg = device.currentSegment();
    await expectRefused(device.recordSale({ lines: [] }), /at least 1 line/);
    await expectRefused(device.recordSale({ lines: [{ item: cola.id, quantity: 0 }] }), /quantity > 0/);
    await expectRefused(device.recordSale({ lines: [{ item: cola.id, quantity: 1.5 }] }), /quantity must be a positive integer/);
    await expectRefused(device.recordSale({ lines: [{ item: "nope", quantity: 1 }] }), /not in the catalog/);
    await expectRefused(device.recordSale({ lines: [{ item: cola.id, quantity: 1, price: -1 }] }), /price/);
    await expectRefused(device.recordSale({ lines: [{ item: cola.id, quantity: 1 }], paid: 1_000 }), /Paid amount cannot exceed total/);
    await expectRefused(device.recordSale({ lines: [{ item: cola.id, quantity: 1 }], discount: 10_000 }), /discount/);
    await expectRefused(device.recordSale({ lines: [{ item: cola.id, quantity: 1 }], customer: "has space" }), /customer/);
    await expectRefused(device.recordPayment({ invoice: "no-such-invoice", amount: 10 }), /unknown invoice/);
    await expectRefused(device.recordPayment({ invoice: device.invoices()[0]!.id, amount: 0 }), /amount > 0/);
    await expectRefused(device.recordPayment({ invoice: device.invoices()[0]!.id, amount: 1e6 }), /exceeds outstanding/);
    await expectRefused(device.recordPayment({ invoice: device.invoices()[0]!.id, amount: Number.NaN }), /amount/);
    await expectRefused(device.recordStock({ item: cola.id, delta: 0, reason: "x" }), /non-zero/);
    await expectRefused(device.recordStock({ item: "ghost", delta: 5, reason: "x" }), /not in the catalog/);
    const voided = device.invoices().find((i) => device.entries().some((e) => e.kind === "void" && e.invoice === i.id))!;
    await expectRefused(device.voidSale({ invoice: voided.id, reason: "again" }), /already void/);
    await expectRefused(device.voidSale({ invoice: "ghost", reason: "x" }), /unknown invoice/);
    await expectRefused(device.catalogEditor.addItem({ name: "", price: 1 }), /name/);
    await expectRefused(device.catalogEditor.repriceItem(cola.id, -5), /price/);
    expect(device.entries().length).toBe(before);
    expect(device.currentSegment()).toEqual(seg);
  });

  it("writes with no network after enrollment and syncs when back online", async () => {
    device.goOffline();
    await eventually(() => !device.online, "offline");
    const cola = device.catalog().items[0]!;
    const progress: number[] = [];
    const off = device.on("progress", (e) => progress.push(e.pending));
    for (let i = 0; i < 5; i++) await device.recordSale({ lines: [{ item: cola.id, quantity: 1 }] });
    await eventually(() => device.pendingCount() === 5, "5 pending");
    // Progress events are throttled: wait for the one that reports the offline backlog.
    await eventually(() => progress.includes(5), "a progress event reporting 5 pending", 5_000);
    device.goOnline();
    await device.whenSynced(30_000);
    await eventually(() => progress.includes(0), "a progress event reporting 0 pending", 5_000);
    off();
    expect((await relayEntries(relay, team.registryUrl)).entries.size).toBe(10);
  });
});
