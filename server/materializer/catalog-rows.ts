/**
 * The catalog's projections (items, groups, customers) as rows computed from the team's
 * registered catalog document, and the rows that did not come from it.
 *
 * Before links were checked, a root pointed at another team's catalog made the materializer
 * project that team's items, groups and customers under this team, and the rows stayed after
 * the root was restored. Catalog keys are never removed (items are deactivated, not deleted), so
 * a catalog-sourced row whose id the team's catalog does not have was not written from it.
 */
import type { CatalogDoc } from "../../shared/docs.js";
import { parseCustomer, parseGroup, parseItem } from "../../shared/domain/index.js";
import { teamKey, type Collections, type CustomerDoc, type GroupDoc, type ItemDoc } from "./collections.js";

export interface CatalogRows {
  items: ItemDoc[];
  groups: GroupDoc[];
  customers: CustomerDoc[];
}

export interface ForeignRows {
  items: string[];
  groups: string[];
  customers: string[];
}

/** Every valid item, group and customer of the catalog as the row the materializer writes for it. */
export function catalogRows(team: string, doc: CatalogDoc, now: string): CatalogRows {
  const out: CatalogRows = { items: [], groups: [], customers: [] };
  for (const [id, raw] of Object.entries(doc.items ?? {})) {
    const p = parseItem(id, raw);
    if (p.ok) out.items.push({ _id: teamKey(team, id), team, ...p.item, source: "catalog", updatedAt: now });
  }
  for (const [id, raw] of Object.entries(doc.groups ?? {})) {
    const p = parseGroup(id, raw);
    if (p.ok) out.groups.push({ _id: teamKey(team, id), team, ...p.group, updatedAt: now });
  }
  for (const [id, raw] of Object.entries(doc.customers ?? {})) {
    const p = parseCustomer(id, raw);
    if (p.ok) out.customers.push({ _id: teamKey(team, id), team, ...p.customer, updatedAt: now });
  }
  return out;
}

/** Ids of rows that are not keys of the catalog map they claim to come from. */
export function notInCatalog(rowIds: Iterable<string>, catalogMap: Record<string, unknown> | undefined): string[] {
  const keys = new Set(Object.keys(catalogMap ?? {}));
  return [...rowIds].filter((id) => !keys.has(id));
}

export async function findForeignCatalogRows(c: Collections, team: string, catalog: CatalogDoc): Promise<ForeignRows> {
  const ids = async (rows: AsyncIterable<{ id: string }>): Promise<string[]> => {
    const out: string[] = [];
    for await (const r of rows) out.push(r.id);
    return out;
  };
  // Items a sale line created (`source: "sale"`) come from the journal, not from a catalog.
  const [items, groups, customers] = await Promise.all([
    ids(c.items.find({ team, source: "catalog" }).project<{ id: string }>({ _id: 0, id: 1 })),
    ids(c.groups.find({ team }).project<{ id: string }>({ _id: 0, id: 1 })),
    ids(c.customers.find({ team }).project<{ id: string }>({ _id: 0, id: 1 })),
  ]);
  return {
    items: notInCatalog(items, catalog.items),
    groups: notInCatalog(groups, catalog.groups),
    customers: notInCatalog(customers, catalog.customers),
  };
}

/** Replaces the team's catalog rows (and every item row: call before sale items are filled in) with the catalog's. */
export async function rewriteCatalogRows(c: Collections, team: string, catalog: CatalogDoc, now: string): Promise<CatalogRows> {
  const rows = catalogRows(team, catalog, now);
  await c.items.deleteMany({ team });
  await c.groups.deleteMany({ team });
  await c.customers.deleteMany({ team });
  if (rows.items.length) await c.items.insertMany(rows.items);
  if (rows.groups.length) await c.groups.insertMany(rows.groups);
  if (rows.customers.length) await c.customers.insertMany(rows.customers);
  return rows;
}
