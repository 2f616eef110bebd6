/**
 * Offline stock allowances (issue 20): a simulated shop day on the shared decision rules, with
 * allowances and without them in the same run. Two tills online (decided as they sell) and one
 * tablet offline for the day (decided when it reconnects at closing), items running out. What
 * a shop feels: the tablet's sales rejected after the customer left, sales refused up front
 * (under `atRisk: "refuse"`), and sales made in all. And the cost in decision throughput: the
 * same batches decided with every device's allowance in the state, and without.
 */
import {
  DEFAULT_SETTINGS,
  GRANT_SCOPE,
  decideBatch,
  emptyState,
  planGrants,
  withCatalogItems,
  type AllowanceState,
  type BatchInput,
  type LedgerState,
  type TeamSettings,
} from "../shared/domain/index.js";
import type { Benchmark } from "./lib/context.js";
import { progress } from "./lib/progress.js";
import { Collector } from "./lib/report.js";

const ITEMS = 5;
const STOCK = 30;
const SALES = 400;
const TILLS = ["till-1", "till-2"];
const TABLET = "tablet";
const SETTINGS: TeamSettings = { ...DEFAULT_SETTINGS, allowances: { items: "all", atRisk: "flag", sharePercent: 80 } };

type Mode = "none" | "flag" | "refuse";

interface DayResult {
  rejectedAfter: number;
  /** Of those, sales the tablet made within its allowance: the promise says none. */
  rejectedWithin: number;
  refusedUpFront: number;
  accepted: number;
}

