// Offline stock allowances (escrow, bounded counters: Balegas et al., SRDS 2015). Pure rules
// shared by the materializer (honouring claims, planning grants) and devices (what is left,
// what is at risk).
//
// The server grants each device a cumulative number of units of an item (`granted`, which only
// grows). A device numbers the units it sells of that item 0, 1, 2, ... and writes on each sale
// line which units it takes (`claim`: the first one; the line takes `quantity` units from there).
// A claim inside [0, granted) that overlaps no unit already honoured is honoured whatever order
// entries arrive in, because the units still granted and unsold (the reservation) are never
// handed to anyone else: every sale or write-off without a claim may take only stock minus the
// reservations. So stock ≥ Σ reservations ≥ 0 holds after every decision.
import { MAX_STOCK_DELTA } from "./bounds.js";
import { getOwn, type IdRecord } from "./records.js";

/** The provenance scope of grants: the materializer's own, never a device segment's id. */
export const GRANT_SCOPE = "materializer:allowances";

export type AtRiskPolicy = "flag" | "refuse";

export interface AllowanceSettings {
  /** Items under the allowance policy: every item, or these ids. */
  items: "all" | string[];
  /** A sale beyond the device's allowance: recorded and shown at risk, or refused on the device. */
  atRisk: AtRiskPolicy;
  /** Percent of an item's stock handed out as allowances; the rest is the server's share (gateway, sales at risk). */
  sharePercent: number;
}

export const DEFAULT_ALLOWANCE_SETTINGS: Readonly<AllowanceSettings> = Object.freeze({ items: [], atRisk: "flag", sharePercent: 80 });

const MAX_POLICY_ITEMS = 10_000;

export function parseAllowanceSettings(raw: unknown): { ok: true; settings: AllowanceSettings } | { ok: false; reason: string } {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return { ok: false, reason: "settings: allowances must be an object" };
  const out: AllowanceSettings = { ...DEFAULT_ALLOWANCE_SETTINGS, items: [] };
  for (const key of Object.keys(raw)) {
    const desc = Object.getOwnPropertyDescriptor(raw, key);
    const value: unknown = desc && "value" in desc ? desc.value : undefined;
    if (key === "items") {
      if (value === "all") out.items = "all";
      else if (Array.isArray(value) && value.length <= MAX_POLICY_ITEMS && value.every((v) => typeof v === "string" && /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/.test(v))) {
        out.items = [...new Set(value as string[])];
      } else return { ok: false, reason: `settings: allowances.items must be "all" or a list of at most ${MAX_POLICY_ITEMS} item ids` };
    } else if (key === "atRisk") {
      if (value !== "flag" && value !== "refuse") return { ok: false, reason: "settings: allowances.atRisk must be 'flag' or 'refuse'" };
      out.atRisk = value;
    } else if (key === "sharePercent") {
      if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > 100) {
        return { ok: false, reason: "settings: allowances.sharePercent must be an integer between 0 and 100" };
      }
      out.sharePercent = value;
    } else {
      return { ok: false, reason: `settings: unknown field allowances.${JSON.stringify(key.slice(0, 60))}` };
    }
  }
  return { ok: true, settings: out };
}

export function underPolicy(settings: AllowanceSettings | undefined, item: string): boolean {
  if (settings === undefined) return false;
  return settings.items === "all" || settings.items.includes(item);
}

/**
 * A half-open range [from, to) of unit numbers; lists of them are sorted and merged. Objects,
 * not pairs: FerretDB stores no nested arrays.
 */
export interface UnitRange {
  from: number;
  to: number;
}

export interface AllowanceState {
  item: string;
  device: string;
  /** Units granted so far, cumulative: only grows. */
  granted: number;
  /** Units whose sales were accepted against the allowance. */
  honoured: UnitRange[];
}

/** Item ids have no `/`, so the first `/` separates the item from the device. */
export function allowanceKey(item: string, device: string): string {
  return `${item}/${device}`;
}

export function spentOf(a: AllowanceState): number {
  return a.honoured.reduce((n, r) => n + r.to - r.from, 0);
}

/** One past the highest unit honoured: where a device that lost its own count goes on from. */
export function claimedTo(a: AllowanceState): number {
  return a.honoured.at(-1)?.to ?? 0;
}

/** Units granted and not yet sold: held for their device, out of everyone else's reach. */
export function reservedOf(a: AllowanceState): number {
  return a.granted - spentOf(a);
}

export function reservedFor(allowances: Readonly<IdRecord<AllowanceState>> | undefined, item: string): number {
  if (allowances === undefined) return 0;
  let n = 0;
  for (const a of Object.values(allowances)) if (a.item === item) n += reservedOf(a);
  return n;
}

