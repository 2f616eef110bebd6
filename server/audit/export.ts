/**
 * An auditor's export of one team (`npm run export`, docs/AUDIT.md "Export"): the journal of a
 * period as a contiguous run of seqs (so its chain checks from the first record's `prevHash`), the
 * checkpoints that anchor it, and the projections of that period, as JSON Lines (CSV too for the
 * tables), with a manifest of row counts and SHA-256 of every file. Read-only.
 */
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import type { Document, FindCursor } from "mongodb";
import type { Collections } from "../materializer/collections.js";

export interface ExportOptions {
  team: string;
  /** First and last day (YYYY-MM-DD, UTC) of the period, inclusive; open-ended when absent. */
  from?: string;
  to?: string;
  outDir: string;
  publicKeyPem?: string;
  now?: () => string;
}

export interface ExportedFile {
  name: string;
  rows: number;
  bytes: number;
  sha256: string;
}

export interface Manifest {
  format: "ledger-sync/export/v1";
  team: string;
  from: string | null;
  to: string | null;
  exportedAt: string;
  /**
   * Seqs `firstSeq`..`lastSeq`, without gaps: from the first to the last record of an entry dated
   * in the period (or, for invalid entries, decided in it), and every record between.
   */
  journal: { firstSeq: number | null; lastSeq: number | null; prevHash: string | null; headHash: string | null };
  publicKey: string | null;
  files: ExportedFile[];
}

const DAY = /^\d{4}-\d{2}-\d{2}$/;

/** Columns of the CSV tables; nested values are written as JSON text in their cell. */
const TABLES: Record<string, string[]> = {
  invoices: ["id", "status", "total", "paid", "outstanding", "initialPaid", "refundDue", "customer", "at", "day", "device", "user", "lines", "seq"],
  payments: ["id", "invoice", "amount", "at", "day", "device", "user", "seq"],
  purchase_history: ["customer", "invoice", "total", "at", "void", "seq"],
  daily_summaries: ["day", "salesCount", "voidCount", "revenue", "paymentsReceived", "outstanding"],
  customer_balances: ["customer", "outstanding", "openInvoices", "purchases"],
  stock_levels: ["item", "level", "seq"],
  stock_movements: ["entry", "item", "delta", "level", "seq"],
  rejections: ["entryId", "kind", "reason", "seq", "at", "device", "segment"],
  quarantine: ["entryId", "reason", "seq", "segment", "decidedAt", "submitted"],
};

