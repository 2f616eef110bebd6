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
  type LedgerEntry,
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
  /** This device's own entries, parsed (read once; later ones come through `recorded`). */
  ownEntries: () => Iterable<LedgerEntry>;
  /** The published verdict of an entry: status, and the journal seq once decided. */
  verdict: (entryId: string) => { status: string; seq?: number } | undefined;
}

/** How long an item's allowance lies unused (no own sale) while online before it is given back. */
export const IDLE_RETURN_MS = 30 * 60 * 1000;

/** What this device's own entries say about its allowances, kept up to date as it writes. */
interface OwnRecord {
  /** Item → one past the last unit its own sale lines claimed. */
  ends: Map<string, number>;
  /** Item → time of its last own sale or give-back (ms). */
  lastAt: Map<string, number>;
  /** Its own give-backs. */
  returns: AllowanceEntry[];
  /** Its own sales (for the units at risk). */
  sales: SaleEntry[];
}

export class AllowanceDesk {
  /** Built from the device's own entries at first use (parsing the ledger once), then kept up to date by `recorded`. */
  #own: OwnRecord | undefined;
  /** Idle time of items this device never sold counts from here. */
  readonly #since = Date.now();

  constructor(private readonly opts: AllowanceDeskOptions) {}

  #record(): OwnRecord {
    if (this.#own) return this.#own;
    const own: OwnRecord = { ends: new Map(), lastAt: new Map(), returns: [], sales: [] };
    for (const e of this.opts.ownEntries()) this.#note(own, e);
    return (this.#own = own);
  }

  #note(own: OwnRecord, e: LedgerEntry): void {
    const seen = (item: string): void => void own.lastAt.set(item, Math.max(own.lastAt.get(item) ?? 0, Date.parse(e.at)));
    if (e.kind === "allowance" && e.holder === this.opts.device) {
      own.returns.push(e);
      seen(e.item);
    }
    if (e.kind !== "sale") return;
    own.sales.push(e);
    for (const l of e.lines) {
      seen(l.item);
      if (l.claim !== undefined) own.ends.set(l.item, Math.max(own.ends.get(l.item) ?? 0, l.claim + l.quantity));
    }
  }

  /** The allowance of one item as this device knows it, offline included. */
  of(item: string): DeviceAllowance {
    const published = this.opts.published();
    const p = published.allowances?.get(item)?.get(this.opts.device);
    let granted = p?.granted ?? 0;
    const own = this.#record();
    // A give-back the status does not show yet caps the allowance: units beyond it are free stock.
    for (const r of own.returns) {
      if (r.item !== item) continue;
      const v = this.opts.verdict(r.id);
      if (v === undefined || (v.status === "accepted" && (v.seq ?? Infinity) > published.seq)) granted = Math.min(granted, r.granted);
    }
    const end = own.ends.get(item);
    return deviceAllowance(item, granted, p?.next ?? 0, end === undefined ? [] : [end]);
  }

  /** Items whose allowance this device has left unused for `idleMs`: to give back (returnEntry). */
  idle(idleMs: number, nowMs: number): string[] {
    if (this.opts.policy() === undefined) return [];
    const lastAt = this.#record().lastAt;
    return this.list()
      .filter((a) => a.left > 0 && nowMs - (lastAt.get(a.item) ?? this.#since) >= idleMs)
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
    for (const sale of this.#record().sales) {
      if (this.opts.verdict(sale.id) !== undefined) continue;
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

  /** An entry this device just wrote: a sale's claims are taken, a give-back counts at once. */
  recorded(entry: LedgerEntry): void {
    if (this.#own) this.#note(this.#own, entry);
  }

  /** Lines of a sale on items under the policy that carry no claim: they may be rejected. */
  atRisk(sale: SaleEntry): AtRiskLine[] {
    const policy = this.opts.policy();
    return sale.lines.filter((l) => l.claim === undefined && underPolicy(policy, l.item)).map((l) => ({ item: l.item, quantity: l.quantity, left: 0 }));
  }
}
