/**
 * What the crash tests (the materializer alone, and the whole service tree) write and compare:
 * a seeded, messy ledger per till (deliveries, sales some paid, payments some overpaid, voids,
 * malformed sales), and a team's collections with what differs from run to run removed.
 */
import type { DocHandle } from "@automerge/automerge-repo";
import type { Document } from "mongodb";
import { JOURNAL_PROJECTIONS, type Collections } from "../../../server/materializer/collections.js";
import type { CatalogDoc } from "../../../shared/docs.js";
import { sale, type Device } from "./harness.js";

/** A small deterministic generator, so a failing run can be replayed. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** Three items per till: `item-<till>-<0..2>`, priced 100, 150 and 200. */
export function seedItems(catalog: DocHandle<CatalogDoc>, tills: number): void {
  catalog.change((d) => {
    for (let dev = 0; dev < tills; dev++) {
      for (let k = 0; k < 3; k++) {
        const id = `item-${dev}-${k}`;
        d.items[id] = { id, name: `Item ${dev}.${k}`, price: 100 + k * 50, unit: "pcs", group: null, description: "", active: true };
      }
    }
  });
}

/** Till `dev`'s ledger of `entries`, dated `perDay` a day over consecutive days, the same in every run. */
export function writeMessyLedger(device: Device, dev: number, entries: number, perDay: number): void {
  const random = rng(1000 + dev);
  const open: { id: string; outstanding: number }[] = [];
  let second = 0;
  const at = (): string => new Date(Date.UTC(2026, 10, 1 + Math.floor(second / perDay), 8, 0, 0) + (second++ % perDay) * 60_000).toISOString();
  for (let i = 0; i < entries; i++) {
    const id = `e-${dev}-${i}`;
    const item = `item-${dev}-${Math.floor(random() * 3)}`;
    const roll = random();
    if (roll < 0.15) {
      device.write({ id, kind: "stock", item, delta: 1 + Math.floor(random() * 6), reason: "delivery", at: at() });
    } else if (roll < 0.6) {
      const qty = 1 + Math.floor(random() * 3);
      const price = 100 + Number(item.slice(-1)) * 50;
      const paid = random() < 0.3 ? qty * price : 0;
      device.write({ id, ...sale(item, qty, price, { customer: `cust-${dev}-${Math.floor(random() * 5)}`, paid }), at: at() });
      if (paid === 0) open.push({ id, outstanding: qty * price });
    } else if (roll < 0.9 && open.length > 0) {
      const inv = open[Math.floor(random() * open.length)]!;
      // Some overpay on purpose.
      const amount = Math.max(1, Math.floor(inv.outstanding * (random() < 0.2 ? 1.5 : 0.6)));
      device.write({ id, kind: "payment", invoice: inv.id, amount, at: at() });
    } else if (roll < 0.95 && open.length > 0) {
      device.write({ id, kind: "void", invoice: open.pop()!.id, reason: "customer changed mind", at: at() });
    } else {
      device.write({ id, kind: "sale", lines: [{ item, quantity: -1, price: 5 }], subtotal: -5, tax: 0, discount: 0, total: -5, customer: null, paid: 0, at: at() });
    }
  }
}

/** A team's collections with the team and run-specific fields (seq, timestamps, segment ids) removed. */
export async function comparable(c: Collections, team: string, opts: { parts?: boolean } = {}): Promise<Record<string, Document[]>> {
  const strip = (doc: Document): Document => {
    const { _id, team: _t, seq: _s, segment: _g, decidedAt: _d, updatedAt: _u, ...rest } = doc;
    return { _id: String(_id).slice(team.length + 1), ...rest };
  };
  const out: Record<string, Document[]> = {};
  for (const name of [...JOURNAL_PROJECTIONS, ...(opts.parts ? (["parts"] as const) : [])]) {
    out[name] = (await c[name].find({ team }).toArray()).map(strip).sort((a, b) => (a._id < b._id ? -1 : 1));
  }
  out.journal = (await c.journal.find({ team }).toArray())
    .map((r) => ({ _id: r.entryId, status: r.status, reason: r.reason, flags: r.flags, hash: r.hash, entry: r.entry, effects: r.effects }))
    .sort((a, b) => (a._id < b._id ? -1 : 1));
  return out;
}
