/** The Sell screen: quantities per active item, a customer, what is paid now. */
import { field, formValue, h, money, parseMoney, replace } from "../common/dom.js";
import { run, short, unchanged, type Screen, type ScreenContext } from "./screen.js";

export function sell(ctx: ScreenContext): Screen {
  let quantities: HTMLElement;
  let same = unchanged();
  return {
    name: "Sell",
    form() {
      quantities = h("div", { class: "lines" });
      same = unchanged();
      const customers = ctx.device.catalog().customers.sort((a, b) => a.name.localeCompare(b.name));
      const form = h(
        "form",
        { class: "card", "aria-label": "Sale" },
        h("h2", {}, "Sell"),
        quantities,
        field("Customer", h("select", { name: "customer" }, h("option", { value: "" }, "walk-in"), ...customers.map((c) => h("option", { value: c.id }, c.name)))),
        field("Paid now", h("input", { name: "paid", inputmode: "decimal", placeholder: "0.00", autocomplete: "off" }), "the whole total when left empty"),
        h("button", { type: "submit", class: "primary" }, "Record sale"),
      );
      this.live();
      form.addEventListener("submit", (e) => {
        e.preventDefault();
        run(ctx, form, async () => {
          const lines = Array.from(form.querySelectorAll<HTMLInputElement>("input[data-item]"))
            .map((i) => ({ item: i.dataset.item!, quantity: Number(i.value || "0") }))
            .filter((l) => l.quantity !== 0);
          if (lines.length === 0) throw new Error("choose a quantity for at least one item");
          for (const l of lines) if (!Number.isSafeInteger(l.quantity) || l.quantity < 0) throw new Error("quantities are whole numbers");
          const customer = formValue(form, "customer") || null;
          const paidText = formValue(form, "paid");
          const total = lines.reduce((s, l) => s + l.quantity * (ctx.device.items().find((i) => i.id === l.item)?.price ?? 0), 0);
          const paid = paidText.trim() === "" ? total : parseMoney(paidText);
          if (typeof paid === "string") throw new Error(paid);
          const entry = await ctx.device.recordSale({ lines, customer, paid });
          ctx.recorded(entry);
          const recorded = `Sale ${short(entry.id)} recorded: total ${money(entry.total)}, paid ${money(entry.paid)}`;
          // Beyond this till's offline allowance another till may sell the same units first.
          const risk = ctx.device.saleAtRisk(entry).map((r) => `${r.quantity} × ${ctx.device.items().find((i) => i.id === r.item)?.name ?? short(r.item)}`);
          return risk.length === 0 ? recorded : `${recorded}. At risk, beyond this till's allowance (may be rejected): ${risk.join(", ")}`;
        });
      });
      return form;
    },
    live() {
      // Quantities typed so far survive a redraw; new items appear, removed ones go.
      const typed = new Map(Array.from(quantities.querySelectorAll<HTMLInputElement>("input[data-item]")).map((i) => [i.dataset.item!, i.value]));
      const stock = ctx.device.provisional().stock;
      const items = ctx.device.items().filter((i) => i.active).sort((a, b) => a.name.localeCompare(b.name));
      const allowance = new Map(ctx.device.allowances().map((a) => [a.item, a.left]));
      if (same(items.map((i) => [i, stock[i.id], allowance.get(i.id)]))) return null;
      replace(
        quantities,
        items.length === 0 ? h("p", {}, "No items yet: add some in Catalog.") : null,
        ...items.map((i) =>
          field(
            `${i.name} · ${money(i.price)} · ${stock[i.id] ?? 0} in stock${allowance.has(i.id) ? ` · ${allowance.get(i.id)} safe offline` : ""}`,
            h("input", { type: "number", min: 0, step: 1, inputmode: "numeric", value: typed.get(i.id) ?? "", placeholder: "0", "data-item": i.id, "aria-label": `Quantity of ${i.name}` }),
          ),
        ),
      );
      return null;
    },
  };
}
