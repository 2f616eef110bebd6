/**
 * The device's side of offline allowances (shared/domain/allowances.ts): what the signed status
 * says this device was granted, how many of those units its own sales have claimed, and the
 * claims a new sale takes. A sale line the allowance covers carries its claim and is safe
 * offline; a line beyond it is at risk (it may be rejected once the server sees everyone's
 * sales), or refused here when the team's settings say so.
 */
import type { PublishedAllowance } from "../shared/docs.js";
import { deviceAllowance, underPolicy, type AllowanceSettings, type DeviceAllowance, type SaleEntry } from "../shared/domain/index.js";
import type { SaleInput, SaleLineInput } from "./entries.js";
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
  /** The signed status: published allowances and stock. */
  published: () => { allowances?: Map<string, Map<string, PublishedAllowance>>; stock: Map<string, number> };
  /** This device's own sales, each with whether the server has decided it. */
  ownSales: () => Iterable<{ sale: SaleEntry; decided: boolean }>;
}

export class AllowanceDesk {
  /** Item → one past the last unit this device's own sale lines claimed; built once, kept up to date by `recorded`. */
  #claimEnds: Map<string, number> | undefined;

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
    const p = this.opts.published().allowances?.get(item)?.get(this.opts.device);
    const end = this.#ends().get(item);
    return deviceAllowance(item, p?.granted ?? 0, p?.next ?? 0, end === undefined ? [] : [end]);
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
