/**
 * The audit view: read-only, for auditors (and admins). It reads the HTTP API only, with GET
 * requests only: nothing on this page can write. The API lets members read their own team too;
 * this page refuses them anyway, since it is the auditor's tool, not the till's.
 */
import type { Claims } from "../../../shared/auth/claims.js";
import { readOwnClaims } from "../../token.js";
import { ApiFailure, login } from "../common/api.js";
import { field, formValue, h, nameItems, replace } from "../common/dom.js";
import { signInForm } from "../common/signin-form.js";
import { forgetAuditToken, loadAuditToken, saveAuditToken } from "../common/session.js";
import { readAll } from "./read-all.js";
import { verifyJournal, type JournalRecordView, type Verification } from "./verify.js";
import { col, dayOf, deviceOf, journalTable, link, matches, NO_FILTER, table, type JournalFilter, type Row } from "./views.js";

const root = document.getElementById("audit")!;
const AUDIT_ROLES = new Set(["auditor", "admin"]);

function refusal(claims: Claims): string | undefined {
  return AUDIT_ROLES.has(claims.role) ? undefined : `The audit view is for auditors: this token is a ${claims.role}'s. A till opens at /app/.`;
}

function signIn(notice?: string): void {
  replace(
    root,
    signInForm({
      title: "Audit view",
      hint: "Or open /audit/#token=… with an auditor token (npm run admin -- token --role auditor).",
      ...(notice ? { notice } : {}),
      signIn: async (team, user, password) => accept((await login(team, user, password)).token),
    }),
  );
}

function accept(token: string): void {
  let claims: Claims;
  try {
    claims = readOwnClaims(token);
  } catch (err) {
    signIn(`That token is unusable: ${err instanceof Error ? err.message : String(err)}`);
    return;
  }
  const refused = refusal(claims);
  if (refused) {
    forgetAuditToken();
    signIn(refused);
    return;
  }
  saveAuditToken(token);
  void show(token, claims);
}

interface Data {
  journal: JournalRecordView[];
  truncated: boolean;
  items: Row[];
  invoices: Row[];
  balances: Row[];
  summaries: Row[];
  rejections: Row[];
  quarantine: Row[];
  tampers: Row[];
  deferred: Row[];
  verification: Verification;
}

async function load(token: string): Promise<Data> {
  const [journal, checkpoints, items, invoices, balances, summaries, rejections, quarantine, tampers, deferred] = await Promise.all([
    readAll<JournalRecordView>("/journal", token),
    readAll<unknown>("/journal/checkpoints", token),
    readAll<Row>("/items", token),
    readAll<Row>("/invoices", token),
    readAll<Row>("/customer-balances", token),
    readAll<Row>("/daily-summaries", token),
    readAll<Row>("/rejections", token),
    readAll<Row>("/quarantine", token),
    readAll<Row>("/tamper-events", token),
    readAll<Row>("/deferred", token),
  ]);
  const verification = checkpoints.publicKey
    ? verifyJournal(journal.rows, checkpoints.rows, checkpoints.publicKey)
    : { records: journal.rows.length, breaks: [{ seq: 0, reason: "the service named no public key" }], checkpoints: [] };
  return {
    journal: journal.rows, truncated: journal.truncated, items: items.rows, invoices: invoices.rows, balances: balances.rows, summaries: summaries.rows,
    rejections: rejections.rows, quarantine: quarantine.rows, tampers: tampers.rows, deferred: deferred.rows, verification,
  };
}

