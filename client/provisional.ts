/**
 * The figures a device shows before the server has decided everything: the authoritative stock
 * and open invoices from the status document, plus every undecided entry the device holds, from
 * any device, decided tentatively with the shared rules (shared/domain provisionalView). Counting
 * only its own made two linked tablets disagree: each subtracted only its own sales.
 */
import {
  emptyProjection,
  emptyState,
  provisionalView,
  putOwn,
  withCatalogItems,
  type InvoiceState,
  type Item,
  type LedgerEntry,
  type LedgerState,
  type Projection,
  type SaleEntry,
  type TeamSettings,
  type Verdict,
} from "../shared/domain/index.js";
import type { PublishedVerdict } from "../shared/docs.js";
import type { StatusView } from "./read-docs.js";

export interface Provisional {
  /** State after the undecided entries: what the next entry is checked against. */
  state: LedgerState;
  projection: Projection;
  /** Tentative verdicts of the undecided entries. */
  tentative: Map<string, Verdict>;
}

export interface ProvisionalInputs {
  status: StatusView;
  items: readonly Item[];
  /** Sales known anywhere in the team's ledger, for the fields the status document leaves out. */
  sales: ReadonlyMap<string, SaleEntry>;
  /** Entries the server has not decided (or has deferred), whichever device wrote them. */
  undecided: ReadonlyArray<{ key: string; raw: unknown }>;
  settings: TeamSettings;
  now: string;
}

/** The authoritative state as far as the status document tells it. */
export function authoritative(inputs: Pick<ProvisionalInputs, "status" | "items" | "sales">): { state: LedgerState; projection: Projection } {
  const state = withCatalogItems(emptyState(), inputs.items);
  const projection = emptyProjection();
  for (const [item, level] of inputs.status.stock) {
    putOwn(state.stock, item, level);
    putOwn(projection.stock, item, level);
  }
  for (const [id, inv] of inputs.status.invoices) {
    const sale = inputs.sales.get(id);
    const at = sale?.at ?? "1970-01-01T00:00:00.000Z";
    const invState: InvoiceState = {
      total: inv.total,
      paid: inv.paid,
      initialPaid: sale?.paid ?? 0,
      refundDue: 0,
      status: inv.status,
      customer: sale?.customer ?? null,
      at,
      day: at.slice(0, 10),
      device: sale?.device ?? "",
      user: sale?.user ?? "",
      // Only item quantities that took stock matter (a void gives them back).
      lines: sale ? sale.lines.filter((l) => state.items[l.item] !== undefined).map((l) => ({ item: l.item, quantity: l.quantity })) : [],
    };
    putOwn(state.invoices, id, invState);
    putOwn(projection.invoices, id, {
      id, total: inv.total, paid: inv.paid, outstanding: inv.outstanding, initialPaid: invState.initialPaid, refundDue: 0,
      status: inv.status, customer: invState.customer, at, day: invState.day, device: invState.device, user: invState.user,
    });
  }
  return { state, projection };
}

/**
 * The entries still to be counted on top of the status document: no verdict yet, deferred (a
 * deferred payment waits for its invoice and is not in the authoritative figures), or decided
 * after the status the device holds (`statusSeq`): verdicts and status are separate documents
 * and arrive apart, and an entry counted in neither would vanish from the figures meanwhile.
 */
export function undecidedEntries(
  entries: readonly LedgerEntry[],
  verdictOf: (entryId: string) => PublishedVerdict | undefined,
  statusSeq = Number.POSITIVE_INFINITY,
): Array<{ key: string; raw: LedgerEntry }> {
  return entries
    .filter((e) => {
      const v = verdictOf(e.id);
      return !v || v.status === "deferred" || (v.seq !== undefined && v.seq > statusSeq);
    })
    .map((e) => ({ key: e.id, raw: e }));
}

/** The provisional figures of a device holding `entries`, with the verdicts it has. */
export function provisionalOf(args: {
  entries: readonly LedgerEntry[];
  verdictOf: (entryId: string) => PublishedVerdict | undefined;
  status: StatusView;
  items: readonly Item[];
  settings: TeamSettings;
  now: string;
}): Provisional {
  const sales = new Map<string, SaleEntry>();
  for (const e of args.entries) if (e.kind === "sale") sales.set(e.id, e);
  const { status, items, settings, now } = args;
  return computeProvisional({ status, items, sales, undecided: undecidedEntries(args.entries, args.verdictOf, status.seq), settings, now });
}

export function computeProvisional(inputs: ProvisionalInputs): Provisional {
  const view = provisionalView(authoritative(inputs), inputs.undecided, inputs.settings, inputs.now);
  return { state: view.state, projection: view.projection, tentative: new Map(view.verdicts.map((v) => [v.id, v])) };
}
