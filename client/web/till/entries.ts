/** The Entries screen: this device's entries, newest first, each with its verdict and reason. */
import type { Device, EntryStatus } from "../../index.js";
import type { LedgerEntry } from "../../../shared/domain/index.js";
import { h, money, nameItems, replace } from "../common/dom.js";
import { short, unchanged, type Screen, type ScreenContext } from "./screen.js";

/** A server reason with the items it names by id named by name. */
export function readableReason(device: Device, reason: string): string {
  return nameItems(reason, new Map(device.items().map((i) => [i.id, i.name])));
}

const STATUS_TEXT: Record<EntryStatus, string> = { undecided: "pending", accepted: "accepted", rejected: "rejected", deferred: "deferred", invalid: "invalid" };

function describe(ctx: ScreenContext, e: LedgerEntry): string {
  const name = (id: string): string => ctx.device.items().find((i) => i.id === id)?.name ?? short(id);
  switch (e.kind) {
    case "sale":
      return `${e.lines.map((l) => `${l.quantity} × ${name(l.item)}`).join(", ")} · total ${money(e.total)}, paid ${money(e.paid)}`;
    case "payment":
      return `${money(e.amount)} on ${short(e.invoice)}`;
    case "stock":
      return `${e.delta > 0 ? "+" : ""}${e.delta} ${name(e.item)} (${e.reason})`;
    case "void":
      return `sale ${short(e.invoice)} (${e.reason})`;
    case "allowance":
      return `allowance of ${name(e.item)} given back to ${e.granted} units`;
  }
}

export function entries(ctx: ScreenContext): Screen {
  const list = h("div", { class: "table-wrap" });
  const same = unchanged();
  return {
    name: "Entries",
    form: () => h("section", { class: "card", "aria-label": "This device's entries" }, h("h2", {}, "This device's entries"), list),
    live() {
      const own = ctx.device.ownEntries().sort((a, b) => b.entry.at.localeCompare(a.entry.at));
      if (same([own, ctx.device.items().map((i) => i.name)]) && list.isConnected) return null;
      replace(
        list,
        own.length === 0 ? h("p", {}, "Nothing recorded on this device yet.") : null,
        own.length === 0
          ? null
          : h(
              "table",
              { class: "entries" },
              h("thead", {}, h("tr", {}, h("th", {}, "When"), h("th", {}, "Kind"), h("th", {}, "What"), h("th", {}, "Verdict"))),
              h(
                "tbody",
                {},
                ...own.map(({ entry, status, reason }) =>
                  h(
                    "tr",
                    { "data-entry": entry.id, "data-status": status },
                    h("td", {}, entry.at.slice(0, 19).replace("T", " ")),
                    h("td", {}, entry.kind),
                    h("td", {}, describe(ctx, entry)),
                    h("td", { class: `verdict ${status}` }, STATUS_TEXT[status], reason ? `: ${readableReason(ctx.device, reason)}` : ""),
                  ),
                ),
              ),
            ),
      );
      return null;
    },
  };
}
