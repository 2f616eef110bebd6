import {
  DEFAULT_SETTINGS,
  decideBatch,
  emptyState,
  withCatalogItems,
  type BatchInput,
  type Item,
  type LedgerState,
  type TeamSettings,
} from "../../../shared/domain/index.js";

export const AT = "2025-01-12T10:00:00.000Z";
export const NOW = "2025-01-13T00:00:00.000Z";

export function item(id: string, over: Partial<Item> = {}): Item {
  return { id, name: `Item ${id}`, price: 100, unit: "nos", group: null, description: "", active: true, ...over };
}

export function base(id: string, at = AT): { id: string; at: string; device: string; user: string } {
  return { id, at, device: "dev-1", user: "user-1" };
}

export type Line = { item: string; quantity: number; price: number; name?: string };

export function sale(
  id: string,
  lines: Line[],
  over: Record<string, unknown> = {},
): Record<string, unknown> {
  const subtotal = lines.reduce((s, l) => s + l.quantity * l.price, 0);
  const tax = typeof over.tax === "number" ? over.tax : 0;
  const discount = typeof over.discount === "number" ? over.discount : 0;
  return {
    ...base(id),
    kind: "sale",
    lines,
    subtotal,
    tax,
    discount,
    total: subtotal + tax - discount,
    customer: null,
    paid: 0,
    ...over,
  };
}

export function payment(id: string, invoice: string, amount: number, at = AT): Record<string, unknown> {
  return { ...base(id, at), kind: "payment", invoice, amount };
}

export function stock(id: string, itemId: string, delta: number, at = AT): Record<string, unknown> {
  return { ...base(id, at), kind: "stock", item: itemId, delta, reason: "receipt" };
}

export function voidEntry(id: string, invoice: string, at = AT): Record<string, unknown> {
  return { ...base(id, at), kind: "void", invoice, reason: "customer cancelled" };
}

export function input(raw: Record<string, unknown>): BatchInput {
  return { key: String(raw.id), raw };
}

/** A state whose catalog holds `items` and whose stock is `levels`. */
export function stateWith(items: Item[], levels: Record<string, number> = {}): LedgerState {
  const s = withCatalogItems(emptyState(), items);
  return { ...s, stock: { ...levels } };
}

export function decide(
  state: LedgerState,
  raws: Record<string, unknown>[],
  settings: TeamSettings = DEFAULT_SETTINGS,
  now = NOW,
) {
  return decideBatch(state, raws.map(input), settings, now);
}
