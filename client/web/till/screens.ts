/**
 * The till's screens, each a form built once (what a clerk types survives updates) and a live
 * part redrawn from the device whenever something changes (stock, invoices, verdicts).
 * Every figure is the device's provisional one: authoritative plus this device's undecided entries.
 */
import type { Device, EntryStatus } from "../../index.js";
import type { LedgerEntry } from "../../../shared/domain/index.js";
import { field, formValue, h, money, nameItems, parseMoney, replace, type Child } from "../common/dom.js";

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
function unchanged(): (key: unknown) => boolean {
  let last = "";
  return (key) => {
    const k = JSON.stringify(key);
    if (k === last) return true;
    last = k;
    return false;
  };
}

function short(id: string): string {
  return id.slice(0, 8);
}

function run(ctx: ScreenContext, form: HTMLFormElement, action: () => Promise<string>): void {
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

function itemOptions(ctx: ScreenContext, activeOnly: boolean): HTMLOptionElement[] {
  return ctx.device
    .items()
    .filter((i) => i.active || !activeOnly)
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((i) => h("option", { value: i.id }, `${i.name} (${money(i.price)})`));
}

function openInvoices(ctx: ScreenContext): Array<{ id: string; label: string; outstanding: number }> {
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

function sell(ctx: ScreenContext): Screen {
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
          return `Sale ${short(entry.id)} recorded: total ${money(entry.total)}, paid ${money(entry.paid)}`;
        });
      });
      return form;
    },
    live() {
      // Quantities typed so far survive a redraw; new items appear, removed ones go.
      const typed = new Map(Array.from(quantities.querySelectorAll<HTMLInputElement>("input[data-item]")).map((i) => [i.dataset.item!, i.value]));
      const stock = ctx.device.provisional().stock;
      const items = ctx.device.items().filter((i) => i.active).sort((a, b) => a.name.localeCompare(b.name));
      if (same(items.map((i) => [i, stock[i.id]]))) return null;
      replace(
        quantities,
        items.length === 0 ? h("p", {}, "No items yet: add some in Catalog.") : null,
        ...items.map((i) =>
          field(
            `${i.name} · ${money(i.price)} · ${stock[i.id] ?? 0} in stock`,
            h("input", { type: "number", min: 0, step: 1, inputmode: "numeric", value: typed.get(i.id) ?? "", placeholder: "0", "data-item": i.id, "aria-label": `Quantity of ${i.name}` }),
          ),
        ),
      );
      return null;
    },
  };
}

function receive(ctx: ScreenContext): Screen {
  return {
    name: "Receive stock",
    form() {
      const form = h(
        "form",
        { class: "card", "aria-label": "Receive stock" },
        h("h2", {}, "Receive stock"),
        field("Item", h("select", { name: "item", required: true }, ...itemOptions(ctx, false))),
        field("Quantity received", h("input", { name: "quantity", type: "number", min: 1, step: 1, required: true, inputmode: "numeric" })),
        field("Reason", h("input", { name: "reason", value: "delivery", required: true })),
        h("button", { type: "submit", class: "primary" }, "Record receipt"),
      );
      form.addEventListener("submit", (e) => {
        e.preventDefault();
        run(ctx, form, async () => {
          const entry = await ctx.device.recordStock({ item: formValue(form, "item"), delta: Number(formValue(form, "quantity")), reason: formValue(form, "reason") });
          ctx.recorded(entry);
          return `Receipt ${short(entry.id)} recorded`;
        });
      });
      return form;
    },
    live: () => null,
  };
}

function invoiceForm(ctx: ScreenContext, kind: "payment" | "void"): HTMLFormElement {
  const select = h("select", { name: "invoice", required: true }, ...openInvoices(ctx).map((i) => h("option", { value: i.id }, i.label)));
  const form =
    kind === "payment"
      ? h(
          "form",
          { class: "card", "aria-label": "Take a payment" },
          h("h2", {}, "Take a payment"),
          field("Open invoice", select),
          field("Amount", h("input", { name: "amount", inputmode: "decimal", required: true, placeholder: "0.00", autocomplete: "off" })),
          h("button", { type: "submit", class: "primary" }, "Record payment"),
        )
      : h(
          "form",
          { class: "card", "aria-label": "Void a sale" },
          h("h2", {}, "Void a sale"),
          field("Invoice", select),
          field("Reason", h("input", { name: "reason", required: true })),
          h("button", { type: "submit", class: "danger" }, "Void the sale"),
        );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    run(ctx, form, async () => {
      const invoice = formValue(form, "invoice");
      if (!invoice) throw new Error("no open invoice chosen");
      if (kind === "payment") {
        const amount = parseMoney(formValue(form, "amount"));
        if (typeof amount === "string") throw new Error(amount);
        const entry = await ctx.device.recordPayment({ invoice, amount });
        ctx.recorded(entry);
        return `Payment of ${money(amount)} on ${short(invoice)} recorded`;
      }
      const entry = await ctx.device.voidSale({ invoice, reason: formValue(form, "reason") });
      ctx.recorded(entry);
      return `Sale ${short(invoice)} voided`;
    });
  });
  return form;
}

