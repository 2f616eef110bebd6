/** Payment and Void: both act on an open invoice chosen from this device's provisional ones. */
import { field, formValue, h, money, parseMoney } from "../common/dom.js";
import { openInvoices, run, short, type ScreenContext } from "./screen.js";

export function invoiceForm(ctx: ScreenContext, kind: "payment" | "void"): HTMLFormElement {
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