function csvCell(v: unknown): string {
  if (v === undefined || v === null) return "";
  const s = typeof v === "object" ? JSON.stringify(v) : String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** A file written as it is hashed, so the manifest's hash is of exactly the bytes on disk. */
class HashedFile {
  private readonly hash = createHash("sha256");
  private readonly stream;
  rows = 0;
  bytes = 0;

  constructor(readonly dir: string, readonly name: string) {
    this.stream = createWriteStream(path.join(dir, name), { flags: "wx" });
  }

  async line(text: string): Promise<void> {
    const buf = Buffer.from(`${text}\n`, "utf8");
    this.hash.update(buf);
    this.bytes += buf.length;
    if (!this.stream.write(buf)) await new Promise<void>((resolve) => this.stream.once("drain", () => resolve()));
  }

  async close(): Promise<ExportedFile> {
    await new Promise<void>((resolve, reject) => this.stream.end((err?: Error | null) => (err ? reject(err) : resolve())));
    return { name: this.name, rows: this.rows, bytes: this.bytes, sha256: this.hash.digest("hex") };
  }
}

async function writeTable(dir: string, name: string, cursor: FindCursor<Document>, files: ExportedFile[]): Promise<void> {
  const jsonl = new HashedFile(dir, `${name}.jsonl`);
  const columns = TABLES[name];
  const csv = columns ? new HashedFile(dir, `${name}.csv`) : undefined;
  if (csv && columns) await csv.line(columns.join(","));
  for await (const doc of cursor) {
    await jsonl.line(JSON.stringify(doc));
    jsonl.rows += 1;
    if (csv && columns) {
      await csv.line(columns.map((k) => csvCell(doc[k])).join(","));
      csv.rows += 1;
    }
  }
  files.push(await jsonl.close());
  if (csv) files.push(await csv.close());
}

export async function exportTeam(c: Collections, opts: ExportOptions): Promise<Manifest> {
  for (const [name, day] of [["from", opts.from], ["to", opts.to]] as const) {
    if (day !== undefined && !DAY.test(day)) throw new Error(`--${name} ${JSON.stringify(day)}: expected a day YYYY-MM-DD`);
  }
  const { team } = opts;
  await mkdir(opts.outDir, { recursive: true });
  const dayRange = (field: string): Document => {
    const r: Document = {};
    if (opts.from) r.$gte = opts.from;
    if (opts.to) r.$lte = opts.to;
    return Object.keys(r).length ? { [field]: r } : {};
  };
  /** A time field (ISO 8601 UTC) within the period's days. */
  const timeRange = (field: string): Document => {
    const r: Document = {};
    if (opts.from) r.$gte = `${opts.from}T00:00:00.000Z`;
    if (opts.to) r.$lte = `${opts.to}T23:59:59.999Z`;
    return Object.keys(r).length ? { [field]: r } : {};
  };
  // The records of the period: an entry dated in it, or (invalid entries have no date) decided
  // in it. Late arrivals are decided after later entries, so these are not contiguous: the
  // export takes the whole run of seqs from the first to the last, so its chain checks alone.
  const within = (day: string): boolean => (!opts.from || day >= opts.from) && (!opts.to || day <= opts.to);
  let firstSeq: number | null = null;
  let lastSeq: number | null = null;
  for await (const r of c.journal.find({ team }, { projection: { seq: 1, "entry.at": 1, decidedAt: 1 } })) {
    if (!within((r.entry?.at ?? r.decidedAt).slice(0, 10))) continue;
    firstSeq = firstSeq === null ? r.seq : Math.min(firstSeq, r.seq);
    lastSeq = lastSeq === null ? r.seq : Math.max(lastSeq, r.seq);
  }
  const first = firstSeq === null ? null : await c.journal.findOne({ team, seq: firstSeq });
  const last = lastSeq === null ? null : await c.journal.findOne({ team, seq: lastSeq });
  const seqs = first && last ? { seq: { $gte: first.seq, $lte: last.seq } } : { seq: { $lt: 0 } };

  const files: ExportedFile[] = [];
  const dir = opts.outDir;
  const q = (filter: Document): Document => ({ team, ...filter });
  await writeTable(dir, "journal", c.journal.find({ team, ...seqs }).sort({ seq: 1 }) as unknown as FindCursor<Document>, files);
  await writeTable(dir, "journal_checkpoints", c.journalCheckpoints.find(q(seqs)).sort({ seq: 1, _id: 1 }) as unknown as FindCursor<Document>, files);
  const tables: [string, keyof Collections, Document][] = [
    ["invoices", "invoices", dayRange("day")],
    ["payments", "payments", dayRange("day")],
    ["purchase_history", "purchases", timeRange("at")],
    ["daily_summaries", "summaries", dayRange("day")],
    ["stock_movements", "movements", seqs],
    ["rejections", "rejections", seqs],
    ["quarantine", "quarantine", seqs],
    // Figures as of the export, whatever the period.
    ["customer_balances", "balances", {}],
    ["stock_levels", "stock", {}],
    ["deferred_entries", "deferred", {}],
    // Every close: the journal's bookings are replayed with them (docs/AUDIT.md "Closed periods").
    ["closed_periods", "closedPeriods", {}],
  ];
  for (const [name, coll, filter] of tables) {
    await writeTable(dir, name, c[coll].find(q(filter) as never).sort({ _id: 1 }) as unknown as FindCursor<Document>, files);
  }
  const manifest: Manifest = {
    format: "ledger-sync/export/v1",
    team,
    from: opts.from ?? null,
    to: opts.to ?? null,
    exportedAt: (opts.now ?? (() => new Date().toISOString()))(),
    journal: { firstSeq: first?.seq ?? null, lastSeq: last?.seq ?? null, prevHash: first?.prevHash ?? null, headHash: last?.recordHash ?? null },
    publicKey: opts.publicKeyPem ?? null,
    files,
  };
  const m = new HashedFile(dir, "manifest.json");
  await m.line(JSON.stringify(manifest, null, 2));
  await m.close();
  return manifest;
}
