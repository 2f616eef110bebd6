// Runtime validation of anything a peer or a client may send. Every function here is total:
// whatever `raw` is (proxies, throwing getters, cycles, huge arrays), it returns a result and
// never throws. Outputs are fresh plain objects holding only known fields, so nothing hostile
// (accessors, prototypes, extra keys) flows further.
import {
  MAX_ACTOR_LENGTH,
  MAX_BATCH_ENTRIES,
  MAX_ID_LENGTH,
  MAX_LINES,
  MAX_MONEY,
  MAX_NAME_LENGTH,
  MAX_PHONE_LENGTH,
  MAX_QUANTITY,
  MAX_STOCK_DELTA,
  MAX_TEXT_LENGTH,
  MAX_UNIT_LENGTH,
} from "./bounds.js";
import type {
  Customer,
  EntryKind,
  Group,
  Item,
  LedgerEntry,
  SaleLine,
} from "./types.js";

export type EntryParse = { ok: true; entry: LedgerEntry } | { ok: false; reason: string };
export type ItemParse = { ok: true; item: Item } | { ok: false; reason: string };
export type GroupParse = { ok: true; group: Group } | { ok: false; reason: string };
export type CustomerParse = { ok: true; customer: Customer } | { ok: false; reason: string };

const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]*$/;
const ID_RULE = `must be an id (1-${MAX_ID_LENGTH} letters, digits, '.', '_', ':' or '-', starting with a letter or digit)`;
// Devices write `new Date().toISOString()`; one UTC form keeps (at, id) ordering and the
// UTC day of daily summaries unambiguous.
const AT_PATTERN = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d{1,3})?Z$/;
const MAX_FIELDS = 16;

export const ENTRY_KINDS: readonly EntryKind[] = ["sale", "payment", "stock", "void", "allowance"];
const COMMON_FIELDS = ["id", "kind", "at", "device", "user", "batch", "batchSize"] as const;
const KIND_FIELDS: Record<EntryKind, readonly string[]> = {
  sale: ["lines", "subtotal", "tax", "discount", "total", "customer", "paid"],
  payment: ["invoice", "amount"],
  stock: ["item", "delta", "reason"],
  void: ["invoice", "reason"],
  allowance: ["item", "holder", "granted"],
};
const LINE_FIELDS = ["item", "quantity", "price", "name", "claim"] as const;

/** Thrown inside this module only; turned into a reason at the boundary. */
class Invalid {
  constructor(readonly message: string) {}
}

// Deliberately not a type guard: a string that fails is still a string to callers.
export function isId(value: unknown): boolean {
  return typeof value === "string" && value.length > 0 && value.length <= MAX_ID_LENGTH && ID_PATTERN.test(value);
}

/** How a key is named in reasons: itself when it is a well-formed id, else a short quoted excerpt. */
export function keyLabel(key: unknown): string {
  if (typeof key !== "string") return "(non-string key)";
  if (isId(key)) return key;
  return JSON.stringify(key.length > 40 ? `${key.slice(0, 40)}…` : key);
}

/** Milliseconds since the epoch of a valid `at`, or NaN. */
export function atMillis(at: string): number {
  const m = AT_PATTERN.exec(at);
  if (!m) return Number.NaN;
  const ms = Date.parse(at);
  if (Number.isNaN(ms)) return Number.NaN;
  // Date.parse rolls 2025-02-30 over to March; a real calendar date must round-trip.
  if (new Date(ms).toISOString().slice(0, 19) !== at.slice(0, 19)) return Number.NaN;
  return ms;
}

type Fields = Map<string, unknown>;

/**
 * Own data properties of a plain-looking object, restricted to `allowed`. Accessors are refused
 * without being called, so a throwing or slow getter cannot run.
 */
function readFields(raw: unknown, allowed: readonly string[], path: string): Fields {
  const at = path === "" ? "" : `${path} `;
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new Invalid(`${at}must be an object`);
  }
  const keys = Object.keys(raw);
  if (keys.length > MAX_FIELDS) throw new Invalid(`${at}has too many fields (${keys.length})`);
  const out: Fields = new Map();
  for (const key of keys) {
    const name = path === "" ? key : `${path}.${key}`;
    if (!allowed.includes(key)) throw new Invalid(`unknown field ${JSON.stringify(name.length > 60 ? `${name.slice(0, 60)}…` : name)}`);
    const desc = Object.getOwnPropertyDescriptor(raw, key);
    if (desc === undefined) continue;
    if (!("value" in desc)) throw new Invalid(`${name} must be a data property, not an accessor`);
    out.set(key, desc.value);
  }
  return out;
}

function required(fields: Fields, key: string, name: string): unknown {
  if (!fields.has(key)) throw new Invalid(`${name} is required`);
  return fields.get(key);
}

function readString(value: unknown, name: string, max: number, allowEmpty: boolean): string {
  if (typeof value !== "string") throw new Invalid(`${name} must be a string`);
  if (value.length > max) throw new Invalid(`${name} must be at most ${max} characters`);
  if (!allowEmpty && value.length === 0) throw new Invalid(`${name} must not be empty`);
  return value;
}

