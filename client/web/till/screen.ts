/**
 * What every till screen is made of: a form built once (what a clerk types survives updates) and
 * a live part redrawn from the device whenever something changes (stock, invoices, verdicts).
 * Every figure is the device's provisional one: authoritative plus this device's undecided entries.
 */
import type { Device } from "../../index.js";
import type { LedgerEntry } from "../../../shared/domain/index.js";
import { h, money, type Child } from "../common/dom.js";

export interface Screen {
  name: string;
  /** Built once when the screen is opened. */
  form(): HTMLElement;
  /** Redrawn on every change; may be empty. */
  live(): Child;
}

export interface ScreenContext {
  device: Device;
  /** Shows the outcome of an action (role=status). */
  say(text: string, error?: boolean): void;
  /** Called after a write: entries made offline are remembered for the rejection notice. */
  recorded(entry: LedgerEntry): void;
}

/**
 * Redraws only when what a list shows changed: a redraw under a clerk's fingers would take the
 * focus and the half-typed price away.
 */
export function unchanged(): (key: unknown) => boolean {
  let last = "";
  return (key) => {
    const k = JSON.stringify(key);
    if (k === last) return true;
    last = k;
    return false;
  };
}

export function short(id: string): string {
  return id.slice(0, 8);
}

export function run(ctx: ScreenContext, form: HTMLFormElement, action: () => Promise<string>): void {
  const button = form.querySelector<HTMLButtonElement>("button[type=submit]");
  if (button) button.disabled = true;
  action()
    .then((text) => {
      ctx.say(text);
      form.reset();
    })
    .catch((err: unknown) => ctx.say(err instanceof Error ? err.message : String(err), true))
    .finally(() => {
      if (button) button.disabled = false;
    });
}

export function itemOptions(ctx: ScreenContext, activeOnly: boolean): HTMLOptionElement[] {
  return ctx.device
    .items()
    .filter((i) => i.active || !activeOnly)
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((i) => h("option", { value: i.id }, `${i.name} (${money(i.price)})`));
}

export function openInvoices(ctx: ScreenContext): Array<{ id: string; label: string; outstanding: number }> {
  const customers = new Map(ctx.device.catalog().customers.map((c) => [c.id, c.name]));
  return ctx.device
    .invoices()
    .filter((v) => v.provisional?.status === "open" && v.verdict?.status !== "rejected")
    .sort((a, b) => b.sale.at.localeCompare(a.sale.at))
    .map((v) => {
      const outstanding = v.provisional?.outstanding ?? 0;
      const who = v.sale.customer ? customers.get(v.sale.customer) ?? "customer" : "walk-in";
      return { id: v.id, outstanding, label: `${short(v.id)} · ${who} · ${v.sale.at.slice(0, 16).replace("T", " ")} · owes ${money(outstanding)}` };
    });
}