function rng(seed: number): () => number {
  let x = seed >>> 0;
  return () => ((x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

function saleRaw(id: string, device: string, item: string, quantity: number, at: string, claim?: number): Record<string, unknown> {
  const line: Record<string, unknown> = { item, quantity, price: 100 };
  if (claim !== undefined) line.claim = claim;
  return { id, kind: "sale", at, device, user: device, lines: [line], subtotal: quantity * 100, tax: 0, discount: 0, total: quantity * 100, customer: null, paid: 0 };
}

/** Grants due now, decided as the materializer does (planGrants, then the grant entries). */
function rebalance(state: LedgerState, n: { v: number }, at: string): LedgerState {
  const items = Object.keys(state.stock).map((item) => ({
    item,
    stock: state.stock[item] ?? 0,
    allowances: Object.values(state.allowances ?? {}).filter((a: AllowanceState) => a.item === item),
  }));
  const grants = planGrants({ items, devices: [...TILLS, TABLET], recentSales: new Map(), sharePercent: 80 });
  if (grants.length === 0) return state;
  const batch: BatchInput[] = grants.map((g) => {
    const id = `g-${n.v++}`;
    return { key: id, raw: { id, kind: "allowance", at, device: "materializer", user: "materializer", item: g.item, holder: g.holder, granted: g.granted }, scope: GRANT_SCOPE, owner: null };
  });
  return decideBatch(state, batch, SETTINGS, at).state;
}

function shopDay(mode: Mode, seed: number): DayResult {
  const rand = rng(seed);
  const items = Array.from({ length: ITEMS }, (_, i) => ({ id: `item-${i}`, name: `Item ${i}`, price: 100, unit: "nos", group: null, description: "", active: true }));
  let state = withCatalogItems(emptyState(), items);
  for (const it of items) state.stock[it.id] = STOCK;
  const n = { v: 0 };
  const at = (i: number): string => new Date(Date.UTC(2026, 0, 5, 9) + i * 60_000).toISOString();
  if (mode !== "none") state = rebalance(state, n, at(0));
  // What the tablet knows as it goes offline: stock, and its allowances.
  const knownStock = new Map(items.map((it) => [it.id, state.stock[it.id] ?? 0]));
  const granted = new Map(items.map((it) => [it.id, state.allowances?.[`${it.id}/${TABLET}`]?.granted ?? 0]));
  const next = new Map<string, number>();
  const offline: BatchInput[] = [];
  let refused = 0;
  let accepted = 0;
  for (let i = 0; i < SALES; i++) {
    const item = items[Math.floor(rand() * ITEMS)]!.id;
    const quantity = 1 + Math.floor(rand() * 2);
    const id = `s-${i}`;
    if (rand() < 1 / 3) {
      // The offline tablet: sells what it believes is there; within its allowance with a claim.
      const used = next.get(item) ?? 0;
      if (mode === "none") {
        if ((knownStock.get(item) ?? 0) < quantity) continue; // shows sold out: no sale made
        knownStock.set(item, (knownStock.get(item) ?? 0) - quantity);
        offline.push({ key: id, raw: saleRaw(id, TABLET, item, quantity, at(i)), scope: TABLET, owner: TABLET });
      } else if (used + quantity <= (granted.get(item) ?? 0)) {
        next.set(item, used + quantity);
        offline.push({ key: id, raw: saleRaw(id, TABLET, item, quantity, at(i), used), scope: TABLET, owner: TABLET });
      } else if (mode === "refuse") {
        refused++;
      } else {
        offline.push({ key: id, raw: saleRaw(id, TABLET, item, quantity, at(i)), scope: TABLET, owner: TABLET });
      }
      continue;
    }
    // An online till: decided at once (its clerk sees a refusal while the customer is there).
    const till = TILLS[i % TILLS.length]!;
    const a = state.allowances?.[`${item}/${till}`];
    const used = a ? a.honoured.reduce((m, r) => Math.max(m, r.to), 0) : 0;
    const claim = mode !== "none" && a && used + quantity <= a.granted ? used : undefined;
    const r = decideBatch(state, [{ key: id, raw: saleRaw(id, till, item, quantity, at(i), claim), scope: till, owner: till }], SETTINGS, at(i));
    state = r.state;
    if (r.verdicts[0]?.status === "accepted") accepted++;
    if (mode !== "none" && i % 10 === 0) state = rebalance(state, n, at(i));
  }
  // Closing time: the tablet reconnects.
  const r = decideBatch(state, offline, SETTINGS, at(SALES));
  const rejectedAfter = r.verdicts.filter((v) => v.status === "rejected").length;
  const rejectedWithin = r.verdicts.filter((v) => v.status === "rejected" && v.entry?.kind === "sale" && v.entry.lines.some((l) => l.claim !== undefined)).length;
  accepted += r.verdicts.filter((v) => v.status === "accepted").length;
  for (const [item, level] of Object.entries(r.state.stock)) if (level < 0) throw new Error(`stock of ${item} went negative: ${level}`);
  return { rejectedAfter, rejectedWithin, refusedUpFront: refused, accepted };
}

/** Entries decided per second over batches of 500 sales, with every device's allowance in the state or none. */
function throughput(withAllowances: boolean, total: number): number {
  const items = Array.from({ length: 50 }, (_, i) => ({ id: `item-${i}`, name: `Item ${i}`, price: 100, unit: "nos", group: null, description: "", active: true }));
  let state = withCatalogItems(emptyState(), items);
  for (const it of items) state.stock[it.id] = 1_000_000;
  const devices = Array.from({ length: 20 }, (_, i) => `dev-${i}`);
  if (withAllowances) {
    state.allowances = {};
    for (const it of items) for (const d of devices) state.allowances[`${it.id}/${d}`] = { item: it.id, device: d, granted: 10_000, honoured: [] };
  }
  const next = new Map<string, number>();
  const started = performance.now();
  for (let b = 0; b < total / 500; b++) {
    const batch: BatchInput[] = [];
    for (let i = 0; i < 500; i++) {
      const k = b * 500 + i;
      const device = devices[k % devices.length]!;
      const item = items[k % items.length]!.id;
      const key = `${item}/${device}`;
      const claim = withAllowances ? (next.get(key) ?? 0) : undefined;
      if (claim !== undefined) next.set(key, claim + 1);
      batch.push({ key: `t-${k}`, raw: saleRaw(`t-${k}`, device, item, 1, new Date(Date.UTC(2026, 0, 5) + k * 1000).toISOString(), claim), scope: device, owner: device });
    }
    state = decideBatch(state, batch, SETTINGS, "2026-01-06T00:00:00.000Z").state;
  }
  return total / ((performance.now() - started) / 1000);
}

export const allowancesBench: Benchmark = {
  name: "allowances",
  issue: 20,
  async run(ctx) {
    const col = new Collector("allowances");
    const size = `${SALES} sale attempts, ${ITEMS} items × ${STOCK}, 2 tills online, 1 tablet offline all day`;
    col.define("tablet sales rejected after the fact", "sales", "lower", { baselineName: "no allowances (tablet sells what it last saw in stock)", size });
    col.define("tablet sales rejected after the fact, atRisk refuse", "sales", "lower", { baselineName: "no allowances", size });
    col.define("tablet sales within its allowance rejected", "sales", "lower", { size });
    col.define("sales refused up front, atRisk refuse", "sales", "lower", { size });
    col.define("sales accepted in the day", "sales", "higher", { baselineName: "no allowances", size });
    col.define("decisions per second, 20 devices × 50 items with allowances", "entries/s", "higher", { baselineName: "the same sales without allowances", size: "10,000 sales in batches of 500" });
    for (let rep = 0; rep < ctx.reps; rep++) {
      progress(`allowances rep ${rep + 1}/${ctx.reps}: a shop day with and without allowances, and decision throughput`);
      const seed = 20 + rep;
      const none = shopDay("none", seed);
      const flag = shopDay("flag", seed);
      const refuse = shopDay("refuse", seed);
      col.ours("tablet sales rejected after the fact", flag.rejectedAfter);
      col.baseline("tablet sales rejected after the fact", none.rejectedAfter);
      col.ours("tablet sales rejected after the fact, atRisk refuse", refuse.rejectedAfter);
      col.baseline("tablet sales rejected after the fact, atRisk refuse", none.rejectedAfter);
      col.ours("tablet sales within its allowance rejected", flag.rejectedWithin + refuse.rejectedWithin);
      col.ours("sales refused up front, atRisk refuse", refuse.refusedUpFront);
      col.ours("sales accepted in the day", flag.accepted);
      col.baseline("sales accepted in the day", none.accepted);
      const base = throughput(false, 10_000);
      col.ours("decisions per second, 20 devices × 50 items with allowances", throughput(true, 10_000));
      col.baseline("decisions per second, 20 devices × 50 items with allowances", base);
    }
    return col.rows();
  },
};