function readId(value: unknown, name: string): string {
  if (!isId(value)) throw new Invalid(`${name} ${ID_RULE}`);
  return value as string;
}

function readNullableId(value: unknown, name: string): string | null {
  if (value === null) return null;
  if (!isId(value)) throw new Invalid(`${name} must be null or an id`);
  return value as string;
}

/** Integers only; -0 becomes 0 so equal values hash equally. */
function readInt(value: unknown, name: string, min: number, max: number, rule: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new Invalid(`${name} ${rule}`);
  }
  return value === 0 ? 0 : value;
}

function readMoney(value: unknown, name: string): number {
  return readInt(value, name, 0, MAX_MONEY, `must be an integer of minor units between 0 and ${MAX_MONEY}`);
}

/** Signs are business rules (with classic messages) rather than shape, so negatives pass here. */
function readSignedMoney(value: unknown, name: string): number {
  return readInt(value, name, -MAX_MONEY, MAX_MONEY, `must be an integer of minor units between ${-MAX_MONEY} and ${MAX_MONEY}`);
}

function readDelta(value: unknown): number {
  const rule = `must be a non-zero integer between ${-MAX_STOCK_DELTA} and ${MAX_STOCK_DELTA}`;
  const delta = readInt(value, "delta", -MAX_STOCK_DELTA, MAX_STOCK_DELTA, rule);
  if (delta === 0) throw new Invalid(`delta ${rule}`);
  return delta;
}

function readAt(value: unknown): string {
  if (typeof value !== "string" || value.length > 30 || Number.isNaN(atMillis(value))) {
    throw new Invalid("at must be an ISO 8601 UTC timestamp such as 2025-01-12T10:00:00.000Z");
  }
  return value;
}

function readLine(raw: unknown, path: string): SaleLine {
  const f = readFields(raw, LINE_FIELDS, path);
  const item = readId(required(f, "item", `${path}.item`), `${path}.item`);
  const q = required(f, "quantity", `${path}.quantity`);
  if (typeof q !== "number" || !Number.isSafeInteger(q)) {
    throw new Invalid(`${path}.quantity must be a positive integer`);
  }
  if (q <= 0) throw new Invalid(`${path} must have quantity > 0`);
  if (q > MAX_QUANTITY) throw new Invalid(`${path}.quantity must be at most ${MAX_QUANTITY}`);
  const price = readInt(required(f, "price", `${path}.price`), `${path}.price`, 0, MAX_MONEY,
    `must be a non-negative integer of minor units at most ${MAX_MONEY}`);
  if (q * price > MAX_MONEY) {
    throw new Invalid(`${path} amount (quantity × price) must be at most ${MAX_MONEY}`);
  }
  const line: SaleLine = { item, quantity: q, price };
  if (f.has("name")) line.name = readString(f.get("name"), `${path}.name`, MAX_NAME_LENGTH, false);
  if (f.has("claim")) {
    line.claim = readInt(f.get("claim"), `${path}.claim`, 0, MAX_STOCK_DELTA, `must be an integer between 0 and ${MAX_STOCK_DELTA}`);
  }
  return line;
}

function readLines(value: unknown): SaleLine[] {
  if (!Array.isArray(value)) throw new Invalid("lines must be an array");
  // Length first: a 100,000-element array is refused without touching its elements.
  const length: number = value.length;
  if (length > MAX_LINES) throw new Invalid(`lines must have at most ${MAX_LINES} lines`);
  if (length === 0) throw new Invalid("lines must have at least 1 line");
  const lines: SaleLine[] = [];
  for (let i = 0; i < length; i++) {
    const desc = Object.getOwnPropertyDescriptor(value, i);
    if (desc !== undefined && !("value" in desc)) {
      throw new Invalid(`lines[${i}] must be a data property, not an accessor`);
    }
    lines.push(readLine(desc?.value, `lines[${i}]`));
  }
  return lines;
}

