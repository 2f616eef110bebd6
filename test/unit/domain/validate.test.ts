import { describe, expect, it } from "vitest";
import {
  MAX_LINES,
  parseCustomer,
  parseEntry,
  parseGroup,
  parseItem,
} from "../../../shared/domain/index.js";
import { base, item, payment, sale, stock, voidEntry } from "./fixtures.js";

const ID = "7f3c2a10-0000-4000-8000-000000000001";

function reason(key: string, raw: unknown): string {
  const r = parseEntry(key, raw);
  expect(r.ok).toBe(false);
  return r.ok ? "" : r.reason;
}

function validSale(over: Record<string, unknown> = {}): Record<string, unknown> {
  return sale(ID, [{ item: "i1", quantity: 2, price: 150 }], over);
}

describe("parseEntry accepts well-formed entries", () => {
  it("parses each kind into a fresh object with only known fields", () => {
    const raws = [validSale(), payment(ID, "inv-1", 10), stock(ID, "i1", -3), voidEntry(ID, "inv-1")];
    for (const raw of raws) {
      const r = parseEntry(ID, raw);
      expect(r.ok).toBe(true);
      if (!r.ok) continue;
      expect(r.entry).toEqual(raw);
      expect(r.entry).not.toBe(raw);
      expect(Object.getPrototypeOf(r.entry)).toBe(Object.prototype);
    }
  });

  it("keeps an optional line name and copies lines", () => {
    const raw = sale(ID, [{ item: "new-1", quantity: 1, price: 5, name: "Tea" }]);
    const r = parseEntry(ID, raw);
    expect(r.ok && r.entry.kind === "sale" && r.entry.lines[0]).toEqual({ item: "new-1", quantity: 1, price: 5, name: "Tea" });
    expect(r.ok && r.entry.kind === "sale" && r.entry.lines).not.toBe(raw.lines);
  });

  it("normalizes -0 to 0", () => {
    const r = parseEntry(ID, validSale({ tax: -0, discount: -0, paid: -0 }));
    expect(r.ok).toBe(true);
    if (r.ok && r.entry.kind === "sale") expect(Object.is(r.entry.paid, 0)).toBe(true);
  });

  it("accepts timestamps without or with fewer fractional digits", () => {
    expect(parseEntry(ID, { ...validSale(), at: "2025-01-12T10:00:00Z" }).ok).toBe(true);
    expect(parseEntry(ID, { ...validSale(), at: "2024-02-29T23:59:59.5Z" }).ok).toBe(true);
  });
});

