/** The till's screens, in the order of its navigation. */
import { catalog } from "./catalog.js";
import { entries } from "./entries.js";
import { invoiceForm } from "./invoices.js";
import type { Screen, ScreenContext } from "./screen.js";
import { sell } from "./sell.js";
import { receive } from "./stock.js";

export { readableReason } from "./entries.js";
export type { Screen, ScreenContext } from "./screen.js";

export function screens(ctx: ScreenContext): Screen[] {
  return [
    sell(ctx),
    receive(ctx),
    { name: "Payment", form: () => invoiceForm(ctx, "payment"), live: () => null },
    { name: "Void", form: () => invoiceForm(ctx, "void"), live: () => null },
    catalog(ctx),
    entries(ctx),
  ];
}
