/**
 * The classic `data` block: the team's full dataset after a sync, normalized as the reference
 * says (ids are strings, `productId` on items, `null` rather than missing). Read from the
 * projections, with the live catalog document over them (it is fresher than its projection).
 * Bounded per collection: a team past the bound reads the rest through the paginated API.
 */
import { teamKey, type Collections } from "../materializer/collections.js";
import type { GatewayCollections } from "./meta.js";
import type { CatalogView } from "./team-docs.js";

export const MAX_DATASET_ROWS = 10_000;

export interface ClassicDataset {
  itemGroups: Record<string, unknown>[];
  items: Record<string, unknown>[];
  clientCustomers: Record<string, unknown>[];
  invoices: Record<string, unknown>[];
  payments: Record<string, unknown>[];
  purchaseHistory: Record<string, unknown>[];
}

/** Items this request created or changed: their projection is older than the answer, so `updatedAt` is the request's time. */
export interface FreshItems {
  changed: ReadonlySet<string>;
  at: string;
}

export async function classicDataset(c: Collections, g: GatewayCollections, team: string, catalog: CatalogView, fresh?: FreshItems): Promise<ClassicDataset> {
  const byTeam = { team };
  const limit = MAX_DATASET_ROWS;
  const [itemDocs, stock, groupDocs, customerDocs, invoices, payments, purchases] = await Promise.all([
    c.items.find(byTeam).sort({ _id: 1 }).limit(limit).toArray(),
    c.stock.find(byTeam).limit(limit).toArray(),
    c.groups.find(byTeam).sort({ _id: 1 }).limit(limit).toArray(),
    c.customers.find(byTeam).sort({ _id: 1 }).limit(limit).toArray(),
    c.invoices.find(byTeam).sort({ _id: 1 }).limit(limit).toArray(),
    c.payments.find(byTeam).sort({ _id: 1 }).limit(limit).toArray(),
    c.purchases.find(byTeam).sort({ _id: 1 }).limit(limit).toArray(),
  ]);
  const levels = new Map(stock.map((s) => [s.item, s.level]));

  const items = new Map<string, { id: string; name: string; price: number; unit: string; group: string | null; description: string; active: boolean; updatedAt: string | null }>();
  for (const d of itemDocs) items.set(d.id, { id: d.id, name: d.name, price: d.price, unit: d.unit || "nos", group: d.group, description: d.description, active: d.active, updatedAt: d.updatedAt });
  for (const it of catalog.items.values()) items.set(it.id, { ...it, updatedAt: items.get(it.id)?.updatedAt ?? null });
  for (const id of fresh?.changed ?? []) {
    const it = items.get(id);
    if (it) it.updatedAt = fresh!.at;
  }
  const groups = new Map(groupDocs.map((d) => [d.id, d.name]));
  for (const gr of catalog.groups.values()) groups.set(gr.id, gr.name);
  const customers = new Map(customerDocs.map((d) => [d.id, { name: d.name, phone: d.phone }]));
  for (const cu of catalog.customers.values()) customers.set(cu.id, { name: cu.name, phone: cu.phone });

  const invoiceIds = invoices.map((i) => teamKey(team, i.id));
  const paymentIds = payments.map((p) => teamKey(team, p.id));
  const [invoiceMeta, paymentMeta, saleRecords] = await Promise.all([
    g.invoiceMeta.find({ _id: { $in: invoiceIds } }).toArray(),
    g.paymentMeta.find({ _id: { $in: paymentIds } }).toArray(),
    c.journal.find({ _id: { $in: invoiceIds } }, { projection: { entryId: 1, entry: 1 } }).toArray(),
  ]);
  const metaOf = new Map(invoiceMeta.map((m) => [m.id, m]));
  const payMetaOf = new Map(paymentMeta.map((m) => [m.id, m]));
  const saleOf = new Map(saleRecords.map((r) => [r.entryId, r.entry]));

  return {
    itemGroups: [...groups].map(([id, name]) => ({ _id: id, name })),
    items: [...items.values()].map((it) => ({
      _id: it.id,
      productId: it.id,
      name: it.name,
      price: it.price,
      stock: levels.get(it.id) ?? 0,
      unit: it.unit,
      groupId: it.group ?? null,
      description: it.description,
      dealerIds: [],
      isActive: it.active,
      clientId: team,
      updatedAt: it.updatedAt,
    })),
    clientCustomers: [...customers].map(([id, cu]) => ({ _id: id, name: cu.name, phone: cu.phone ?? null, clientId: team })),
    invoices: invoices.map((inv) => {
      const meta = metaOf.get(inv.id);
      const sale = saleOf.get(inv.id);
      const products = meta?.products ??
        (sale?.kind === "sale" ? sale.lines.map((l) => ({ productId: l.item, itemName: l.name ?? null, costPerUnit: l.price, quantity: l.quantity })) : []);
      return {
        _id: inv.id,
        invoiceNumber: meta?.invoiceNumber ?? null,
        clientCustomerId: inv.customer ?? null,
        clientCustomerName: meta?.clientCustomerName ?? (inv.customer ? customers.get(inv.customer)?.name ?? null : null),
        clientCustomerPhone: meta?.clientCustomerPhone ?? null,
        products,
        invoiceDate: meta?.invoiceDate ?? inv.day,
        dueDate: meta?.dueDate ?? null,
        subtotal: meta?.subtotal ?? (sale?.kind === "sale" ? sale.subtotal : null),
        totalTax: meta?.totalTax ?? (sale?.kind === "sale" ? sale.tax : 0),
        totalDiscount: meta?.totalDiscount ?? (sale?.kind === "sale" ? sale.discount : 0),
        totalAmount: inv.total,
        paidAmount: inv.paid,
        balance: inv.outstanding,
        isFinalized: inv.status === "finalized",
        status: inv.status,
        notes: meta?.notes ?? null,
        device: inv.device,
        createdAt: inv.at,
      };
    }),
    payments: payments.map((p) => {
      const meta = payMetaOf.get(p.id);
      return { _id: p.id, invoiceId: p.invoice, amount: p.amount, method: meta?.method ?? "cash", note: meta?.note ?? null, paidAt: meta?.paidAt ?? p.at, device: p.device };
    }),
    purchaseHistory: purchases.map((h) => ({
      _id: h.invoice, clientCustomerId: h.customer, invoiceId: h.invoice, totalAmount: h.total, purchasedAt: h.at, isVoid: h.void,
    })),
  };
}
