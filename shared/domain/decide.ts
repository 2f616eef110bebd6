// The materializer's decision function. Pure: the same state, batch, settings and `now` always
// give the same result; the input state is never mutated.
import { allowanceKey, claimedTo, claimFits, emptyAllowance, GRANT_SCOPE, reservedFor, withClaim, type AllowanceState } from "./allowances.js";
import type { Effect, PaymentRecord, Tamper, Verdict } from "./effects.js";
import { entryHash, sha256Hex } from "./hash.js";
import { adjustment, dayOf, invoiceFigures, isClosed, nextDay, type Adjustment, type Booking } from "./periods.js";
import { deleteOwn, getOwn, putOwn } from "./records.js";
import type { TeamSettings } from "./settings.js";
import { invoiceRecord, type InvoiceState, type LedgerState } from "./state.js";
import type { AllowanceEntry, LedgerEntry, PaymentEntry, SaleEntry, StockEntry, VoidEntry } from "./types.js";
import { atMillis, keyLabel, parseEntry } from "./validate.js";

export interface BatchInput {
  key: string;
  raw: unknown;
  /**
   * Where the entry was read from (the materializer passes its segment). Atomic groups are
   * scoped to it: entries elsewhere that name the same `batch` form another group, so no
   * writer can tie someone else's entries to its own failing one.
   */
  scope?: string;
  /**
   * The device whose segment the entry was read from. Allowance claims count only on that
   * device's own entries: a team mate writing entries in another device's name cannot spend
   * its allowance.
   */
  owner?: string | null;
}

export interface BatchResult {
  state: LedgerState;
  /** One verdict per entry decided in this batch, in decision order. */
  verdicts: Verdict[];
  /** Already-decided entries that came back with different content; the state keeps the decided one. */
  tampered: Tamper[];
}

type Judged =
  | { valid: true; id: string; entry: LedgerEntry; hash: string; ms: number; scope: string; owner: string | null }
  | { valid: false; id: string; reason: string; hash: string };

type Outcome = { status: "accepted"; effects: Effect[]; flags: string[]; booking?: Booking | undefined } | { status: "rejected"; reason: string };

/**
 * An invalid entry has no trustworthy content to hash, so its hash covers the reason: it stays
 * stable while the entry is unchanged, and a later change that alters the reason is a tamper.
 */
function invalidHash(reason: string): string {
  return sha256Hex(`invalid\n${reason}`);
}

function judge(item: BatchInput): Judged {
  const key: unknown = item.key;
  const id = typeof key === "string" ? key : keyLabel(key);
  let raw: unknown;
  try {
    raw = item.raw;
  } catch {
    raw = undefined;
  }
  const parsed = parseEntry(id, raw);
  if (!parsed.ok) return { valid: false, id, reason: parsed.reason, hash: invalidHash(parsed.reason) };
  const scope = typeof item.scope === "string" ? item.scope : "";
  const owner = typeof item.owner === "string" ? item.owner : null;
  return { valid: true, id, entry: parsed.entry, hash: entryHash(parsed.entry), ms: atMillis(parsed.entry.at), scope, owner };
}

type ValidJudged = Extract<Judged, { valid: true }>;

function groupKey(j: ValidJudged): string | undefined {
  return j.entry.batch === undefined ? undefined : `${j.scope}\n${j.entry.batch}`;
}

/** The reason every other entry of a refused atomic group carries; the culprit keeps its own. */
export function batchRefusedReason(batch: string, culprit: string, reason: string): string {
  return `${batchRefusedPrefix(batch)}: entry ${culprit}: ${reason}`.slice(0, 2000);
}

