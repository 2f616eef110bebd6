/**
 * Auditor reads of the authoritative projections, one team at a time, every list paginated by
 * a cursor (`after` = the last row's id, or the journal's seq). Team-scoped `_id`s are
 * `<team>:<id>`, so one team's rows are one contiguous `_id` range and the cursor is an index scan.
 */
import type { Collection, Document, Filter } from "mongodb";
import type { Claims } from "../../../shared/auth/claims.js";
import { teamKey } from "../../materializer/collections.js";
import type { ApiDeps } from "../deps.js";
import { ApiError, pageLimit, type Route, type RouteContext } from "../route.js";
import {
  AllowanceRow, BalanceRow, CheckpointPage, DeferredRow, errors, InvoiceRow, ItemRow, JournalRow, page, PaymentRow, PurchaseRow, QuarantineRow, RejectionRow, SummaryRow, TamperRow,
} from "../schemas.js";

/** Members, auditors and admins of the team; a service token names the team with `?team=`. */
export function readTeam(claims: Claims, query: Record<string, string>): string {
  if (claims.role === "service") {
    if (!query.team) throw new ApiError(400, "invalid-query", "team: a service token must name the team");
    return query.team;
  }
  if (query.team !== undefined && query.team !== claims.team) throw new ApiError(403, "forbidden", `a token of team ${claims.team} may not read team ${query.team.slice(0, 64)}`);
  return claims.team;
}

const readers = (c: Claims): boolean => ["member", "auditor", "admin", "service"].includes(c.role);

function strip<T extends { _id: string; team?: string }>(doc: T): Omit<T, "_id" | "team"> {
  const { _id: _ignored, team: _team, ...rest } = doc;
  return rest;
}

interface ListSpec<T extends { _id: string; team: string }> {
  path: string;
  summary: string;
  row: Record<string, unknown>;
  query?: Record<string, string>;
  collection: Collection<T>;
  filter?(ctx: RouteContext): Filter<Document>;
  /** Extra fields for a page of rows (stock of items, balances of invoices). */
  enrich?(team: string, rows: Record<string, unknown>[]): Promise<void>;
}

function listRoute<T extends { _id: string; team: string }>(spec: ListSpec<T>): Route {
  return {
    method: "get",
    path: spec.path,
    summary: spec.summary,
    tag: "audit",
    query: { team: "team to read (service tokens only)", after: "cursor: nextAfter of the previous page", limit: "rows per page, 1-500 (default 100)", ...spec.query },
    authorize: readers,
    responses: { 200: { description: "one page", schema: page(spec.row) }, ...errors(400, 401, 403) },
    async handle(ctx) {
      const team = readTeam(ctx.claims!, ctx.query);
      const limit = pageLimit(ctx.query.limit);
      // ';' follows ':' in ASCII: [team:, team;) is exactly this team's keys.
      const range = { $gt: teamKey(team, ctx.query.after ?? ""), $lt: `${team};` };
      const filter = { ...(spec.filter?.(ctx) ?? {}), team, _id: range } as Filter<T>;
      const docs = (await spec.collection.find(filter).sort({ _id: 1 }).limit(limit + 1).toArray()) as unknown as T[];
      const hasMore = docs.length > limit;
      const pageDocs = docs.slice(0, limit);
      const rows = pageDocs.map((d) => strip(d) as Record<string, unknown>);
      if (spec.enrich) await spec.enrich(team, rows);
      const last = pageDocs.at(-1);
      return { status: 200, body: { team, rows, nextAfter: hasMore && last ? last._id.slice(team.length + 1) : null, hasMore } };
    },
  };
}

/** The seq cursor of the journal and its checkpoints: a non-negative integer, 0 when absent. */
function seqCursor(raw: string | undefined): number {
  const after = raw === undefined || raw === "" ? 0 : Number(raw);
  if (!Number.isSafeInteger(after) || after < 0) throw new ApiError(400, "invalid-query", "after must be a non-negative integer (a journal seq)");
  return after;
}

