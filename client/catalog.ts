/**
 * Catalog reads and edits. Each edit writes only the field it changes, so concurrent edits of
 * different fields of one item (a rename here, a reprice there) both survive the merge. The
 * `items`, `groups` and `customers` maps exist from team creation and are never created here.
 */
import type { DocHandle } from "@automerge/automerge-repo";
import type { CatalogDoc } from "../shared/docs.js";
import { parseCustomer, parseGroup, parseItem, type Customer, type Group, type Item } from "../shared/domain/index.js";
import { ClientError, invalidInput } from "./errors.js";
import { editMessage } from "./catalog-conflicts.js";
import { changeSafely, type WedgeRecovery } from "./safe-change.js";

export interface CatalogView {
  items: Item[];
  groups: Group[];
  customers: Customer[];
  /** Records that did not parse (a peer wrote something malformed), with reasons. */
  problems: string[];
}

function plain(raw: unknown): unknown {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return raw;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(raw)) {
    const d = Object.getOwnPropertyDescriptor(raw, key);
    out[key] = d && "value" in d ? d.value : undefined;
  }
  return out;
}

function mapOf(doc: unknown, name: string): Record<string, unknown> {
  const m = doc && typeof doc === "object" ? (doc as Record<string, unknown>)[name] : undefined;
  return typeof m === "object" && m !== null ? (m as Record<string, unknown>) : {};
}

export function readCatalog(doc: unknown): CatalogView {
  const view: CatalogView = { items: [], groups: [], customers: [], problems: [] };
  const items = mapOf(doc, "items");
  for (const key of Object.keys(items)) {
    const r = parseItem(key, plain(items[key]));
    if (r.ok) view.items.push(r.item);
    else view.problems.push(r.reason);
  }
  const groups = mapOf(doc, "groups");
  for (const key of Object.keys(groups)) {
    const r = parseGroup(key, plain(groups[key]));
    if (r.ok) view.groups.push(r.group);
    else view.problems.push(r.reason);
  }
  const customers = mapOf(doc, "customers");
  for (const key of Object.keys(customers)) {
    const r = parseCustomer(key, plain(customers[key]));
    if (r.ok) view.customers.push(r.customer);
    else view.problems.push(r.reason);
  }
  return view;
}

export interface NewItem {
  name: string;
  /** Minor units. */
  price: number;
  unit?: string;
  group?: string | null;
  description?: string;
}

type Flush = (documentIds: CatalogHandle["documentId"][]) => Promise<void>;
type CatalogHandle = DocHandle<CatalogDoc>;

export class CatalogEditor {
  constructor(
    private readonly handle: CatalogHandle,
    private readonly recovery: WedgeRecovery,
    private readonly flush: Flush,
    /** Named in each change's message, so a conflict can say who made each value (catalog-conflicts.ts). */
    private readonly deviceId: string,
  ) {}

  #current(): CatalogView {
    return readCatalog(this.handle.doc());
  }

  #item(id: string): Item {
    const item = this.#current().items.find((i) => i.id === id);
    if (!item) throw invalidInput(`item ${id} is not in the catalog`);
    return item;
  }

  async #apply(fn: (doc: CatalogDoc) => void): Promise<void> {
    changeSafely(this.handle, fn, this.recovery, { message: editMessage(this.deviceId) });
    await this.flush([this.handle.documentId]);
  }

  async addItem(input: NewItem): Promise<Item> {
    const id = globalThis.crypto.randomUUID();
    const candidate = {
      id, name: input?.name, price: input?.price, unit: input?.unit ?? "unit", group: input?.group ?? null,
      description: input?.description ?? "", active: true,
    };
    const r = parseItem(id, candidate);
    if (!r.ok) throw invalidInput(r.reason);
    if (r.item.group !== null && !this.#current().groups.some((g) => g.id === r.item.group)) {
      throw invalidInput(`group ${r.item.group} is not in the catalog`);
    }
    await this.#apply((d) => {
      d.items[id] = { ...r.item };
    });
    return r.item;
  }

  /** Checks the whole item with one field changed, then writes that field alone. */
  async #setItemField<K extends keyof Item>(id: string, field: K, value: Item[K]): Promise<Item> {
    const item = { ...this.#item(id), [field]: value };
    const r = parseItem(id, item);
    if (!r.ok) throw invalidInput(r.reason);
    await this.#apply((d) => {
      const target = d.items[id] as Record<string, unknown> | undefined;
      if (!target) throw new ClientError("bad-document", `item ${id} vanished`);
      target[field] = value;
    });
    return r.item;
  }

  renameItem(id: string, name: string): Promise<Item> {
    return this.#setItemField(id, "name", name);
  }

  repriceItem(id: string, price: number): Promise<Item> {
    return this.#setItemField(id, "price", price);
  }

  deactivateItem(id: string): Promise<Item> {
    return this.#setItemField(id, "active", false);
  }

  activateItem(id: string): Promise<Item> {
    return this.#setItemField(id, "active", true);
  }

  setItemGroup(id: string, group: string | null): Promise<Item> {
    if (group !== null && !this.#current().groups.some((g) => g.id === group)) throw invalidInput(`group ${group} is not in the catalog`);
    return this.#setItemField(id, "group", group);
  }

  async addGroup(name: string): Promise<Group> {
    const id = globalThis.crypto.randomUUID();
    const r = parseGroup(id, { id, name });
    if (!r.ok) throw invalidInput(r.reason);
    await this.#apply((d) => {
      d.groups[id] = { ...r.group };
    });
    return r.group;
  }

  async renameGroup(id: string, name: string): Promise<Group> {
    if (!this.#current().groups.some((g) => g.id === id)) throw invalidInput(`group ${id} is not in the catalog`);
    const r = parseGroup(id, { id, name });
    if (!r.ok) throw invalidInput(r.reason);
    await this.#apply((d) => {
      (d.groups[id] as Record<string, unknown>).name = name;
    });
    return r.group;
  }

  async addCustomer(input: { name: string; phone?: string | null }): Promise<Customer> {
    const id = globalThis.crypto.randomUUID();
    const r = parseCustomer(id, { id, name: input?.name, phone: input?.phone ?? null });
    if (!r.ok) throw invalidInput(r.reason);
    await this.#apply((d) => {
      d.customers[id] = { ...r.customer };
    });
    return r.customer;
  }

  async updateCustomer(id: string, patch: { name?: string; phone?: string | null }): Promise<Customer> {
    const current = this.#current().customers.find((c) => c.id === id);
    if (!current) throw invalidInput(`customer ${id} is not in the catalog`);
    const next = { ...current, ...patch };
    const r = parseCustomer(id, next);
    if (!r.ok) throw invalidInput(r.reason);
    await this.#apply((d) => {
      const target = d.customers[id] as Record<string, unknown>;
      if (patch.name !== undefined) target.name = patch.name;
      if (patch.phone !== undefined) target.phone = patch.phone;
    });
    return r.customer;
  }
}
