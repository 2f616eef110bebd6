/**
 * The device's side of offline allowances (shared/domain/allowances.ts): what the signed status
 * says this device was granted, how many of those units its own sales have claimed, and the
 * claims a new sale takes. A sale line the allowance covers carries its claim and is safe
 * offline; a line beyond it is at risk (it may be rejected once the server sees everyone's
 * sales), or refused here when the team's settings say so.
 */
import type { PublishedAllowance } from "../shared/docs.js";
import {
  deviceAllowance,
  entryHash,
  parseEntry,
  underPolicy,
  type AllowanceEntry,
  type AllowanceSettings,
  type DeviceAllowance,
  type SaleEntry,
} from "../shared/domain/index.js";
import type { CheckContext, CheckedEntry, SaleInput, SaleLineInput } from "./entries.js";
import { invalidInput } from "./errors.js";

export interface AllowanceView extends DeviceAllowance {
  /** Authoritative stock as last published (known offline). */
  stockKnown: number;
  /** Units of this device's undecided sales of the item recorded beyond the allowance. */
  atRisk: number;
}

export interface AtRiskLine {
  item: string;
  quantity: number;
  /** What the allowance had left for the item when the sale was made. */
  left: number;
}

export interface AllowanceDeskOptions {
  device: string;
  /** The team's allowance settings as the device holds them (root document). */
  policy: () => AllowanceSettings | undefined;
  /** The signed status: published allowances and stock, as of journal `seq`. */
  published: () => { allowances?: Map<string, Map<string, PublishedAllowance>>; stock: Map<string, number>; seq: number };
  /** This device's own sales, each with whether the server has decided it. */
  ownSales: () => Iterable<{ sale: SaleEntry; decided: boolean }>;
  /** This device's own give-backs, with their verdict (status and journal seq) once decided. */
  ownReturns: () => Iterable<{ entry: AllowanceEntry; status: string; seq?: number }>;
}

/** How long an item's allowance lies unused (no own sale) while online before it is given back. */
export const IDLE_RETURN_MS = 30 * 60 * 1000;

export class AllowanceDesk {
  /** Item → one past the last unit this device's own sale lines claimed; built once, kept up to date by `recorded`. */
  #claimEnds: Map<string, number> | undefined;
  /** Idle time of items this device never sold counts from here. */
  readonly #since = Date.now();

  constructor(private readonly opts: AllowanceDeskOptions) {}

  #ends(): Map<string, number> {
    if (this.#claimEnds) return this.#claimEnds;
    const ends = new Map<string, number>();
    for (const { sale } of this.opts.ownSales()) this.#note(ends, sale);
    return (this.#claimEnds = ends);
  }

  #note(ends: Map<string, number>, sale: SaleEntry): void {
    for (const l of sale.lines) {
      if (l.claim !== undefined) ends.set(l.item, Math.max(ends.get(l.item) ?? 0, l.claim + l.quantity));
    }
  }

  /** The allowance of one item as this device knows it, offline included. */
  of(item: string): DeviceAllowance {
    const published = this.opts.published();
    const p = published.allowances?.get(item)?.get(this.opts.device);
    let granted = p?.granted ?? 0;
    // A give-back the status does not show yet caps the allowance: units beyond it are free stock.
    for (const r of this.opts.ownReturns()) {
      if (r.entry.item !== item || r.status === "rejected" || r.status === "invalid") continue;
      if (r.status === "undecided" || (r.seq ?? Infinity) > published.seq) granted = Math.min(granted, r.entry.granted);
    }
    const end = this.#ends().get(item);
    return deviceAllowance(item, granted, p?.next ?? 0, end === undefined ? [] : [end]);
  }