async function show(token: string, claims: Claims): Promise<void> {
  replace(root, h("p", { class: "card", role: "status" }, "Reading the journal…"));
  let data: Data;
  try {
    data = await load(token);
  } catch (err) {
    if (err instanceof ApiFailure && (err.status === 401 || err.status === 403)) {
      forgetAuditToken();
      signIn(`Signed out: ${err.message}`);
    } else replace(root, h("p", { class: "card error", role: "alert" }, `The audit view could not read the API: ${err instanceof Error ? err.message : String(err)}`), h("button", { type: "button", onclick: () => void show(token, claims) }, "Try again"));
    return;
  }
  const main = h("main", { id: "view" });
  const nav = h("nav", { "aria-label": "Views" });
  let filter: JournalFilter = { ...NO_FILTER };
  const names = new Map(data.items.map((i) => [String(i.id), String(i.name)]));

  const showJournal = (f: Partial<JournalFilter>): void => {
    filter = { ...NO_FILTER, ...f };
    open("Journal");
  };

  const options = (values: Iterable<string>, current: string): HTMLOptionElement[] => [
    h("option", { value: "" }, "all"),
    ...[...new Set(values)].filter(Boolean).sort().map((v) => h("option", { value: v, selected: v === current }, v)),
  ];

  const views: Record<string, () => HTMLElement> = {
    Journal() {
      const form = h(
        "form",
        { class: "filters", "aria-label": "Journal filters" },
        field("Device", h("select", { name: "device" }, ...options(data.journal.map(deviceOf), filter.device))),
        field("Kind", h("select", { name: "kind" }, ...options(["sale", "payment", "stock", "void"], filter.kind))),
        field("Verdict", h("select", { name: "status" }, ...options(["accepted", "rejected", "invalid"], filter.status))),
        field("Day", h("select", { name: "day" }, ...options(data.journal.map(dayOf), filter.day))),
        field("About id", h("input", { name: "about", value: filter.about, placeholder: "item, invoice, customer or entry id", autocomplete: "off" })),
        h("button", { type: "button", onclick: () => showJournal({}) }, "Clear"),
      );
      const body = h("div");
      const draw = (): void => {
        filter = { device: formValue(form, "device"), kind: formValue(form, "kind"), status: formValue(form, "status"), day: formValue(form, "day"), about: formValue(form, "about").trim() };
        const rows = data.journal.filter((r) => matches(r, filter));
        replace(body, h("p", { class: "hint", role: "status" }, `${rows.length} of ${data.journal.length} records${data.truncated ? " (the first ones only: use npm run export for all)" : ""}`), journalTable(rows, names));
      };
      form.addEventListener("change", draw);
      form.addEventListener("input", draw);
      form.addEventListener("submit", (e) => e.preventDefault());
      draw();
      return h("section", { class: "card", "aria-label": "Journal" }, h("h2", {}, "Journal"), form, body);
    },
    Stock: () => section("Stock", table(data.items, [
      { title: "Item", cell: (r) => link(String(r.name), showJournal, { about: String(r.id) }) },
      col.num("Stock", "stock"), col.money("Price", "price"), { title: "Active", cell: (r) => (r.active ? "yes" : "no") },
    ], "No items.")),
    Invoices: () => section("Open and closed invoices", table(data.invoices, [
      { title: "Invoice", cell: (r) => link(String(r.id).slice(0, 8), showJournal, { about: String(r.id) }) },
      col.text("Day", "day"), col.text("Device", "device"), col.text("Status", "status"), col.money("Total", "total"), col.money("Paid", "paid"), col.money("Outstanding", "outstanding"),
    ], "No invoices.")),
    Balances: () => section("Customer balances", table(data.balances, [
      { title: "Customer", cell: (r) => link(String(r.customer).slice(0, 8), showJournal, { about: String(r.customer) }) },
      col.money("Outstanding", "outstanding"), col.num("Open invoices", "openInvoices"),
    ], "No customer balances.")),
    "Daily summaries": () => section("Daily summaries", table(data.summaries, [
      { title: "Day", cell: (r) => link(String(r.day), showJournal, { day: String(r.day) }) },
      col.num("Sales", "salesCount"), col.num("Voids", "voidCount"), col.money("Revenue", "revenue"), col.money("Payments", "paymentsReceived"), col.money("Outstanding", "outstanding"),
    ], "No summaries yet.")),
    Rejections: () => section("Rejections", table(data.rejections, [
      { title: "Seq", cell: (r) => link(String(r.seq), showJournal, { about: String(r.entryId) }) },
      col.text("Kind", "kind"), col.text("Device", "device"), col.text("When", "at"),
      { title: "Reason", cell: (r) => nameItems(String(r.reason), names) },
    ], "No rejections.")),
    Quarantine: () => section("Quarantine (entries that did not parse)", table(data.quarantine, [col.num("Seq", "seq"), col.text("Entry", "entryId"), col.text("Reason", "reason"), col.text("Submitted", "submitted")], "Nothing quarantined.")),
    "Tamper events": () => section("Tamper events (decided entries changed afterwards)", table(data.tampers, [col.text("Entry", "entryId"), col.text("Device", "device"), col.text("Seen", "seenAt"), col.text("Decided hash", "decidedHash"), col.text("New hash", "newHash")], "No tamper events.")),
    Deferred: () => section("Deferred (waiting for their invoice)", table(data.deferred, [col.text("Entry", "entryId"), col.text("Since", "since")], "Nothing deferred.")),
    Verification: () => verificationView(data.verification),
  };

  function open(name: string): void {
    for (const b of Array.from(nav.querySelectorAll("button"))) b.setAttribute("aria-pressed", String(b.textContent === name));
    replace(main, views[name]!());
  }

  for (const name of Object.keys(views)) nav.append(h("button", { type: "button", onclick: () => open(name) }, name));
  const v = data.verification;
  const intact = v.breaks.length === 0 && v.checkpoints.every((c) => c.ok);
  replace(
    root,
    h(
      "header",
      {},
      h("span", { class: "who" }, `${claims.team} · ${claims.sub} (${claims.role}) · read-only`),
      h("span", { id: "verified", class: `pill ${intact ? "online" : "offline"}`, role: "status" }, intact ? `Journal verified: ${v.records} records` : "Journal verification FAILED"),
      h("button", { type: "button", onclick: () => void show(token, claims) }, "Reload"),
      h("button", { type: "button", class: "link", onclick: () => { forgetAuditToken(); signIn(); } }, "Sign out"),
    ),
    nav,
    main,
  );
  open("Journal");
}