/** Whether units [from, from+quantity) are granted to the device and none was honoured before. */
export function claimFits(a: AllowanceState | undefined, from: number, quantity: number): boolean {
  if (a === undefined || from < 0 || quantity <= 0 || from + quantity > a.granted) return false;
  return a.honoured.every((r) => from + quantity <= r.from || from >= r.to);
}

export function withClaim(a: AllowanceState, from: number, quantity: number): AllowanceState {
  const ranges: UnitRange[] = [...a.honoured.map((r) => ({ from: r.from, to: r.to })), { from, to: from + quantity }];
  ranges.sort((x, y) => x.from - y.from);
  const merged: UnitRange[] = [];
  for (const r of ranges) {
    const last = merged.at(-1);
    if (last && r.from <= last.to) last.to = Math.max(last.to, r.to);
    else merged.push(r);
  }
  return { ...a, honoured: merged };
}

export function emptyAllowance(item: string, device: string): AllowanceState {
  return { item, device, granted: 0, honoured: [] };
}

// ---- rebalancing (the materializer's grant plan) ----

export interface GrantPlanItem {
  item: string;
  /** Authoritative stock. */
  stock: number;
  /** Every device's allowance of this item (absent: none yet). */
  allowances: readonly AllowanceState[];
}

export interface GrantPlanInput {
  items: readonly GrantPlanItem[];
  /** Devices that get allowances (they have written to the team's ledger). */
  devices: readonly string[];
  /** Units each device sold of each item lately (`${item}/${device}` → units): demand weights. */
  recentSales: ReadonlyMap<string, number>;
  sharePercent: number;
  /** `${item}/${device}` of devices that gave their allowance back and have not sold the item since: not topped up. */
  resting?: ReadonlySet<string>;
}

export interface Grant {
  item: string;
  holder: string;
  /** The new cumulative total. */
  granted: number;
}

/**
 * Top-ups, never take-backs: a device offline may already have sold what it was granted, so an
 * allowance only comes back when its device sells it. Per item, `sharePercent` of the stock is
 * the target of all reservations together, split between devices by weight 1 + recent sales; a
 * device is topped up to its target once it has half of it or less left, from what the target
 * leaves free. Deterministic: devices in order of id.
 */
export function planGrants(input: GrantPlanInput): Grant[] {
  const grants: Grant[] = [];
  const devices = [...new Set(input.devices)].sort();
  if (devices.length === 0) return grants;
  for (const it of input.items) {
    if (it.stock <= 0) continue;
    const byDevice = new Map(it.allowances.map((a) => [a.device, a]));
    const reserved = it.allowances.reduce((n, a) => n + reservedOf(a), 0);
    const pool = Math.floor((it.stock * input.sharePercent) / 100);
    let spare = Math.min(pool - reserved, it.stock - reserved);
    if (spare <= 0) continue;
    const weight = (d: string): number => 1 + (input.recentSales.get(allowanceKey(it.item, d)) ?? 0);
    const total = devices.reduce((n, d) => n + weight(d), 0);
    for (const d of devices) {
      if (spare <= 0) break;
      if (input.resting?.has(allowanceKey(it.item, d))) continue;
      const target = Math.floor((pool * weight(d)) / total);
      const a = byDevice.get(d) ?? emptyAllowance(it.item, d);
      const left = reservedOf(a);
      if (target <= 0 || left * 2 > target) continue;
      const add = Math.min(target - left, spare, MAX_STOCK_DELTA - a.granted);
      if (add <= 0) continue;
      spare -= add;
      grants.push({ item: it.item, holder: d, granted: a.granted + add });
    }
  }
  return grants;
}

// ---- the device's side ----

export interface DeviceAllowance {
  item: string;
  granted: number;
  /** The next unit number this device may claim. */
  next: number;
  /** Units still safe to sell offline. */
  left: number;
}

/**
 * `granted` and `published` (the server's claimedTo) come from the signed status; `ownClaims`
 * are the claim ends of this device's own sale lines of the item (decided or not).
 */
export function deviceAllowance(item: string, granted: number, published: number, ownClaimEnds: Iterable<number>): DeviceAllowance {
  let next = published;
  for (const end of ownClaimEnds) if (end > next) next = end;
  return { item, granted, next, left: Math.max(0, granted - next) };
}

export function allowanceOf(allowances: Readonly<IdRecord<AllowanceState>> | undefined, item: string, device: string): AllowanceState | undefined {
  return allowances === undefined ? undefined : getOwn(allowances, allowanceKey(item, device));
}
