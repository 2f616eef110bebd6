// Closed periods: once a day is closed its daily summary never changes. Days close in order (a
// close names the last closed day, `closedThrough`, and every earlier day is closed with it), so
// "the first open day", where anything late is booked, is always the day after it.
import { MAX_CLOSE_AFTER_HOURS } from "./bounds.js";

const DAY_MS = 24 * 3600 * 1000;
const DAY_RE = /^\d{4}-\d{2}-\d{2}$/;

/** A UTC day, `YYYY-MM-DD`, that exists in the calendar. */
export function isDay(value: unknown): value is string {
  if (typeof value !== "string" || !DAY_RE.test(value)) return false;
  const ms = Date.parse(`${value}T00:00:00.000Z`);
  return Number.isFinite(ms) && new Date(ms).toISOString().slice(0, 10) === value;
}

export function dayOf(at: string): string {
  return at.slice(0, 10);
}

export function nextDay(day: string): string {
  return new Date(Date.parse(`${day}T00:00:00.000Z`) + DAY_MS).toISOString().slice(0, 10);
}

export function isClosed(day: string, closedThrough: string | null): boolean {
  return closedThrough !== null && day <= closedThrough;
}

/**
 * The last day the `closeAfterHours` setting has closed at `now`: a day closes that many hours
 * after its end (UTC midnight). Null when the setting is off or `now` does not parse.
 */
export function dueClosedThrough(now: string, closeAfterHours: number | null): string | null {
  if (closeAfterHours === null || closeAfterHours < 0 || closeAfterHours > MAX_CLOSE_AFTER_HOURS) return null;
  const ms = Date.parse(now);
  if (!Number.isFinite(ms)) return null;
  // Day D ends at D+1 00:00; it is closed once now ≥ that + grace, i.e. D < day(now − grace).
  const reference = dayOf(new Date(ms - closeAfterHours * 3600 * 1000).toISOString());
  return new Date(Date.parse(`${reference}T00:00:00.000Z`) - DAY_MS).toISOString().slice(0, 10);
}

/** An invoice's contribution to the daily summary of the day it is booked in. */
export interface SummaryFigures {
  salesCount: number;
  voidCount: number;
  revenue: number;
  paymentsReceived: number;
  outstanding: number;
}

/** `inv` is an invoice's state (state.ts InvoiceState); only these fields count. */
export function invoiceFigures(inv: { status: string; total: number; paid: number; initialPaid: number }): SummaryFigures {
  const isVoid = inv.status === "void";
  return {
    salesCount: isVoid ? 0 : 1,
    voidCount: isVoid ? 1 : 0,
    revenue: isVoid ? 0 : inv.total,
    paymentsReceived: inv.initialPaid,
    outstanding: inv.status === "open" ? inv.total - inv.paid : 0,
  };
}

/**
 * A change to an invoice whose booking day was closed: the difference of its figures, booked in
 * the first open day instead, so the closed day keeps its summary and the totals still add up.
 */
export interface Adjustment extends SummaryFigures {
  invoice: string;
}

export function adjustment(invoice: string, before: SummaryFigures, after: SummaryFigures): Adjustment {
  return {
    invoice,
    salesCount: after.salesCount - before.salesCount,
    voidCount: after.voidCount - before.voidCount,
    revenue: after.revenue - before.revenue,
    paymentsReceived: after.paymentsReceived - before.paymentsReceived,
    outstanding: after.outstanding - before.outstanding,
  };
}

/**
 * How an accepted entry decided while some days were closed is booked. Present on a verdict (and
 * its journal record) only when a close changed where its figures go: the entry is dated in a
 * closed day (`late`), or it changed an invoice booked in one (`adjustments`).
 */
export interface Booking {
  /** The entry's own day (of its `at`) was closed: its figures are booked in `day`. */
  late: boolean;
  /** The first open day when it was decided. */
  day: string;
  /** The last closed day when it was decided. */
  closedThrough: string;
  adjustments: Adjustment[];
}