function readEntry(key: string, raw: unknown): LedgerEntry {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new Invalid("must be an object");
  const kindDesc = Object.getOwnPropertyDescriptor(raw, "kind");
  const kind: unknown = kindDesc && "value" in kindDesc ? kindDesc.value : undefined;
  if (typeof kind !== "string" || !(ENTRY_KINDS as readonly string[]).includes(kind)) {
    throw new Invalid(`kind must be one of ${ENTRY_KINDS.join(", ")}`);
  }
  const k = kind as EntryKind;
  const f = readFields(raw, [...COMMON_FIELDS, ...KIND_FIELDS[k]], "");
  const id = readId(required(f, "id", "id"), "id");
  if (id !== key) throw new Invalid("id must equal the key it is stored under");
  const at = readAt(required(f, "at", "at"));
  const device = readString(required(f, "device", "device"), "device", MAX_ACTOR_LENGTH, false);
  const user = readString(required(f, "user", "user"), "user", MAX_ACTOR_LENGTH, false);
  const base: { id: string; at: string; device: string; user: string; batch?: string; batchSize?: number } = { id, at, device, user };
  if (f.has("batch") || f.has("batchSize")) {
    base.batch = readId(required(f, "batch", "batch"), "batch");
    base.batchSize = readInt(required(f, "batchSize", "batchSize"), "batchSize", 1, MAX_BATCH_ENTRIES,
      `must be an integer between 1 and ${MAX_BATCH_ENTRIES}`);
  }
  switch (k) {
    case "sale":
      return {
        ...base,
        kind: "sale",
        lines: readLines(required(f, "lines", "lines")),
        subtotal: readMoney(required(f, "subtotal", "subtotal"), "subtotal"),
        tax: readMoney(required(f, "tax", "tax"), "tax"),
        discount: readMoney(required(f, "discount", "discount"), "discount"),
        total: readSignedMoney(required(f, "total", "total"), "total"),
        customer: readNullableId(required(f, "customer", "customer"), "customer"),
        paid: readSignedMoney(required(f, "paid", "paid"), "paid"),
      };
    case "payment":
      return {
        ...base,
        kind: "payment",
        invoice: readId(required(f, "invoice", "invoice"), "invoice"),
        amount: readSignedMoney(required(f, "amount", "amount"), "amount"),
      };
    case "stock":
      return {
        ...base,
        kind: "stock",
        item: readId(required(f, "item", "item"), "item"),
        delta: readDelta(required(f, "delta", "delta")),
        reason: readString(required(f, "reason", "reason"), "reason", MAX_TEXT_LENGTH, true),
      };
    case "void":
      return {
        ...base,
        kind: "void",
        invoice: readId(required(f, "invoice", "invoice"), "invoice"),
        reason: readString(required(f, "reason", "reason"), "reason", MAX_TEXT_LENGTH, true),
      };
    case "allowance":
      return {
        ...base,
        kind: "allowance",
        item: readId(required(f, "item", "item"), "item"),
        holder: readString(required(f, "holder", "holder"), "holder", MAX_ACTOR_LENGTH, false),
        granted: readInt(required(f, "granted", "granted"), "granted", 0, MAX_STOCK_DELTA, `must be an integer between 0 and ${MAX_STOCK_DELTA}`),
      };
  }
}

/**
 * Runs `read` and turns every failure into a reason prefixed with what was judged. Exceptions
 * that are not ours come from hostile objects (proxy traps, exotic objects) and are reported
 * without their text, which the sender controls.
 */
function guarded<T>(prefix: string, key: unknown, read: (key: string) => T): { ok: true; value: T } | { ok: false; reason: string } {
  const label = `${prefix} ${keyLabel(key)}`;
  try {
    if (!isId(key)) return { ok: false, reason: `${label}: key ${ID_RULE}` };
    return { ok: true, value: read(key as string) };
  } catch (err) {
    if (err instanceof Invalid) return { ok: false, reason: `${label}: ${err.message}` };
    return { ok: false, reason: `${label}: could not be read` };
  }
}

export function parseEntry(key: string, raw: unknown): EntryParse {
  const r = guarded("entry", key, (k) => readEntry(k, raw));
  return r.ok ? { ok: true, entry: r.value } : r;
}

function readWithId(key: string, raw: unknown, allowed: readonly string[]): Fields {
  const f = readFields(raw, allowed, "");
  const id = readId(required(f, "id", "id"), "id");
  if (id !== key) throw new Invalid("id must equal the key it is stored under");
  return f;
}

export function parseItem(key: string, raw: unknown): ItemParse {
  const r = guarded("item", key, (k): Item => {
    const f = readWithId(k, raw, ["id", "name", "price", "unit", "group", "description", "active"]);
    const active = required(f, "active", "active");
    if (typeof active !== "boolean") throw new Invalid("active must be a boolean");
    return {
      id: k,
      name: readString(required(f, "name", "name"), "name", MAX_NAME_LENGTH, false),
      price: readMoney(required(f, "price", "price"), "price"),
      unit: readString(required(f, "unit", "unit"), "unit", MAX_UNIT_LENGTH, false),
      group: readNullableId(required(f, "group", "group"), "group"),
      description: readString(required(f, "description", "description"), "description", MAX_TEXT_LENGTH, true),
      active,
    };
  });
  return r.ok ? { ok: true, item: r.value } : r;
}

export function parseGroup(key: string, raw: unknown): GroupParse {
  const r = guarded("group", key, (k): Group => {
    const f = readWithId(k, raw, ["id", "name"]);
    return { id: k, name: readString(required(f, "name", "name"), "name", MAX_NAME_LENGTH, false) };
  });
  return r.ok ? { ok: true, group: r.value } : r;
}

export function parseCustomer(key: string, raw: unknown): CustomerParse {
  const r = guarded("customer", key, (k): Customer => {
    const f = readWithId(k, raw, ["id", "name", "phone"]);
    const phone = required(f, "phone", "phone");
    return {
      id: k,
      name: readString(required(f, "name", "name"), "name", MAX_NAME_LENGTH, false),
      phone: phone === null ? null : readString(phone, "phone", MAX_PHONE_LENGTH, false),
    };
  });
  return r.ok ? { ok: true, customer: r.value } : r;
}
