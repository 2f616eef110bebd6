/**
 * The materializer's side of offline allowances (shared/domain/allowances.ts): plans grants from
 * the authoritative stock and recent sales, journals them as allowance entries through the same
 * batch as every other entry (so the journal records each grant and a replay re-derives it),
 * and writes the resulting allowances into the signed status document devices hold.
 */
import { randomUUID } from "node:crypto";
import type { PublishedAllowance, StatusDoc } from "../../shared/docs.js";
import {
  allowanceKey,
  claimedTo,
  GRANT_SCOPE,
  planGrants,
  spentOf,
  type AllowanceState,
  type ItemState,
  type TeamSettings,
} from "../../shared/domain/index.js";
import { processBatch, type BatchContext, type BatchEntry, type BatchOutcome } from "./batch.js";
import type { JournalRecord } from "./collections.js";

/** How far back sales count as demand when allowances are topped up. */
const DEMAND_WINDOW_MS = 60 * 60 * 1000;
/** A quiet team is looked at this often (new stock, new devices) even when nothing was sold. */
const REBALANCE_EVERY_MS = 10_000;
/** Sales remembered for demand, per team: enough for a busy hour, bounded. */
const MAX_REMEMBERED_SALES = 20_000;

export interface AllowanceKeeperOptions {
  ctx: BatchContext;
  team: string;
  settings: () => TeamSettings;
  catalogItems: () => ReadonlyMap<string, ItemState>;
  /** Devices that get allowances: those with a ledger segment in the team. */
  devices: () => Iterable<string>;
  now: () => string;
  /** The close in force, so grants are decided as the replay will decide them. */
  closedThrough: () => string | null;
  /** Waits for projections queued behind the journal (projection-lane.ts): grants are planned from stored stock. */
  settle: () => Promise<void>;
}

export class AllowanceKeeper {
  /** Accepted units sold per `${item}/${device}`, with when, oldest first (demand weights). */
  private readonly sales: { key: string; units: number; ms: number }[] = [];
  /** Devices that gave an item's allowance back, until they sell it again (`${item}/${device}`). */
  private readonly resting = new Set<string>();
  private dirty = true;
  private last = 0;

  constructor(private readonly opts: AllowanceKeeperOptions) {}

  /** Sales decided in a batch: demand for the next plan, and a reason to plan again. */
  observe(records: readonly JournalRecord[]): void {
    if (records.length === 0) return;
    this.dirty = true;
    const ms = Date.parse(this.opts.now());
    for (const r of records) {
      if (r.status !== "accepted") continue;
      if (r.entry?.kind === "allowance" && r.provenance.segment !== GRANT_SCOPE) this.resting.add(allowanceKey(r.entry.item, r.entry.holder));
      if (r.entry?.kind !== "sale") continue;
      for (const line of r.entry.lines) {
        const key = allowanceKey(line.item, r.entry.device);
        this.sales.push({ key, units: line.quantity, ms });
        this.resting.delete(key);
      }
    }
    if (this.sales.length > MAX_REMEMBERED_SALES) this.sales.splice(0, this.sales.length - MAX_REMEMBERED_SALES);
  }

  /** The settings changed: plan again at the next chance. */
  touch(): void {
    this.dirty = true;
  }

  /**
   * Journals the grants due now, if any; returns the batch outcome so the caller publishes it.
   * Between batches only (the team's one batch at a time), so the stock it plans from is the
   * journal's.
   */
  async rebalance(): Promise<BatchOutcome | null> {
    const settings = this.opts.settings();
    const policy = settings.allowances;
    if (policy === undefined) return null;
    const nowMs = Date.parse(this.opts.now());
    if (!this.dirty && nowMs - this.last < REBALANCE_EVERY_MS) return null;
    this.dirty = false;
    this.last = nowMs;
    const catalog = this.opts.catalogItems();
    const items = policy.items === "all" ? [...catalog].filter(([, it]) => it.active).map(([id]) => id) : policy.items.filter((id) => catalog.get(id)?.active !== false);
    const devices = [...new Set(this.opts.devices())];
    if (items.length === 0 || devices.length === 0) return null;

    await this.opts.settle();
    const { c } = this.opts.ctx;
    const team = this.opts.team;
    const stock = new Map<string, number>();
    for (const s of await c.stock.find({ team, item: { $in: items } }).toArray()) stock.set(s.item, s.level);
    const held = new Map<string, AllowanceState[]>();
    for (const a of await c.allowances.find({ team, item: { $in: items } }).toArray()) {
      const list = held.get(a.item) ?? [];
      list.push({ item: a.item, device: a.device, granted: a.granted, honoured: a.honoured });
      held.set(a.item, list);
    }
    const grants = planGrants({
      items: items.map((id) => ({ item: id, stock: stock.get(id) ?? 0, allowances: held.get(id) ?? [] })),
      devices,
      recentSales: this.recentSales(nowMs),
      sharePercent: policy.sharePercent,
      resting: this.resting,
    });
    if (grants.length === 0) return null;
    const at = this.opts.now();
    const batch: BatchEntry[] = grants.map((g) => {
      const id = `allowance-${randomUUID()}`;
      return {
        key: id,
        raw: { id, kind: "allowance", at, device: "materializer", user: "materializer", item: g.item, holder: g.holder, granted: g.granted },
        provenance: { segment: GRANT_SCOPE, device: null, change: null, actor: null },
      };
    });
    return processBatch(this.opts.ctx, team, batch, settings, this.opts.catalogItems(), at, this.opts.closedThrough());
  }

  private recentSales(nowMs: number): Map<string, number> {
    while (this.sales.length > 0 && nowMs - this.sales[0]!.ms > DEMAND_WINDOW_MS) this.sales.shift();
    const out = new Map<string, number>();
    for (const s of this.sales) out.set(s.key, (out.get(s.key) ?? 0) + s.units);
    return out;
  }
}

function publishedOf(a: AllowanceState): PublishedAllowance {
  return { granted: a.granted, spent: spentOf(a), next: claimedTo(a) };
}

/** The allowances a batch changed (its allowance effects), into the status document. */
export function publishAllowances(d: StatusDoc, records: readonly JournalRecord[]): void {
  for (const r of records) {
    for (const e of r.effects) if (e.type === "allowance") setPublished(d, e.allowance.item, e.allowance.device, publishedOf(e.allowance));
  }
}

/** After a restart: every allowance of the team, as projected from the journal. */
export async function republishAllowances(ctx: BatchContext, team: string): Promise<(d: StatusDoc) => void> {
  const rows = await ctx.c.allowances.find({ team }).toArray();
  return (d) => {
    for (const a of rows) setPublished(d, a.item, a.device, publishedOf(a));
  };
}

function setPublished(d: StatusDoc, item: string, device: string, v: PublishedAllowance): void {
  // The maps are created by the materializer alone (the only writer of the status document).
  d.allowances ??= {};
  d.allowances[item] ??= {};
  const byDevice = d.allowances[item];
  const cur = byDevice[device];
  if (cur && cur.granted === v.granted && cur.spent === v.spent && cur.next === v.next) return;
  byDevice[device] = v;
}