describe("parseEntry rejects hostile input with a reason naming the entry and field", () => {
  const cases: [string, unknown, string][] = [
    ["null", null, `entry ${ID}: must be an object`],
    ["a string", "sale", `entry ${ID}: must be an object`],
    ["an array", [], `entry ${ID}: must be an object`],
    ["unknown kind", { ...validSale(), kind: "refund" }, `entry ${ID}: kind must be one of sale, payment, stock, void, allowance`],
    ["missing kind", { id: ID }, `entry ${ID}: kind must be one of sale, payment, stock, void, allowance`],
    ["extra field", { ...validSale(), note: "hi" }, `entry ${ID}: unknown field "note"`],
    ["constructor key", { ...validSale(), constructor: 1 }, `entry ${ID}: unknown field "constructor"`],
    ["prototype key", { ...validSale(), prototype: {} }, `entry ${ID}: unknown field "prototype"`],
    ["__proto__ key", JSON.parse(JSON.stringify({ ...validSale(), x: 1 }).replace('"x"', '"__proto__"')), `entry ${ID}: unknown field "__proto__"`],
    ["__proto__ key in a line", sale(ID, [JSON.parse('{"item":"i1","quantity":1,"price":1,"__proto__":{"admin":true}}')]), `entry ${ID}: unknown field "lines[0].__proto__"`],
    ["too many fields", Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`f${i}`, i]).concat([["kind", "sale"]])), `entry ${ID}: has too many fields (21)`],
    ["id differs from key", { ...validSale(), id: "other" }, `entry ${ID}: id must equal the key it is stored under`],
    ["missing id", (() => { const r = validSale(); delete r.id; return r; })(), `entry ${ID}: id is required`],
    ["missing at", (() => { const r = validSale(); delete r.at; return r; })(), `entry ${ID}: at is required`],
    ["bad at", { ...validSale(), at: "yesterday" }, `entry ${ID}: at must be an ISO 8601 UTC timestamp such as 2025-01-12T10:00:00.000Z`],
    ["impossible date", { ...validSale(), at: "2025-02-30T10:00:00.000Z" }, `entry ${ID}: at must be an ISO 8601 UTC timestamp such as 2025-01-12T10:00:00.000Z`],
    ["offset at", { ...validSale(), at: "2025-01-12T10:00:00+02:00" }, `entry ${ID}: at must be an ISO 8601 UTC timestamp such as 2025-01-12T10:00:00.000Z`],
    ["numeric at", { ...validSale(), at: 1736676000000 }, `entry ${ID}: at must be an ISO 8601 UTC timestamp such as 2025-01-12T10:00:00.000Z`],
    ["empty device", { ...validSale(), device: "" }, `entry ${ID}: device must not be empty`],
    ["megabyte user", { ...validSale(), user: "u".repeat(1 << 20) }, `entry ${ID}: user must be at most 128 characters`],
    ["lines not an array", validSale({ lines: { 0: {} } }), `entry ${ID}: lines must be an array`],
    ["no lines", validSale({ lines: [] }), `entry ${ID}: lines must have at least 1 line`],
    ["100,000 lines", validSale({ lines: Array.from({ length: 100_000 }, () => ({ item: "i1", quantity: 1, price: 1 })) }), `entry ${ID}: lines must have at most ${MAX_LINES} lines`],
    ["sparse line", validSale({ lines: [ , { item: "i1", quantity: 1, price: 1 }] }), `entry ${ID}: lines[0] must be an object`],
    ["line is a number", validSale({ lines: [{ item: "i1", quantity: 1, price: 1 }, 5] }), `entry ${ID}: lines[1] must be an object`],
    ["zero quantity", validSale({ lines: [{ item: "i1", quantity: 0, price: 1 }] }), `entry ${ID}: lines[0] must have quantity > 0`],
    ["negative quantity", validSale({ lines: [{ item: "i1", quantity: 1, price: 1 }, { item: "i1", quantity: 1, price: 1 }, { item: "i1", quantity: -2, price: 1 }] }), `entry ${ID}: lines[2] must have quantity > 0`],
    ["-0 quantity", validSale({ lines: [{ item: "i1", quantity: -0, price: 1 }] }), `entry ${ID}: lines[0] must have quantity > 0`],
    ["fractional quantity", validSale({ lines: [{ item: "i1", quantity: 1.5, price: 1 }] }), `entry ${ID}: lines[0].quantity must be a positive integer`],
    ["NaN quantity", validSale({ lines: [{ item: "i1", quantity: Number.NaN, price: 1 }] }), `entry ${ID}: lines[0].quantity must be a positive integer`],
    ["Infinity quantity", validSale({ lines: [{ item: "i1", quantity: Infinity, price: 1 }] }), `entry ${ID}: lines[0].quantity must be a positive integer`],
    ["string quantity", validSale({ lines: [{ item: "i1", quantity: "2", price: 1 }] }), `entry ${ID}: lines[0].quantity must be a positive integer`],
    ["quantity beyond bound", validSale({ lines: [{ item: "i1", quantity: 1_000_001, price: 1 }] }), `entry ${ID}: lines[0].quantity must be at most 1000000`],
    ["negative price", validSale({ lines: [{ item: "i1", quantity: 1, price: -1 }] }), `entry ${ID}: lines[0].price must be a non-negative integer of minor units at most 1000000000000`],
    ["unsafe price", validSale({ lines: [{ item: "i1", quantity: 1, price: 2 ** 53 }] }), `entry ${ID}: lines[0].price must be a non-negative integer of minor units at most 1000000000000`],
    ["line amount beyond bound", validSale({ lines: [{ item: "i1", quantity: 1000, price: 1_000_000_000_000 }] }), `entry ${ID}: lines[0] amount (quantity × price) must be at most 1000000000000`],
    ["missing line item", validSale({ lines: [{ quantity: 1, price: 1 }] }), `entry ${ID}: lines[0].item is required`],
    ["bad line item id", validSale({ lines: [{ item: "__proto__", quantity: 1, price: 1 }] }), `entry ${ID}: lines[0].item must be an id (1-64 letters, digits, '.', '_', ':' or '-', starting with a letter or digit)`],
    ["empty line name", validSale({ lines: [{ item: "i1", quantity: 1, price: 1, name: "" }] }), `entry ${ID}: lines[0].name must not be empty`],
    ["NaN tax", validSale({ tax: Number.NaN }), `entry ${ID}: tax must be an integer of minor units between 0 and 1000000000000`],
    ["negative discount", validSale({ discount: -5 }), `entry ${ID}: discount must be an integer of minor units between 0 and 1000000000000`],
    ["huge subtotal", validSale({ subtotal: 1e300 }), `entry ${ID}: subtotal must be an integer of minor units between 0 and 1000000000000`],
    ["Infinity total", validSale({ total: Infinity }), `entry ${ID}: total must be an integer of minor units between -1000000000000 and 1000000000000`],
    ["bigint paid", validSale({ paid: 10n }), `entry ${ID}: paid must be an integer of minor units between -1000000000000 and 1000000000000`],
    ["customer not an id", validSale({ customer: 42 }), `entry ${ID}: customer must be null or an id`],
    ["missing customer", (() => { const r = validSale(); delete r.customer; return r; })(), `entry ${ID}: customer is required`],
    ["payment amount fractional", payment(ID, "inv-1", 0.5), `entry ${ID}: amount must be an integer of minor units between -1000000000000 and 1000000000000`],
    ["payment invoice missing", { ...base(ID), kind: "payment", amount: 1 }, `entry ${ID}: invoice is required`],
    ["zero delta", stock(ID, "i1", 0), `entry ${ID}: delta must be a non-zero integer between -1000000000 and 1000000000`],
    ["-0 delta", stock(ID, "i1", -0), `entry ${ID}: delta must be a non-zero integer between -1000000000 and 1000000000`],
    ["huge delta", stock(ID, "i1", 1e10), `entry ${ID}: delta must be a non-zero integer between -1000000000 and 1000000000`],
    ["megabyte reason", { ...voidEntry(ID, "inv-1"), reason: "x".repeat(1 << 20) }, `entry ${ID}: reason must be at most 1000 characters`],
    ["sale fields on a payment", { ...payment(ID, "inv-1", 1), lines: [] }, `entry ${ID}: unknown field "lines"`],
  ];
  for (const [name, raw, expected] of cases) {
    it(name, () => {
      expect(reason(ID, raw)).toBe(expected);
    });
  }

  it("refuses a throwing getter without calling it", () => {
    let called = false;
    const raw = validSale();
    Object.defineProperty(raw, "paid", { enumerable: true, get: () => { called = true; throw new Error("boom"); } });
    expect(reason(ID, raw)).toBe(`entry ${ID}: paid must be a data property, not an accessor`);
    expect(called).toBe(false);
  });

  it("refuses a throwing getter on a line", () => {
    const lines: unknown[] = [];
    Object.defineProperty(lines, 0, { enumerable: true, get: () => { throw new Error("boom"); } });
    expect(reason(ID, validSale({ lines }))).toBe(`entry ${ID}: lines[0] must be a data property, not an accessor`);
  });

  it("reports a proxy whose traps throw as unreadable", () => {
    const raw = new Proxy({}, { ownKeys: () => { throw new Error("trap"); }, getOwnPropertyDescriptor: () => { throw new Error("trap"); } });
    expect(reason(ID, raw)).toBe(`entry ${ID}: could not be read`);
  });

  it("reports a revoked proxy as unreadable", () => {
    const { proxy, revoke } = Proxy.revocable({}, {});
    revoke();
    expect(reason(ID, proxy)).toBe(`entry ${ID}: could not be read`);
  });

  it("is not troubled by cycles", () => {
    const raw = validSale();
    (raw as Record<string, unknown>).self = raw;
    expect(reason(ID, raw)).toBe(`entry ${ID}: unknown field "self"`);
    const line: Record<string, unknown> = { item: "i1", quantity: 1, price: 1 };
    line.name = line;
    expect(reason(ID, validSale({ lines: [line] }))).toBe(`entry ${ID}: lines[0].name must be a string`);
  });

  it("names a malformed key by a short quoted excerpt", () => {
    const key = "k".repeat(1 << 20);
    expect(reason(key, validSale())).toBe(`entry "${"k".repeat(40)}…": key must be an id (1-64 letters, digits, '.', '_', ':' or '-', starting with a letter or digit)`);
    expect(reason("__proto__", validSale())).toBe(`entry "__proto__": key must be an id (1-64 letters, digits, '.', '_', ':' or '-', starting with a letter or digit)`);
    expect(reason(5 as unknown as string, validSale())).toBe(`entry (non-string key): key must be an id (1-64 letters, digits, '.', '_', ':' or '-', starting with a letter or digit)`);
  });

  it("judges a 100,000-line entry in well under 10 ms", () => {
    const raw = validSale({ lines: Array.from({ length: 100_000 }, () => ({ item: "i1", quantity: 1, price: 1 })) });
    const t = performance.now();
    parseEntry(ID, raw);
    expect(performance.now() - t).toBeLessThan(10);
  });
});