function catalog(ctx: ScreenContext): Screen {
  const list = h("div", { class: "table-wrap" });
  const same = unchanged();
  const edit = (action: () => Promise<unknown>, done: string): void => {
    action().then(() => ctx.say(done), (err: unknown) => ctx.say(err instanceof Error ? err.message : String(err), true));
  };
  return {
    name: "Catalog",
    form() {
      const form = h(
        "form",
        { class: "card", "aria-label": "Add an item" },
        h("h2", {}, "Add an item"),
        field("Item name", h("input", { name: "name", required: true, maxlength: 200 })),
        field("Price", h("input", { name: "price", inputmode: "decimal", required: true, placeholder: "0.00", autocomplete: "off" })),
        field("Unit", h("input", { name: "unit", value: "unit", required: true, maxlength: 20 })),
        h("button", { type: "submit", class: "primary" }, "Add item"),
      );
      form.addEventListener("submit", (e) => {
        e.preventDefault();
        run(ctx, form, async () => {
          const price = parseMoney(formValue(form, "price"));
          if (typeof price === "string") throw new Error(price);
          const item = await ctx.device.catalogEditor.addItem({ name: formValue(form, "name").trim(), price, unit: formValue(form, "unit").trim() });
          return `Item ${item.name} added`;
        });
      });
      const customer = h(
        "form",
        { class: "card", "aria-label": "Add a customer" },
        h("h2", {}, "Add a customer"),
        field("Customer name", h("input", { name: "name", required: true, maxlength: 200 })),
        field("Phone", h("input", { name: "phone", type: "tel", maxlength: 40, autocomplete: "off" })),
        h("button", { type: "submit" }, "Add customer"),
      );
      customer.addEventListener("submit", (e) => {
        e.preventDefault();
        run(ctx, customer, async () => {
          const phone = formValue(customer, "phone").trim();
          const c = await ctx.device.catalogEditor.addCustomer({ name: formValue(customer, "name").trim(), phone: phone === "" ? null : phone });
          return `Customer ${c.name} added`;
        });
      });
      return h("div", {}, form, h("section", { class: "card", "aria-label": "Items" }, h("h2", {}, "Items"), list), customer);
    },
    live() {
      const stock = ctx.device.provisional().stock;
      const items = ctx.device.items().sort((a, b) => a.name.localeCompare(b.name));
      if (same(items.map((i) => [i, stock[i.id]])) && list.isConnected) return null;
      replace(
        list,
        h(
          "table",
          {},
          h("thead", {}, h("tr", {}, h("th", {}, "Item"), h("th", {}, "Stock"), h("th", {}, "Price"), h("th", {}, ""))),
          h(
            "tbody",
            {},
            ...items.map((i) => {
              const price = h("input", { inputmode: "decimal", value: money(i.price), "aria-label": `New price of ${i.name}`, size: 8 });
              return h(
                "tr",
                { class: i.active ? "" : "inactive" },
                h("td", {}, i.name, i.active ? "" : " (inactive)"),
                h("td", { class: "num" }, stock[i.id] ?? 0),
                h("td", {}, price, h("button", {
                  type: "button",
                  onclick: () => {
                    const p = parseMoney(price.value);
                    if (typeof p === "string") ctx.say(p, true);
                    else edit(() => ctx.device.catalogEditor.repriceItem(i.id, p), `${i.name} now costs ${money(p)}`);
                  },
                }, "Reprice")),
                h("td", {}, i.active
                  ? h("button", { type: "button", onclick: () => edit(() => ctx.device.catalogEditor.deactivateItem(i.id), `${i.name} deactivated`) }, "Deactivate")
                  : h("button", { type: "button", onclick: () => edit(() => ctx.device.catalogEditor.activateItem(i.id), `${i.name} active again`) }, "Activate")),
              );
            }),
          ),
        ),
      );
      return null;
    },
  };
}

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
  }
}

function entries(ctx: ScreenContext): Screen {
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