  /** Items whose allowance this device has left unused for `idleMs`: to give back (returnEntry). */
  idle(idleMs: number, nowMs: number): string[] {
    const last = new Map<string, number>();
    const seen = (item: string, at: string): void => void last.set(item, Math.max(last.get(item) ?? 0, Date.parse(at)));
    for (const { sale } of this.opts.ownSales()) for (const l of sale.lines) seen(l.item, sale.at);
    for (const r of this.opts.ownReturns()) seen(r.entry.item, r.entry.at);
    return this.list()
      .filter((a) => a.left > 0 && nowMs - (last.get(a.item) ?? this.#since) >= idleMs)
      .map((a) => a.item);
  }

  /** The entry giving back what is left of `item`'s allowance: `granted` down to the units claimed. */
  returnEntry(id: string, at: string, actor: { device: string; user: string }, item: string, ctx: CheckContext): CheckedEntry {
    const a = this.of(item);
    if (a.left <= 0) throw invalidInput(`item ${item}: nothing left of this device's allowance to give back`);
    const parsed = parseEntry(id, { id, kind: "allowance", at, device: actor.device, user: actor.user, item, holder: actor.device, granted: a.next });
    if (!parsed.ok) throw invalidInput(parsed.reason);
    // Only the server knows the allowances it decides against: nothing is judged here.
    return { entry: parsed.entry, verdict: { id, status: "accepted", hash: entryHash(parsed.entry), effects: [] }, state: ctx.state };
  }

  /** Per item under the policy or granted to this device: allowance left, stock known, at risk. */
  list(): AllowanceView[] {
    const policy = this.opts.policy();
    const { allowances, stock } = this.opts.published();
    const items = new Set<string>();
    for (const [item, byDevice] of allowances ?? []) if (byDevice.has(this.opts.device)) items.add(item);
    if (policy && policy.items !== "all") for (const item of policy.items) items.add(item);
    const risk = new Map<string, number>();
    for (const { sale, decided } of this.opts.ownSales()) {
      if (decided) continue;
      for (const line of this.atRisk(sale)) risk.set(line.item, (risk.get(line.item) ?? 0) + line.quantity);
    }
    return [...items].sort().map((item) => ({ ...this.of(item), stockKnown: stock.get(item) ?? 0, atRisk: risk.get(item) ?? 0 }));
  }

  /**
   * The sale's lines with claims where the allowance covers them, in line order. A line beyond
   * is at risk; under `atRisk: "refuse"` the sale is refused before anything is written.
   */
  plan(input: SaleInput): { input: SaleInput; atRisk: AtRiskLine[] } {
    const policy = this.opts.policy();
    if (!Array.isArray(input?.lines)) return { input, atRisk: [] };
    const next = new Map<string, DeviceAllowance>();
    const atRisk: AtRiskLine[] = [];
    const lines = input.lines.map((l: SaleLineInput): SaleLineInput => {
      if (typeof l !== "object" || l === null || typeof l.item !== "string" || !underPolicy(policy, l.item)) return l;
      if (typeof l.quantity !== "number" || !Number.isSafeInteger(l.quantity) || l.quantity <= 0) return l;
      const a = next.get(l.item) ?? this.of(l.item);
      if (l.quantity <= a.left) {
        next.set(l.item, { ...a, next: a.next + l.quantity, left: a.left - l.quantity });
        return { ...l, claim: a.next };
      }
      atRisk.push({ item: l.item, quantity: l.quantity, left: a.left });
      return l;
    });
    if (atRisk.length > 0 && policy?.atRisk === "refuse") {
      const r = atRisk[0]!;
      throw invalidInput(`item ${r.item}: ${r.quantity} requested, ${r.left} left in this device's offline allowance; the team refuses sales beyond it (connect to get more)`);
    }
    return { input: { ...input, lines }, atRisk };
  }

  /** A sale this device just wrote: its claims are taken. */
  recorded(sale: SaleEntry): void {
    if (this.#claimEnds) this.#note(this.#claimEnds, sale);
  }

  /** Lines of a sale on items under the policy that carry no claim: they may be rejected. */
  atRisk(sale: SaleEntry): AtRiskLine[] {
    const policy = this.opts.policy();
    return sale.lines.filter((l) => l.claim === undefined && underPolicy(policy, l.item)).map((l) => ({ item: l.item, quantity: l.quantity, left: 0 }));
  }
}