export function readRoutes({ c, tokens }: ApiDeps): Route[] {
  const statuses = ["open", "finalized", "void"];
  return [
    listRoute({
      path: "/items",
      summary: "Items with their authoritative stock level",
      row: ItemRow,
      collection: c.items,
      async enrich(team, rows) {
        const levels = await c.stock.find({ _id: { $in: rows.map((r) => teamKey(team, String(r.id))) } }).toArray();
        const byItem = new Map(levels.map((l) => [l.item, l.level]));
        for (const r of rows) r.stock = byItem.get(String(r.id)) ?? 0;
      },
    }),
    listRoute({
      path: "/invoices",
      summary: "Invoices with balance and status",
      row: InvoiceRow,
      query: { status: "open, finalized or void" },
      collection: c.invoices,
      filter(ctx) {
        const s = ctx.query.status;
        if (s === undefined) return {};
        if (!statuses.includes(s)) throw new ApiError(400, "invalid-query", "status must be open, finalized or void");
        return { status: s };
      },
      async enrich(_team, rows) {
        for (const r of rows) {
          r.balance = r.outstanding;
          delete r.lines;
        }
      },
    }),
    listRoute({ path: "/payments", summary: "Payments", row: PaymentRow, collection: c.payments }),
    listRoute({ path: "/purchase-history", summary: "Purchase history (finalized invoices with a customer)", row: PurchaseRow, collection: c.purchases }),
    listRoute({ path: "/customer-balances", summary: "Outstanding balance per customer", row: BalanceRow, collection: c.balances }),
    listRoute({ path: "/daily-summaries", summary: "Daily sales, payments and outstanding figures", row: SummaryRow, collection: c.summaries }),
    listRoute({ path: "/rejections", summary: "Entries the materializer rejected, with reasons", row: RejectionRow, collection: c.rejections }),
    listRoute({
      path: "/allowances",
      summary: "Offline stock allowances per item and device: granted, spent, left, the unit ranges sold",
      row: AllowanceRow,
      collection: c.allowances,
      query: { device: "only this device's allowances" },
      filter: (ctx) => (ctx.query.device ? { device: ctx.query.device } : {}),
    }),
    listRoute({ path: "/quarantine", summary: "Entries that did not parse, with reasons", row: QuarantineRow, collection: c.quarantine }),
    listRoute({ path: "/tamper-events", summary: "Decided entries that changed afterwards", row: TamperRow, collection: c.tampers }),
    listRoute({
      path: "/deferred",
      summary: "Payments and voids waiting for their invoice: not in the journal until decided",
      row: DeferredRow,
      collection: c.deferred,
    }),
    {
      method: "get",
      path: "/journal",
      summary: "The journal as a change feed: every verdict after a sequence number, in order",
      tag: "audit",
      query: { team: "team to read (service tokens only)", after: "sequence number already seen (default 0)", limit: "records per page, 1-500 (default 100)" },
      authorize: readers,
      responses: { 200: { description: "records after the cursor", schema: page(JournalRow, "integer") }, ...errors(400, 401, 403) },
      async handle(ctx) {
        const team = readTeam(ctx.claims!, ctx.query);
        const limit = pageLimit(ctx.query.limit);
        const after = seqCursor(ctx.query.after);
        const docs = await c.journal.find({ team, seq: { $gt: after } }).sort({ seq: 1 }).limit(limit + 1).toArray();
        const hasMore = docs.length > limit;
        // Served whole, `_id` and `team` included: recordHash covers them, so each row verifies as
        // served (docs/AUDIT.md).
        const rows = docs.slice(0, limit);
        // The cursor never goes back: an empty page hands the caller's cursor back to poll again.
        return { status: 200, body: { team, rows, nextAfter: rows.at(-1)?.seq ?? after, hasMore } };
      },
    },
    {
      method: "get",
      path: "/journal/checkpoints",
      summary: "Signed checkpoints of the journal's hash chain in seq order, with the service's public key to check them",
      tag: "audit",
      query: { team: "team to read (service tokens only)", after: "checkpoint seq already seen (default 0)", limit: "checkpoints per page, 1-500 (default 100)" },
      authorize: readers,
      responses: { 200: { description: "checkpoints after the cursor", schema: CheckpointPage }, ...errors(400, 401, 403) },
      async handle(ctx) {
        const team = readTeam(ctx.claims!, ctx.query);
        const limit = pageLimit(ctx.query.limit);
        const after = seqCursor(ctx.query.after);
        const docs = await c.journalCheckpoints.find({ team, seq: { $gt: after } }).sort({ seq: 1, _id: 1 }).limit(limit + 1).toArray();
        const hasMore = docs.length > limit;
        const rows = docs.slice(0, limit).map(({ _id: _ignored, ...rest }) => rest);
        return { status: 200, body: { team, publicKey: tokens.publicKeyPem, rows, nextAfter: rows.at(-1)?.seq ?? after, hasMore } };
      },
    },
  ];
}
