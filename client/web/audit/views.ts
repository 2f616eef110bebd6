/**
 * The audit view's tables. Each figure links to the journal records behind it: an item to the
 * entries that moved its stock, an invoice to its sale, payments and void, a day to that day's
 * records, a customer to their invoices, a rejection to its record.
 */
import { h, money, nameItems, type Child } from "../common/dom.js";
import type { JournalRecordView } from "./verify.js";

export interface JournalFilter {
  device: string;
  kind: string;
  status: string;
  day: string;
  /** An item, invoice, customer or entry id the record is about. */
  about: string;
}

export const NO_FILTER: JournalFilter = { device: "", kind: "", status: "", day: "", about: "" };

export type Row = Record<string, unknown>;
export type ShowJournal = (filter: Partial<JournalFilter>) => void;

function text(v: unknown): string {
  if (v === null || v === undefined) return "";
  return typeof v === "object" ? JSON.stringify(v) : String(v);
}

export function deviceOf(r: JournalRecordView): string {
  return text(r.entry?.device ?? r.provenance?.device);
}

export function dayOf(r: JournalRecordView): string {
  return text(r.entry?.at ?? r.decidedAt).slice(0, 10);
}

/** Ids a record is about: its entry, the invoice, item(s) and customer it names. */
export function aboutIds(r: JournalRecordView): Set<string> {
  const ids = new Set<string>([r.entryId]);
  const e = r.entry ?? {};
  for (const k of ["invoice", "item", "customer"]) if (typeof e[k] === "string") ids.add(e[k] as string);
  if (Array.isArray(e.lines)) for (const l of e.lines as Row[]) if (typeof l.item === "string") ids.add(l.item);
  return ids;
}

export function matches(r: JournalRecordView, f: JournalFilter): boolean {
  return (
    (!f.device || deviceOf(r) === f.device) &&
    (!f.kind || r.kind === f.kind) &&
    (!f.status || r.status === f.status) &&
    (!f.day || dayOf(r) === f.day) &&
    (!f.about || aboutIds(r).has(f.about))
  );
}

function describe(r: JournalRecordView, names: ReadonlyMap<string, string>): string {
  const name = (v: unknown): string => names.get(text(v)) ?? text(v).slice(0, 8);
  const e = r.entry;
  if (!e) return r.status === "invalid" ? "did not parse" : "";
  switch (r.kind) {
    case "sale":
      return `${Array.isArray(e.lines) ? (e.lines as Row[]).map((l) => `${text(l.quantity)} × ${name(l.item)}`).join(", ") : ""} · total ${money(Number(e.total ?? 0))}`;
    case "payment":
      return `${money(Number(e.amount ?? 0))} on ${text(e.invoice).slice(0, 8)}`;
    case "stock":
      return `${Number(e.delta) > 0 ? "+" : ""}${text(e.delta)} of ${name(e.item)} (${text(e.reason)})`;
    case "void":
      return `sale ${text(e.invoice).slice(0, 8)} (${text(e.reason)})`;
    default:
      return "";
  }
}

export function journalTable(records: readonly JournalRecordView[], names: ReadonlyMap<string, string>): HTMLElement {
  if (records.length === 0) return h("p", {}, "No journal records match.");
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "journal" },
      h("thead", {}, h("tr", {}, ...["Seq", "When", "Kind", "Device", "User", "Verdict", "What", "Entry"].map((t) => h("th", {}, t)))),
      h(
        "tbody",
        {},
        ...records.map((r) =>
          h(
            "tr",
            { "data-seq": r.seq, "data-status": r.status },
            h("td", { class: "num" }, r.seq),
            h("td", {}, text(r.entry?.at ?? r.decidedAt).slice(0, 19).replace("T", " ")),
            h("td", {}, r.kind ?? "—"),
            h("td", {}, deviceOf(r)),
            h("td", {}, text(r.entry?.user ?? r.provenance?.user)),
            h("td", { class: `verdict ${r.status}` }, r.status, r.reason ? `: ${nameItems(r.reason, names)}` : ""),
            h("td", {}, describe(r, names)),
            h("td", {}, h("code", {}, r.entryId.slice(0, 8))),
          ),
        ),
      ),
    ),
  );
}

export interface Column {
  title: string;
  cell(row: Row): Child;
  num?: boolean;
}

export function table(rows: readonly Row[], columns: Column[], empty: string): HTMLElement {
  if (rows.length === 0) return h("p", {}, empty);
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      {},
      h("thead", {}, h("tr", {}, ...columns.map((c) => h("th", {}, c.title)))),
      h("tbody", {}, ...rows.map((r) => h("tr", {}, ...columns.map((c) => h("td", c.num ? { class: "num" } : {}, c.cell(r)))))),
    ),
  );
}

/** A figure that opens the journal records behind it. */
export function link(label: Child, show: ShowJournal, filter: Partial<JournalFilter>): HTMLButtonElement {
  return h("button", { type: "button", class: "link", onclick: () => show(filter), title: "show the journal records behind this" }, label);
}

export const col = {
  text: (title: string, key: string): Column => ({ title, cell: (r) => text(r[key]) }),
  money: (title: string, key: string): Column => ({ title, num: true, cell: (r) => money(Number(r[key] ?? 0)) }),
  num: (title: string, key: string): Column => ({ title, num: true, cell: (r) => text(r[key]) }),
};