export function batchRefusedPrefix(batch: string): string {
  return `batch ${batch} refused`;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Canonical order: invalid entries first (they never touch the state, so their place changes no
 * other verdict) by key, then valid ones by (`at`, `id`). The hash breaks ties between two
 * versions of one id in the same batch, so the first-decided version does not depend on arrival.
 */
function canonicalOrder(a: Judged, b: Judged): number {
  if (!a.valid || !b.valid) {
    if (a.valid !== b.valid) return a.valid ? 1 : -1;
    return cmp(a.id, b.id) || cmp(a.hash, b.hash);
  }
  return a.ms - b.ms || cmp(a.id, b.id) || cmp(a.hash, b.hash);
}

/** What a rejected sale leaves: payments and voids against it are refused with a reason. */
function rejectedInvoice(e: SaleEntry): InvoiceState {
  return {
    total: e.total, paid: 0, initialPaid: 0, refundDue: 0, status: "rejected", customer: e.customer,
    at: e.at, day: dayOf(e.at), device: e.device, user: e.user, lines: [],
  };
}

/** Without reservations, the message the classic rules always gave. */
function insufficient(item: string, requested: number, available: number, reserved: number): string {
  if (reserved <= 0) return `insufficient stock for item ${item}: requested ${requested}, available ${available}`;
  return `insufficient stock for item ${item}: requested ${requested}, available ${Math.max(0, available - reserved)} (${reserved} held in devices' offline allowances)`;
}

function byAtThenId(a: { entry: LedgerEntry }, b: { entry: LedgerEntry }): number {
  return atMillis(a.entry.at) - atMillis(b.entry.at) || cmp(a.entry.id, b.entry.id);
}

class Decider {
  readonly verdicts: Verdict[] = [];
  readonly tampered: Tamper[] = [];

  /** While a group is decided: how to put back every record it changed, newest last. */
  private undo: (() => void)[] | null = null;
  /** Where each valid entry of the batch came from (allowance grants and claims depend on it). */
  private readonly origin = new Map<string, { scope: string; owner: string | null }>();

  constructor(
    readonly s: LedgerState,
    readonly settings: TeamSettings,
    readonly now: string,
    /** The last closed day (periods.ts), null when none is. */
    readonly closedThrough: string | null,
  ) {}

  run(judged: readonly Judged[]): void {
    const groups = new Map<string, ValidJudged[]>();
    for (const j of judged) {
      if (!j.valid) continue;
      if (!this.origin.has(j.id)) this.origin.set(j.id, { scope: j.scope, owner: j.owner });
      const key = groupKey(j);
      if (key === undefined) continue;
      const members = groups.get(key);
      if (members) members.push(j);
      else groups.set(key, [j]);
    }
    const groupsDone = new Set<string>();
    for (const j of judged) {
      const prior = getOwn(this.s.decided, j.id);
      if (prior !== undefined) {
        if (prior.hash !== j.hash) this.tampered.push({ id: j.id, decidedHash: prior.hash, newHash: j.hash });
        continue;
      }
      if (!j.valid) {
        this.put(this.s.decided, j.id, { hash: j.hash, status: "invalid" });
        this.verdicts.push({ id: j.id, status: "invalid", reason: j.reason, hash: j.hash, effects: [] });
        continue;
      }
      const key = groupKey(j);
      if (key === undefined) {
        this.decide(j.entry, j.hash);
        continue;
      }
      // The whole group is decided where its first entry falls in canonical order.
      if (groupsDone.has(key)) continue;
      groupsDone.add(key);
      this.decideGroup(groups.get(key)!);
    }
    this.expireDeferred();
  }

  /**
   * All or nothing: members are decided in canonical order, each against the state the earlier
   * ones left; if one is not accepted (rejected, or deferred: its invoice is unknown), the state
   * and verdicts go back to before the group and every member is rejected, the culprit with its
   * own reason and the others naming it. A group that did not arrive whole (fewer distinct
   * entries than `batchSize`, sizes that disagree) is refused the same way, and a group some of
   * whose members were decided earlier (a crash between journal writes) follows them.
   */
  private decideGroup(members: readonly ValidJudged[]): void {
    const batch = members[0]!.entry.batch!;
    const size = members[0]!.entry.batchSize ?? 0;
    // Two versions of one id: the first in canonical order is the member; run() reports the rest as tampered.
    const firstVersions = new Map<string, ValidJudged>();
    for (const m of members) if (!firstVersions.has(m.id)) firstVersions.set(m.id, m);
    const distinct = [...firstVersions.values()];
    const priors = distinct.map((m) => getOwn(this.s.decided, m.id)?.status);
    const fresh = distinct.filter((_, i) => priors[i] === undefined);
    // A culprit without an id refuses every member with the same reason.
    let culprit: { id?: string; reason: string } | undefined;
    if (distinct.length !== size || distinct.some((m) => m.entry.batchSize !== size)) {
      culprit = { reason: `${batchRefusedPrefix(batch)}: ${distinct.length} of ${size} entries arrived together` };
    } else if (priors.some((p) => p !== undefined && p !== "accepted")) {
      culprit = { reason: `${batchRefusedPrefix(batch)}: part of it was refused before` };
    } else {
      this.undo = [];
      const verdictCount = this.verdicts.length;
      for (const m of fresh) {
        this.decide(m.entry, m.hash);
        const status = getOwn(this.s.decided, m.id)?.status;
        if (status === "accepted") continue;
        const verdict = this.verdicts.findLast((v) => v.id === m.id);
        const reason = status === "deferred" && (m.entry.kind === "payment" || m.entry.kind === "void")
          ? `Invoice not found for ${m.entry.kind}: ${m.entry.invoice}`
          : verdict?.reason ?? `entry ${m.id} was ${status ?? "not decided"}`;
        culprit = { id: m.id, reason };
        break;
      }
      const undo = this.undo;
      this.undo = null;
      if (culprit === undefined) return;
      for (let i = undo.length - 1; i >= 0; i--) undo[i]!();
      this.verdicts.length = verdictCount;
    }
    for (const m of fresh) {
      const reason = culprit.id === undefined || culprit.id === m.id ? culprit.reason : batchRefusedReason(batch, culprit.id, culprit.reason);
      if (m.entry.kind === "sale") this.put(this.s.invoices, m.id, rejectedInvoice(m.entry));
      this.record(m.entry, m.hash, { status: "rejected", reason });
    }
    for (const m of fresh) if (m.entry.kind === "sale") this.resolveWaiting(m.id);
  }

  /** Every change to the state goes through put and del, so a refused group can be undone in O(changes). */
  private put<T>(rec: Record<string, T>, key: string, value: NoInfer<T>): void {
    if (this.undo) {
      const had = Object.hasOwn(rec, key);
      const old = getOwn(rec, key);
      this.undo.push(() => (had ? putOwn(rec, key, old as T) : deleteOwn(rec, key)));
    }
    putOwn(rec, key, value);
  }

  private del<T>(rec: Record<string, T>, key: string): void {
    if (this.undo && Object.hasOwn(rec, key)) {
      const old = getOwn(rec, key) as T;
      this.undo.push(() => putOwn(rec, key, old));
    }
    deleteOwn(rec, key);
  }

  private decide(entry: LedgerEntry, hash: string): void {
    let outcome: Outcome;
    switch (entry.kind) {
      case "sale":
        outcome = this.sale(entry);
        break;
      case "stock":
        outcome = this.stock(entry);
        break;
      case "allowance":
        outcome = this.grant(entry);
        break;
      case "payment":
      case "void": {
        if (entry.kind === "payment" && entry.amount <= 0) {
          outcome = { status: "rejected", reason: "Payment must have amount > 0" };
          break;
        }
        const inv = getOwn(this.s.invoices, entry.invoice);
        if (inv === undefined) {
          this.defer(entry, hash);
          return;
        }
        outcome = entry.kind === "payment" ? this.payment(entry, inv) : this.voidInvoice(entry, inv);
        break;
      }
    }
    this.record(entry, hash, outcome);
    if (entry.kind === "sale") this.resolveWaiting(entry.id);
  }

  private record(entry: LedgerEntry, hash: string, outcome: Outcome): void {
    this.put(this.s.decided, entry.id, { hash, status: outcome.status });
    if (outcome.status === "rejected") {
      this.verdicts.push({ id: entry.id, status: "rejected", reason: outcome.reason, entry, hash, effects: [] });
      return;
    }
    const verdict: Verdict = { id: entry.id, status: "accepted", entry, hash, effects: outcome.effects };
    if (outcome.flags.length > 0) verdict.flags = outcome.flags;
    if (outcome.booking) verdict.booking = outcome.booking;
    this.verdicts.push(verdict);
  }

  private defer(entry: PaymentEntry | VoidEntry, hash: string): void {
    this.put(this.s.deferred, entry.id, { entry, hash, since: this.now });
    this.put(this.s.decided, entry.id, { hash, status: "deferred" });
    this.verdicts.push({
      id: entry.id,
      status: "deferred",
      reason: `waiting for invoice ${entry.invoice}`,
      entry,
      hash,
      effects: [],
    });
  }

  /** Entries that waited for this invoice are decided right after it, in (at, id) order. */
  private resolveWaiting(invoiceId: string): void {
    const waiting = Object.values(this.s.deferred)
      .filter((d) => d.entry.invoice === invoiceId)
      .sort(byAtThenId);
    for (const d of waiting) {
      this.del(this.s.deferred, d.entry.id);
      this.decide(d.entry, d.hash);
    }
  }

  /**
   * After the batch, so an invoice arriving in the same batch still rescues its payments. An
   * unparseable `now` expires nothing rather than everything.
   */
  private expireDeferred(): void {
    const nowMs = Date.parse(this.now);
    const waitMs = this.settings.deferWaitSeconds * 1000;
    const expired = Object.values(this.s.deferred)
      .filter((d) => nowMs - Date.parse(d.since) > waitMs)
      .sort(byAtThenId);
    for (const d of expired) {
      this.del(this.s.deferred, d.entry.id);
      const what = d.entry.kind === "payment" ? "payment" : "void";
      this.record(d.entry, d.hash, { status: "rejected", reason: `Invoice not found for ${what}: ${d.entry.invoice}` });
    }
  }

  private sale(e: SaleEntry): Outcome {
    const rejected = (reason: string): Outcome => {
      this.put(this.s.invoices, e.id, rejectedInvoice(e));
      return { status: "rejected", reason };
    };
    const subtotal = e.lines.reduce((sum, l) => sum + l.quantity * l.price, 0);
    if (e.subtotal !== subtotal) return rejected(`subtotal does not match lines: stated ${e.subtotal}, computed ${subtotal}`);
    const total = subtotal + e.tax - e.discount;
    if (total < 0) return rejected(`discount cannot exceed subtotal plus tax: computed total ${total}`);
    if (e.total !== total) return rejected(`total does not match subtotal + tax - discount: stated ${e.total}, computed ${total}`);
    if (e.paid < 0) return rejected("Paid amount cannot be negative");
    if (e.paid > total) return rejected("Paid amount cannot exceed total amount");

    // Lines that create an item move no stock: the legacy gateway creates such items with zero
    // stock and decrements only lines that named an existing product.
    const created = new Map<string, { name: string; price: number }>();
    const need = new Map<string, number>();
    for (const line of e.lines) {
      const item = getOwn(this.s.items, line.item);
      if (item !== undefined) {
        if (!item.active) return rejected(`item ${line.item} is not active`);
        need.set(line.item, (need.get(line.item) ?? 0) + line.quantity);
      } else if (created.has(line.item)) {
        continue;
      } else if (line.name !== undefined) {
        created.set(line.item, { name: line.name, price: line.price });
      } else {
        return rejected(`Item not found for sale: ${line.item}`);
      }
    }
    const claims = this.claimsOf(e);
    const flags: string[] = [];
    for (const [item, quantity] of need) {
      // Units claimed within the device's allowance are covered by its reservation; the rest
      // may take only what no allowance holds.
      const fromPool = quantity - (claims.claimed.get(item) ?? 0);
      const available = getOwn(this.s.stock, item) ?? 0;
      const reserved = reservedFor(this.s.allowances, item);
      if (fromPool <= available - reserved) continue;
      if (this.settings.oversell === "reject") {
        return rejected(insufficient(item, fromPool, available, reserved));
      }
      if (quantity > available) flags.push(`negative-stock:${item}`);
    }

    const effects: Effect[] = [];
    for (const [id, c] of created) {
      this.put(this.s.items, id, { name: c.name, price: c.price, active: true });
      effects.push({ type: "item", entry: e.id, item: { id, name: c.name, price: c.price, active: true } });
    }
    const lines: { item: string; quantity: number }[] = [];
    for (const [item, quantity] of need) {
      const level = (getOwn(this.s.stock, item) ?? 0) - quantity;
      this.put(this.s.stock, item, level);
      lines.push({ item, quantity });
      effects.push({ type: "stock", entry: e.id, item, delta: -quantity, level });
    }
    for (const a of claims.after.values()) {
      this.put(this.allowances(), allowanceKey(a.item, a.device), a);
      effects.push({ type: "allowance", entry: e.id, allowance: a });
    }
    const inv: InvoiceState = {
      total, paid: e.paid, initialPaid: e.paid, refundDue: 0,
      status: e.paid >= total ? "finalized" : "open",
      customer: e.customer, at: e.at, day: dayOf(e.at), device: e.device, user: e.user, lines,
    };
    const booking = this.booking(e, []);
    if (booking?.late) inv.bookedOn = booking.day;
    this.put(this.s.invoices, e.id, inv);
    this.invoiceEffects(e.id, e.id, inv, effects);
    return { status: "accepted", effects, flags, booking };
  }

  /**
   * The lines of a sale that claim units of the writing device's allowance, honoured in line
   * order: a claim outside the grant, or overlapping units honoured before (the same units sold
   * twice: two segments, a replay, a forged entry), counts as a sale without a claim.
   */
  private claimsOf(e: SaleEntry): { claimed: Map<string, number>; after: Map<string, AllowanceState> } {
    const claimed = new Map<string, number>();
    const after = new Map<string, AllowanceState>();
    if (this.s.allowances === undefined || this.origin.get(e.id)?.owner !== e.device) return { claimed, after };
    for (const line of e.lines) {
      if (line.claim === undefined) continue;
      const current = after.get(line.item) ?? getOwn(this.s.allowances, allowanceKey(line.item, e.device));
      if (!claimFits(current, line.claim, line.quantity)) continue;
      after.set(line.item, withClaim(current!, line.claim, line.quantity));
      claimed.set(line.item, (claimed.get(line.item) ?? 0) + line.quantity);
    }
    return { claimed, after };
  }

  private allowances(): Record<string, AllowanceState> {
    return (this.s.allowances ??= {});
  }

  /**
   * A grant raises a device's cumulative allowance, from stock no other allowance holds. Only
   * the materializer grants: an entry of this kind from a device's segment can only give back.
   */
  private grant(e: AllowanceEntry): Outcome {
    const origin = this.origin.get(e.id);
    if (origin?.scope !== GRANT_SCOPE) return this.giveBack(e, origin?.owner ?? null);
    const key = allowanceKey(e.item, e.holder);
    const current = getOwn(this.allowances(), key) ?? emptyAllowance(e.item, e.holder);
    if (e.granted < current.granted) {
      return { status: "rejected", reason: `allowance of item ${e.item} for device ${e.holder} cannot shrink: granted ${current.granted}, asked ${e.granted}` };
    }
    const add = e.granted - current.granted;
    const available = getOwn(this.s.stock, e.item) ?? 0;
    const free = available - reservedFor(this.s.allowances, e.item);
    if (add > free) {
      return { status: "rejected", reason: `insufficient stock for allowance of item ${e.item} to device ${e.holder}: requested ${add}, unreserved ${Math.max(0, free)}` };
    }
    const next: AllowanceState = { ...current, granted: e.granted };
    this.put(this.allowances(), key, next);
    return { status: "accepted", effects: [{ type: "allowance", entry: e.id, allowance: next }], flags: [] };
  }

  /**
   * A device gives back the units of its allowance it has not claimed, lowering its own
   * `granted` to no less than the units honoured so far: from then on they are free stock. The
   * device writes it from its own claim count, so none of its sales, even those still on their
   * way, claims a unit given back.
   */
  private giveBack(e: AllowanceEntry, owner: string | null): Outcome {
    const what = `allowance of item ${e.item} for device ${e.holder}`;
    if (owner === null || owner !== e.device || e.holder !== e.device) {
      return { status: "rejected", reason: `allowance ${e.id}: allowances are granted by the materializer only; a device may give back only its own` };
    }
    const current = getOwn(this.allowances(), allowanceKey(e.item, e.holder));
    if (current === undefined || e.granted >= current.granted) {
      return { status: "rejected", reason: `${what}: nothing to give back: granted ${current?.granted ?? 0}, asked ${e.granted}` };
    }
    if (e.granted < claimedTo(current)) {
      return { status: "rejected", reason: `${what}: units up to ${claimedTo(current)} are sold, cannot give back below` };
    }
    const next: AllowanceState = { ...current, granted: e.granted };
    this.put(this.allowances(), allowanceKey(e.item, e.holder), next);
    return { status: "accepted", effects: [{ type: "allowance", entry: e.id, allowance: next }], flags: [] };
  }

  private stock(e: StockEntry): Outcome {
    const available = getOwn(this.s.stock, e.item) ?? 0;
    const level = available + e.delta;
    const reserved = e.delta < 0 ? reservedFor(this.s.allowances, e.item) : 0;
    const flags: string[] = [];
    if (level < reserved) {
      if (this.settings.oversell === "reject") {
        return { status: "rejected", reason: insufficient(e.item, -e.delta, available, reserved) };
      }
      if (level < 0) flags.push(`negative-stock:${e.item}`);
    }
    this.put(this.s.stock, e.item, level);
    return { status: "accepted", effects: [{ type: "stock", entry: e.id, item: e.item, delta: e.delta, level }], flags, booking: this.booking(e, []) };
  }

  private payment(e: PaymentEntry, inv: InvoiceState): Outcome {
    if (inv.status === "rejected") return { status: "rejected", reason: `Invoice ${e.invoice} was rejected and cannot take payments` };
    if (inv.status === "void") return { status: "rejected", reason: `Invoice ${e.invoice} is void` };
    if (e.amount > inv.total - inv.paid) return { status: "rejected", reason: "Payment exceeds outstanding balance" };
    const next: InvoiceState = { ...inv, paid: inv.paid + e.amount };
    if (next.paid >= next.total) next.status = "finalized";
    this.put(this.s.invoices, e.invoice, next);
    const booking = this.booking(e, this.adjustments(e.invoice, inv, next));
    const payment: PaymentRecord = { id: e.id, invoice: e.invoice, amount: e.amount, at: e.at, day: dayOf(e.at), device: e.device, user: e.user };
    if (booking?.late) payment.bookedOn = booking.day;
    const effects: Effect[] = [{ type: "payment", entry: e.id, payment }];
    this.invoiceEffects(e.id, e.invoice, next, effects);
    return { status: "accepted", effects, flags: [], booking };
  }

  /**
   * A void is accepted for open and finalized invoices alike, paid or not: a till must be able
   * to cancel a cash sale. Payments already received are not erased (the money came in) but
   * recorded as `refundDue`; the invoice stops owing anything and takes no further payments.
   */
  private voidInvoice(e: VoidEntry, inv: InvoiceState): Outcome {
    if (inv.status === "rejected") return { status: "rejected", reason: `Invoice ${e.invoice} was rejected and cannot be voided` };
    if (inv.status === "void") return { status: "rejected", reason: `Invoice ${e.invoice} is already void` };
    const effects: Effect[] = [];
    for (const line of inv.lines) {
      const level = (getOwn(this.s.stock, line.item) ?? 0) + line.quantity;
      this.put(this.s.stock, line.item, level);
      effects.push({ type: "stock", entry: e.id, item: line.item, delta: line.quantity, level });
    }
    const wasFinalized = inv.status === "finalized";
    const next: InvoiceState = { ...inv, status: "void", refundDue: inv.paid };
    this.put(this.s.invoices, e.invoice, next);
    this.invoiceEffects(e.id, e.invoice, next, effects, wasFinalized);
    return { status: "accepted", effects, flags: [], booking: this.booking(e, this.adjustments(e.invoice, inv, next)) };
  }

  /**
   * Where a close moves an accepted entry's figures: a late entry's own figures, and every change
   * to an invoice booked in a closed day, go to the first open day. Undefined when nothing moves.
   */
  private booking(entry: LedgerEntry, adjustments: Adjustment[]): Booking | undefined {
    const closedThrough = this.closedThrough;
    if (closedThrough === null) return undefined;
    const late = isClosed(dayOf(entry.at), closedThrough);
    if (!late && adjustments.length === 0) return undefined;
    return { late, day: nextDay(closedThrough), closedThrough, adjustments };
  }

  /** The change of an invoice booked in a closed day, which its own day's summary must not show. */
  private adjustments(id: string, before: InvoiceState, after: InvoiceState): Adjustment[] {
    if (!isClosed(before.bookedOn ?? before.day, this.closedThrough)) return [];
    return [adjustment(id, invoiceFigures(before), invoiceFigures(after))];
  }

  private invoiceEffects(entry: string, id: string, inv: InvoiceState, effects: Effect[], hadPurchase = false): void {
    const record = invoiceRecord(id, inv);
    if (record === undefined) return;
    effects.push({ type: "invoice", entry, invoice: record });
    if (inv.customer === null) return;
    if (inv.status === "finalized" || (inv.status === "void" && hadPurchase)) {
      effects.push({
        type: "purchase",
        entry,
        purchase: { customer: inv.customer, invoice: id, total: inv.total, at: inv.at, void: inv.status === "void" },
      });
    }
  }
}

/**
 * Decides a batch against `state`: entries are put in canonical order, then decided one by one
 * against the state left by the previous ones. Entries already decided are skipped (and
 * reported as tampered when their content changed). Payments and voids whose invoice is unknown
 * are deferred until it arrives or `now` passes their wait.
 */
export function decideBatch(
  state: LedgerState,
  batch: readonly BatchInput[],
  settings: TeamSettings,
  now: string,
  /** The last closed day (periods.ts): accepted entries dated up to it are booked late. */
  closedThrough: string | null = null,
): BatchResult {
  return decideInto(structuredClone(state), batch, settings, now, closedThrough);
}

/**
 * decideBatch without the copy: `state` is changed in place and returned as the result's state.
 * For replaying a whole journal one record at a time (server/audit/deep.ts), where copying the
 * state for every record would cost the square of the journal's length.
 */
export function decideInto(
  state: LedgerState,
  batch: readonly BatchInput[],
  settings: TeamSettings,
  now: string,
  closedThrough: string | null = null,
): BatchResult {
  const judged = batch.map(judge).sort(canonicalOrder);
  const decider = new Decider(state, settings, now, closedThrough);
  decider.run(judged);
  // An entry deferred and resolved within this batch reports only its final verdict.
  const lastIndex = new Map<string, number>();
  decider.verdicts.forEach((v, i) => lastIndex.set(v.id, i));
  const verdicts = decider.verdicts.filter((v, i) => lastIndex.get(v.id) === i);
  return { state: decider.s, verdicts, tampered: decider.tampered };
}