function section(title: string, body: HTMLElement): HTMLElement {
  return h("section", { class: "card", "aria-label": title }, h("h2", {}, title), body);
}

function verificationView(v: Verification): HTMLElement {
  const ok = v.breaks.length === 0;
  return section(
    "Verification",
    h(
      "div",
      {},
      h("p", { class: ok ? "result-ok" : "result-bad", id: "chain" }, ok ? `Hash chain intact: ${v.records} records, every hash recomputed in this browser.` : `Hash chain broken in ${v.breaks.length} place(s).`),
      ...v.breaks.map((b) => h("p", { class: "error" }, `seq ${b.seq}: ${b.reason}`)),
      h("h3", {}, "Signed checkpoints"),
      table(v.checkpoints as unknown as Row[], [
        col.num("Seq", "seq"), col.text("Signed at", "at"),
        { title: "Result", cell: (r) => h("span", { class: r.ok ? "result-ok" : "result-bad" }, r.ok ? "signature valid, record matches" : String(r.reason)) },
      ], "No checkpoints signed yet."),
      h("p", { class: "hint" }, `For a deep check against the projections, and against checkpoints kept on devices: npm run audit.`),
    ),
  );
}

function boot(): void {
  const m = /^#token=([A-Za-z0-9_.-]+)$/.exec(location.hash);
  if (m) {
    history.replaceState(null, "", location.pathname);
    accept(m[1]!);
    return;
  }
  const stored = loadAuditToken();
  if (stored) accept(stored.token);
  else signIn();
}

boot();
