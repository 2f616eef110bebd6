/**
 * A team's projections, written behind its journal: a batch's records are journaled and its
 * verdicts published, then its projections are queued here and the next batch is decided while
 * they are written (on FerretDB they were most of a batch's time). Journal first stays the rule:
 * the projected mark moves only after a batch's projections are written, so a crash anywhere
 * leaves records after the mark, which `catchUp` projects again.
 *
 * Until they are written, what the queued batches set (stock levels, invoices, items) is kept
 * here and laid over what the next batch reads from MongoDB (`overlay`), so it decides against
 * the journal as if they were written. Writes run one batch at a time, in journal order; after a
 * failure the later ones are skipped and `drain` throws it: the caller then runs `catchUp`.
 */
import { allowanceKey, type AllowanceState } from "../../shared/domain/allowances.js";
import { getOwn, putOwn, type InvoiceState, type ItemState, type LedgerState } from "../../shared/domain/index.js";

/** What a queued batch's projections set, by entry/item id (not `_id`). */
export interface PendingProjection {
  stock: ReadonlyMap<string, number>;
  invoices: ReadonlyMap<string, InvoiceState>;
  /** Items first seen in a sale: projected only where no item is stored. */
  items: ReadonlyMap<string, ItemState>;
  /** Offline allowances by allowanceKey (shared/domain/allowances.ts): what no other sale may take. */
  allowances: ReadonlyMap<string, AllowanceState>;
}

export class ProjectionLane {
  #tail: Promise<void> = Promise.resolve();
  readonly #pending: PendingProjection[] = [];
  #failure: { err: unknown } | null = null;

  /** Queues a batch's projection writes behind those queued before; resolves when they are done or skipped, never rejects. */
  enqueue(pending: PendingProjection, write: () => Promise<void>): Promise<void> {
    this.#pending.push(pending);
    this.#tail = this.#tail.then(async () => {
      try {
        if (!this.#failure) await write();
      } catch (err) {
        this.#failure = { err };
      } finally {
        this.#pending.splice(this.#pending.indexOf(pending), 1);
      }
    });
    return this.#tail;
  }

  /**
   * The batches queued now. Taken before a batch reads MongoDB and laid over what it read: a
   * write that lands while the read is under way leaves the lane, and overlaying only what is
   * still queued then would keep a value read before that write (seen: a stale stock level
   * rejected a sale).
   */
  snapshot(): QueuedProjections {
    return new QueuedProjections([...this.#pending]);
  }

  /** Whether a write failed and `drain` has not reported it yet: no batch may run before a catch-up. */
  get failed(): boolean {
    return this.#failure !== null;
  }

  /** Resolves once every queued write is done or skipped; leaves a failure for `drain`. */
  settled(): Promise<void> {
    return this.#tail;
  }

  /** Resolves once every queued write is done; throws the first failure (once). */
  async drain(): Promise<void> {
    await this.#tail;
    const failure = this.#failure;
    this.#failure = null;
    if (failure) throw failure.err;
  }
}

/** Projections queued at one moment (ProjectionLane.snapshot), oldest first. */
export class QueuedProjections {
  constructor(private readonly pending: readonly PendingProjection[]) {}

  /** Whether a queued batch sets this invoice: what MongoDB held of it may not be current. */
  holdsInvoice(id: string): boolean {
    return this.pending.some((p) => p.invoices.has(id));
  }

  /**
   * Lays the queued batches' values, oldest first, over a state read from MongoDB: for the ids
   * the batch reads (`invoices` before `keysTouched` widens to their items, so callable twice).
   */
  overlay(state: LedgerState, ids: { invoices?: readonly string[]; items?: readonly string[] }): void {
    for (const p of this.pending) {
      for (const id of ids.invoices ?? []) {
        const inv = p.invoices.get(id);
        if (inv) putOwn(state.invoices, id, { ...inv, lines: inv.lines.map((l) => ({ ...l })) });
      }
      for (const id of ids.items ?? []) {
        const level = p.stock.get(id);
        if (level !== undefined) putOwn(state.stock, id, level);
        const item = p.items.get(id);
        if (item && getOwn(state.items, id) === undefined) putOwn(state.items, id, item);
      }
      for (const a of p.allowances.values()) {
        if (ids.items?.includes(a.item)) putOwn((state.allowances ??= {}), allowanceKey(a.item, a.device), { ...a, honoured: structuredClone(a.honoured) });
      }
    }
  }
}
