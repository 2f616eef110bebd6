/** The team/user/password form both pages open with; `signIn` does the page's own work. */
import { field, formValue, h } from "./dom.js";

export interface SignInFormOptions {
  title: string;
  hint: string;
  notice?: string;
  signIn(team: string, user: string, password: string): Promise<void>;
}

export function signInForm(opts: SignInFormOptions): HTMLFormElement {
  const error = h("p", { class: "error", role: "alert", "aria-live": "assertive" }, opts.notice ?? "");
  const button = h("button", { type: "submit", class: "primary" }, "Sign in");
  const form = h(
    "form",
    { class: "card signin", "aria-label": "Sign in" },
    h("h1", {}, opts.title),
    field("Team", h("input", { name: "team", required: true, autocomplete: "organization", autocapitalize: "none" })),
    field("User", h("input", { name: "user", required: true, autocomplete: "username", autocapitalize: "none" })),
    field("Password", h("input", { name: "password", type: "password", required: true, autocomplete: "current-password" })),
    button,
    error,
    h("p", { class: "hint" }, opts.hint),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    button.disabled = true;
    error.textContent = "Signing in…";
    opts.signIn(formValue(form, "team").trim(), formValue(form, "user").trim(), formValue(form, "password")).catch((err: unknown) => {
      error.textContent = err instanceof Error ? err.message : String(err);
      button.disabled = false;
    });
  });
  return form;
}