describe("catalog parsers", () => {
  it("parse valid records", () => {
    const it1 = item("i1", { group: "g1" });
    expect(parseItem("i1", it1)).toEqual({ ok: true, item: it1 });
    expect(parseGroup("g1", { id: "g1", name: "Drinks" })).toEqual({ ok: true, group: { id: "g1", name: "Drinks" } });
    expect(parseCustomer("c1", { id: "c1", name: "Ann", phone: null })).toEqual({ ok: true, customer: { id: "c1", name: "Ann", phone: null } });
  });

  it("reject bad fields with reasons", () => {
    expect(parseItem("i1", { ...item("i1"), price: -1 })).toEqual({ ok: false, reason: "item i1: price must be an integer of minor units between 0 and 1000000000000" });
    expect(parseItem("i1", { ...item("i1"), active: "yes" })).toEqual({ ok: false, reason: "item i1: active must be a boolean" });
    expect(parseItem("i1", { ...item("i1"), stock: 5 })).toEqual({ ok: false, reason: 'item i1: unknown field "stock"' });
    expect(parseItem("i1", { ...item("i2") })).toEqual({ ok: false, reason: "item i1: id must equal the key it is stored under" });
    expect(parseGroup("g1", { id: "g1" })).toEqual({ ok: false, reason: "group g1: name is required" });
    expect(parseCustomer("c1", { id: "c1", name: "Ann", phone: 5 })).toEqual({ ok: false, reason: "customer c1: phone must be a string" });
    expect(parseCustomer("c1", null)).toEqual({ ok: false, reason: "customer c1: must be an object" });
  });
});
