/** The Receive stock screen: a positive stock entry with its reason. */
import { field, formValue, h } from "../common/dom.js";
import { itemOptions, run, short, type Screen, type ScreenContext } from "./screen.js";

export function receive(ctx: ScreenContext): Screen {
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
