/** The Catalog screen: add, reprice, deactivate and activate items; add customers. */
import { field, formValue, h, money, parseMoney, replace } from "../common/dom.js";
import { run, unchanged, type Screen, type ScreenContext } from "./screen.js";

export function catalog(ctx: ScreenContext): Screen {
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
