/**
 * Ledger entries and documents for the benchmarks. Building a 10,000-entry document through
 * `A.change` costs ~8 ms per entry at that size (the JS view of the whole map is rebuilt each
 * time: 77 s measured here), so documents are written through the low-level backend instead:
 * the same operations `A.change` would record (strings as text, integers as int, one change per
 * entry, as a device writes them), in a fraction of the time. `checkFixture` compares the two.
 */
import { randomUUID } from "node:crypto";
import * as A from "@automerge/automerge";
import type { LedgerEntry, SaleEntry } from "../../shared/domain/index.js";

type Backend = ReturnType<typeof A.getBackend>;

/** A one-line cash sale that names its item: valid for the materializer, needs no stock. */
export function saleEntry(device: string, user: string, at = new Date().toISOString(), price = 1000): SaleEntry {
  return {
    id: randomUUID(),
    kind: "sale",
    at,
    device,
    user,
    lines: [{ item: `bench-${randomUUID()}`, quantity: 1, price, name: "Widget" }],
    subtotal: price,
    tax: 0,
    discount: 0,
    total: price,
    customer: null,
    paid: price,
  };
}

/** `n` sales of one device, with device clocks one second apart (arrival order is their order). */
export function salesOf(device: string, n: number, start = Date.UTC(2026, 0, 5, 8)): SaleEntry[] {
  return Array.from({ length: n }, (_, i) => saleEntry(device, `user-${device}`, new Date(start + i * 1000).toISOString()));
}

/**
 * One till's ledger as a shop writes it, for the scale benchmark: every 20th entry receives 200
 * units of one of the till's 10 items, the rest sell one of them; every 4th sale is on credit to
 * one of 50 customers and is paid in full ten entries later. Entries are `gapMs` apart (10 min:
 * ~2,900 entries a day across 20 tills), so daily summaries have the size a busy shop's have.
 * Sales of an item before its first delivery are rejected (insufficient stock), as they would be.
 */
export function shopLedger(device: string, n: number, start: number, gapMs = 600_000): LedgerEntry[] {
  const out: LedgerEntry[] = [];
  const credit: { id: string; total: number; due: number }[] = [];
  for (let i = 0; i < n; i++) {
    const at = new Date(start + i * gapMs).toISOString();
    const base = { id: randomUUID(), at, device, user: `user-${device}` };
    const owed = credit[0];
    if (owed && owed.due <= i) {
      credit.shift();
      out.push({ ...base, kind: "payment", invoice: owed.id, amount: owed.total });
    } else if (i % 20 === 0) {
      out.push({ ...base, kind: "stock", item: `${device}-item-${(i / 20) % 10}`, delta: 200, reason: "delivery" });
    } else {
      const price = 500 + (i % 10) * 100;
      const onCredit = i % 4 === 1;
      const sale: SaleEntry = {
        ...base, kind: "sale", lines: [{ item: `${device}-item-${i % 10}`, quantity: 1, price, name: `Item ${i % 10}` }],
        subtotal: price, tax: 0, discount: 0, total: price,
        customer: onCredit ? `customer-${i % 50}` : null, paid: onCredit ? 0 : price,
      };
      if (onCredit) credit.push({ id: sale.id, total: price, due: i + 10 });
      out.push(sale);
    }
  }
  return out;
}

function putValue(be: Backend, obj: string, prop: string | number, value: unknown, insert: boolean): void {
  const isList = insert && typeof prop === "number";
  if (typeof value === "string") {
    // A.change stores JS strings as text objects; keep the same shape (and size).
    if (isList) be.insertObject(obj, prop, value);
    else be.putObject(obj, prop, value);
  } else if (typeof value === "number") {
    const dt = Number.isInteger(value) ? "int" : "f64";
    if (isList) be.insert(obj, prop, value, dt);
    else be.put(obj, prop, value, dt);
  } else if (value === null || typeof value === "boolean") {
    if (isList) be.insert(obj, prop, value);
    else be.put(obj, prop, value);
  } else if (Array.isArray(value)) {
    const list = isList ? be.insertObject(obj, prop, []) : be.putObject(obj, prop, []);
    value.forEach((v, i) => putValue(be, list, i, v, true));
  } else if (typeof value === "object") {
    const map = isList ? be.insertObject(obj, prop, {}) : be.putObject(obj, prop, {});
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) putValue(be, map, k, v, false);
  }
}

export interface SegmentHeader {
  team: string;
  device: string;
  n: number;
  createdAt: string;
}

/**
 * A ledger segment document (shared/docs.ts shape) holding `entries`, one change per entry.
 * Returns the saved bytes, for `repo.import`.
 */
export function buildSegment(header: SegmentHeader, entries: readonly LedgerEntry[]): Uint8Array {
  const doc = A.from<Record<string, unknown>>({ type: "ledger-segment", ...header, entries: {} });
  const be = A.getBackend(A.clone(doc));
  const map = be.get("_root", "entries");
  if (typeof map !== "string") throw new Error("segment without an entries map");
  for (const e of entries) {
    putValue(be, map, e.id, e, false);
    be.commit(null, Math.floor(Date.parse(e.at) / 1000));
  }
  return be.save();
}

/** The same entries through `A.change` (slow): to check the fast builder keeps the shape. */
export function buildSegmentSlow(header: SegmentHeader, entries: readonly LedgerEntry[]): Uint8Array {
  let doc = A.from<{ entries: Record<string, unknown> }>({ type: "ledger-segment", ...header, entries: {} } as never);
  for (const e of entries) {
    doc = A.change(doc, (d) => {
      d.entries[e.id] = JSON.parse(JSON.stringify(e)) as unknown;
    });
  }
  return A.save(doc);
}
