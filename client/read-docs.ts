/**
 * Checked reads of the team's documents. They come from peers, so nothing here trusts a shape:
 * each reader returns only well-formed values and skips (or reports) the rest.
 */
import { isImmutableString } from "@automerge/automerge";
import { isValidAutomergeUrl, type AutomergeUrl } from "@automerge/automerge-repo";
import { parseSettings, type TeamSettings } from "../shared/domain/index.js";
import type { PublishedAllowance, PublishedInvoice, PublishedVerdict, VerdictStatus } from "../shared/docs.js";

export interface TeamRefs {
  team: string;
  catalog: AutomergeUrl;
  registry: AutomergeUrl;
  status: AutomergeUrl;
  settings: TeamSettings;
}

function own(raw: unknown, key: string): unknown {
  if (typeof raw !== "object" || raw === null) return undefined;
  const desc = Object.getOwnPropertyDescriptor(raw, key);
  return desc && "value" in desc ? desc.value : undefined;
}

function url(value: unknown): AutomergeUrl | undefined {
  return typeof value === "string" && isValidAutomergeUrl(value) ? value : undefined;
}

/** The team root, or a reason it cannot be used. */
export function readRoot(raw: unknown): TeamRefs | string {
  if (own(raw, "type") !== "team-root") return "not a team root document";
  const team = own(raw, "team");
  const catalog = url(own(raw, "catalog"));
  const registry = url(own(raw, "registry"));
  const status = url(own(raw, "status"));
  if (typeof team !== "string" || !catalog || !registry || !status) return "team root lacks team, catalog, registry or status";
  const settings = parseSettings(plain(own(raw, "settings")));
  if (!settings.ok) return settings.reason;
  return { team, catalog, registry, status, settings: settings.settings };
}

/** Automerge proxies are not plain objects: copy the own data fields a parser will look at. */
function plain(raw: unknown): unknown {
  if (typeof raw !== "object" || raw === null) return raw;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(raw)) out[key] = own(raw, key);
  return out;
}

/** Registry key → segment URL, well-formed pairs only. */
export function readSegments(registry: unknown): Map<string, AutomergeUrl> {
  const out = new Map<string, AutomergeUrl>();
  const segments = own(registry, "segments");
  if (typeof segments !== "object" || segments === null) return out;
  for (const key of Object.keys(segments)) {
    const u = url(own(segments, key));
    if (u && key.length <= 200) out.set(key, u);
  }
  return out;
}

/** The numbers of this device's own segments in the registry, with their URLs. */
export function ownSegments(segments: Map<string, AutomergeUrl>, deviceId: string): Map<number, AutomergeUrl> {
  const out = new Map<number, AutomergeUrl>();
  const prefix = `${deviceId}/`;
  for (const [key, u] of segments) {
    if (!key.startsWith(prefix)) continue;
    const n = Number(key.slice(prefix.length));
    if (Number.isSafeInteger(n) && n >= 0 && String(n) === key.slice(prefix.length)) out.set(n, u);
  }
  return out;
}

export interface StatusView {
  seq: number;
  stock: Map<string, number>;
  invoices: Map<string, PublishedInvoice>;
  /** Segment URL → verdicts document URL. */
  verdicts: Map<string, AutomergeUrl>;
  /** Offline allowances: item → device → figures (client/allowances.ts). */
  allowances?: Map<string, Map<string, PublishedAllowance>>;
  /** Segment URL → day of its latest decided entry (client/working-set.ts). */
  activity: Map<string, string>;
}

function int(value: unknown): number | undefined {
  return typeof value === "number" && Number.isSafeInteger(value) ? value : undefined;
}

/** The status document's `allowances` (item → device → figures), well-formed values only. */
export function readPublishedAllowances(raw: unknown): Map<string, Map<string, PublishedAllowance>> {
  const out = new Map<string, Map<string, PublishedAllowance>>();
  if (typeof raw !== "object" || raw === null) return out;
  const count = (v: unknown): number | undefined => (int(v) !== undefined && (v as number) >= 0 ? (v as number) : undefined);
  for (const item of Object.keys(raw)) {
    const byDevice = own(raw, item);
    if (typeof byDevice !== "object" || byDevice === null) continue;
    const m = new Map<string, PublishedAllowance>();
    for (const device of Object.keys(byDevice)) {
      const v = own(byDevice, device);
      const granted = count(own(v, "granted"));
      const spent = count(own(v, "spent"));
      const next = count(own(v, "next"));
      if (granted !== undefined && spent !== undefined && next !== undefined) m.set(device, { granted, spent, next });
    }
    out.set(item, m);
  }
  return out;
}

export function readStatus(raw: unknown): StatusView {
  const view: StatusView = {
    seq: int(own(raw, "seq")) ?? 0, stock: new Map(), invoices: new Map(), verdicts: new Map(), activity: new Map(),
    allowances: readPublishedAllowances(own(raw, "allowances")),
  };
  const stock = own(raw, "stock");
  if (typeof stock === "object" && stock !== null) {
    for (const key of Object.keys(stock)) {
      const n = int(own(stock, key));
      if (n !== undefined) view.stock.set(key, n);
    }
  }
  const invoices = own(raw, "invoices");
  if (typeof invoices === "object" && invoices !== null) {
    for (const key of Object.keys(invoices)) {
      const inv = own(invoices, key);
      const total = int(own(inv, "total"));
      const paid = int(own(inv, "paid"));
      const outstanding = int(own(inv, "outstanding"));
      const status = own(inv, "status");
      if (total === undefined || paid === undefined || outstanding === undefined) continue;
      if (status !== "open" && status !== "finalized" && status !== "void") continue;
      const segment = url(scalarText(own(inv, "segment")));
      view.invoices.set(key, segment ? { total, paid, outstanding, status, segment } : { total, paid, outstanding, status });
    }
  }
  const verdicts = own(raw, "verdicts");
  if (typeof verdicts === "object" && verdicts !== null) {
    for (const key of Object.keys(verdicts)) {
      const u = url(own(verdicts, key));
      if (u) view.verdicts.set(key, u);
    }
  }
  const activity = own(raw, "activity");
  if (typeof activity === "object" && activity !== null) {
    for (const key of Object.keys(activity)) {
      const day = scalarText(own(activity, key));
      if (url(key) && day !== undefined && /^\d{4}-\d{2}-\d{2}$/.test(day)) view.activity.set(key, day);
    }
  }
  return view;
}

/** A string stored either way: as text (a JS string) or as an immutable scalar (docs.ts StoredVerdict). */
function scalarText(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  return isImmutableString(value) ? value.val : undefined;
}

const STATUSES: readonly VerdictStatus[] = ["accepted", "rejected", "deferred", "invalid"];

/** Verdicts of one segment, keyed by entry id. */
export function readVerdicts(raw: unknown): Map<string, PublishedVerdict> {
  const out = new Map<string, PublishedVerdict>();
  const verdicts = own(raw, "verdicts");
  if (typeof verdicts !== "object" || verdicts === null) return out;
  for (const key of Object.keys(verdicts)) {
    const v = own(verdicts, key);
    const status = scalarText(own(v, "status"));
    if (status === undefined || !(STATUSES as readonly string[]).includes(status)) continue;
    const decidedAt = scalarText(own(v, "decidedAt"));
    const verdict: PublishedVerdict = { status: status as VerdictStatus, decidedAt: decidedAt ?? "" };
    const reason = scalarText(own(v, "reason"));
    if (typeof reason === "string") verdict.reason = reason.slice(0, 1000);
    const seq = int(own(v, "seq"));
    if (seq !== undefined) verdict.seq = seq;
    out.set(key, verdict);
  }
  return out;
}

/** Raw entries of a segment (values still untrusted: parse with parseEntry). */
export function segmentEntries(raw: unknown): Array<[string, unknown]> {
  const entries = own(raw, "entries");
  if (typeof entries !== "object" || entries === null) return [];
  return Object.keys(entries).map((key) => [key, own(entries, key)]);
}

export function segmentSize(raw: unknown): number {
  const entries = own(raw, "entries");
  return typeof entries === "object" && entries !== null ? Object.keys(entries).length : 0;
}

export function segmentCreatedAt(raw: unknown): string | undefined {
  const v = own(raw, "createdAt");
  return typeof v === "string" ? v : undefined;
}
