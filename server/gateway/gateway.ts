/**
 * The classic batch-sync gateway: one request becomes a checked plan (plan.ts), catalog changes
 * and entries in the caller's gateway segment, and an answer built from the materializer's
 * verdicts. Requests of one team run one at a time in this process, so two gateway requests
 * never validate against the same state; races with CRDT devices are settled by the
 * materializer, which decides a request's entries as one atomic group: a refused request
 * answers 409 with the failing entry's reason and leaves no record of its own.
 */
import { createHash } from "node:crypto";
import type { Repo } from "@automerge/automerge-repo";
import type { Db } from "mongodb";
import { batchRefusedPrefix, canonicalJson, type LedgerEntry } from "../../shared/domain/index.js";
import type { Claims } from "../../shared/auth/claims.js";
import type { Logger } from "../log.js";
import { collections, type Collections } from "../materializer/collections.js";
import type { DocumentRegistry } from "../relay/registry.js";
import { ApiError } from "../http/route.js";
import { classicDataset } from "./dataset.js";
import { conflict } from "./errors.js";
import { IdempotencyStore, MAX_KEY_LENGTH, type IdempotencyDoc } from "./idempotency.js";
import { ensureGatewayIndexes, gatewayCollections, type GatewayCollections } from "./meta.js";
import { parseSyncPayload } from "./payload.js";
import { buildPlan, type CatalogOp, type SyncPlan } from "./plan.js";
import { appendToGatewaySegment } from "./segments.js";
import { readCatalog, teamDocsLoader, type TeamDocs } from "./team-docs.js";
import { VerdictTimeout, waitForVerdicts, type JournalVerdict } from "./verdicts.js";

export interface GatewayOptions {
  db: Db;
  repo: Repo;
  registry: DocumentRegistry;
  logger: Logger;
  /** Look documents up one `_id` at a time (DatabaseFeatures.indexedQueries is false). */
  pointLookups?: boolean;
  /** How long a sync waits for the materializer's verdicts before answering 504. */
  verdictTimeoutMs?: number;
  /** Requests of one team waiting for their turn; more answer 503. */
  maxQueuePerTeam?: number;
}

export const DEFAULT_VERDICT_TIMEOUT_MS = 15_000;
export const DEFAULT_MAX_QUEUE_PER_TEAM = 32;

export interface SyncAnswer {
  status: number;
  raw: string;
}

export class Gateway {
  readonly c: Collections;
  readonly g: GatewayCollections;
  readonly idempotency: IdempotencyStore;
  private readonly docs: (team: string) => Promise<TeamDocs>;
  private readonly queues = new Map<string, { tail: Promise<unknown>; waiting: number }>();
  private readonly verdictTimeoutMs: number;
  private readonly log: Logger;

  constructor(private readonly opts: GatewayOptions) {
    this.c = collections(opts.db);
    this.g = gatewayCollections(opts.db);
    this.verdictTimeoutMs = opts.verdictTimeoutMs ?? DEFAULT_VERDICT_TIMEOUT_MS;
    // The lease outlives the longest legitimate wait, so only a dead executor loses its record.
    this.idempotency = new IdempotencyStore(opts.db, this.verdictTimeoutMs * 2 + 10_000);
    this.docs = teamDocsLoader(opts.repo, opts.registry);
    this.log = opts.logger.child({ module: "gateway" });
  }

  async ensureIndexes(): Promise<void> {
    await this.idempotency.ensureIndexes();
    await ensureGatewayIndexes(this.g);
  }

  /** `POST /api/sync`. Throws ApiError for answers that are not stored (bad key, overload). */
  async sync(claims: Claims, body: Record<string, unknown>, key: string | undefined): Promise<SyncAnswer> {
    const team = claims.team;
    if (key === undefined) return this.serialized(team, () => this.execute(claims, body, undefined));
    if (key.length === 0 || key.length > MAX_KEY_LENGTH) throw new ApiError(400, "invalid-idempotency-key", `X-Idempotency-Key must be 1 to ${MAX_KEY_LENGTH} characters`);
    const requestHash = createHash("sha256").update(canonicalJson(body)).digest("hex");
    const begun = await this.idempotency.begin(team, key, claims.sub, requestHash);
    if (begun.kind === "done") return { status: begun.status, raw: begun.body };
    if (begun.kind === "mismatch") throw new ApiError(422, "idempotency-key-reused", "X-Idempotency-Key was already used for a different request");
    if (begun.kind === "busy") return this.awaitOther(claims, begun.doc);
    return this.serialized(team, () => this.execute(claims, body, key));
  }

  /** Another request holds the key: wait for its stored answer, or finish its plan if it died. */
  private async awaitOther(claims: Claims, first: IdempotencyDoc): Promise<SyncAnswer> {
    const deadline = Date.now() + this.verdictTimeoutMs * 2 + 5_000;
    let doc: IdempotencyDoc | null = first;
    while (doc && Date.now() < deadline) {
      if (doc.state === "done" && doc.status !== null && doc.body !== null) return { status: doc.status, raw: doc.body };
      if (doc.leaseUntil.getTime() < Date.now() && (await this.idempotency.takeOver(doc))) {
        if (doc.state === "pending") {
          // Its executor died before writing anything: start afresh under the same key.
          await this.idempotency.abandon(doc.team, doc.key);
          throw new ApiError(409, "idempotency-retry", "the first request with this X-Idempotency-Key did not complete; retry");
        }
        const plan = doc.plan!;
        const key = doc.key;
        return this.serialized(doc.team, () => this.complete(claims, plan, key));
      }
      await new Promise((r) => setTimeout(r, 50));
      doc = await this.idempotency.get(first.team, first.key);
    }
    throw new ApiError(409, "idempotency-in-progress", "a request with this X-Idempotency-Key is still in progress; retry later");
  }

  private serialized<T>(team: string, run: () => Promise<T>): Promise<T> {
    let q = this.queues.get(team);
    if (!q) this.queues.set(team, (q = { tail: Promise.resolve(), waiting: 0 }));
    if (q.waiting >= (this.opts.maxQueuePerTeam ?? DEFAULT_MAX_QUEUE_PER_TEAM)) {
      throw new ApiError(503, "busy", "too many sync requests for this team in progress; retry shortly");
    }
    const queue = q;
    queue.waiting++;
    const result = queue.tail.then(run);
    queue.tail = result.catch(() => undefined).finally(() => {
      queue.waiting--;
      if (queue.waiting === 0 && this.queues.get(team) === queue) this.queues.delete(team);
    });
    return result;
  }

  private async execute(claims: Claims, body: Record<string, unknown>, key: string | undefined): Promise<SyncAnswer> {
    const team = claims.team;
    let plan: SyncPlan;
    try {
      const docs = await this.docs(team);
      plan = await buildPlan(parseSyncPayload(body), {
        team, device: gatewayDevice(claims), user: claims.sub, now: new Date(), catalog: readCatalog(docs.catalog.doc()),
        c: this.c, g: this.g, settings: docs.settings, pointLookups: this.opts.pointLookups ?? false,
      });
    } catch (err) {
      if (err instanceof ApiError && err.status < 500) {
        // Refused before anything was written: the refusal is the answer a retry gets.
        const answer = { status: err.status, raw: JSON.stringify({ ...err.extra, error: { code: err.code, message: err.message } }) };
        if (key !== undefined) await this.idempotency.done(team, key, answer.status, answer.raw);
        return answer;
      }
      if (key !== undefined) await this.idempotency.abandon(team, key).catch(() => undefined);
      throw err;
    }
    if (key !== undefined) await this.idempotency.written(team, key, plan);
    return this.complete(claims, plan, key);
  }

  /**
   * Writes a plan's entries (again, when finishing a retry: every write is idempotent) and
   * answers from the verdicts. The entries are one atomic group the materializer accepts or
   * refuses whole; catalog changes and the classic metadata are written only once it accepted,
   * so a refused request leaves nothing of its own behind.
   */
  private async complete(claims: Claims, plan: SyncPlan, key: string | undefined): Promise<SyncAnswer> {
    const team = claims.team;
    const device = gatewayDevice(claims);
    const docs = await this.docs(team);

    let answer: SyncAnswer;
    try {
      if (plan.entries.length > 0) await appendToGatewaySegment(this.opts.repo, this.opts.registry, docs, device, plan.entries, this.log);
      const verdicts = await waitForVerdicts(this.c, team, plan.entries.map((e) => e.id), this.verdictTimeoutMs);
      answer = await this.answer(claims, docs, plan, verdicts);
    } catch (err) {
      if (!(err instanceof VerdictTimeout)) throw err;
      this.log.warn({ team, entries: plan.entries.length }, "sync: verdicts not in time");
      // Not stored: a retry with the same key finishes this plan instead of writing a new one.
      const message = "the server has the operations but has not decided them yet; retry with the same X-Idempotency-Key for the result";
      return { status: 504, raw: JSON.stringify({ success: false, message, error: { code: "verdicts-pending", message } }) };
    }
    if (key !== undefined) await this.idempotency.done(team, key, answer.status, answer.raw);
    return answer;
  }

  private async answer(claims: Claims, docs: TeamDocs, plan: SyncPlan, verdicts: Map<string, JournalVerdict>): Promise<SyncAnswer> {
    const team = claims.team;
    const refused = plan.entries.filter((e) => verdicts.get(e.id)?.status !== "accepted");
    if (refused.length === 0) {
      applyCatalog(docs, [...plan.catalog, ...plan.afterAccept.map((a) => ({ op: "item.put" as const, item: a.item }))]);
      await this.opts.repo.flush([docs.catalog.documentId]);
      for (const m of plan.invoiceMeta) await this.g.invoiceMeta.replaceOne({ _id: m._id }, m, { upsert: true });
      for (const m of plan.paymentMeta) await this.g.paymentMeta.replaceOne({ _id: m._id }, m, { upsert: true });
      const changed = new Set([...plan.synced.itemsCreated, ...plan.synced.itemsUpdated, ...plan.synced.itemsDeleted]);
      const data = await classicDataset(this.c, this.g, team, readCatalog(docs.catalog.doc()), { changed, at: plan.at });
      const body = { success: true, message: "Sync completed successfully", summary: plan.summary, synced: plan.synced, data };
      return { status: 200, raw: JSON.stringify(body) };
    }
    // A device's concurrent entry won (the last unit, the outstanding balance), and the
    // materializer refused the whole group: its catalog changes and metadata are never written.
    // The culprit has the rule's own reason; the other members name it.
    const culprit = refused.find((e) => !(e.batch !== undefined && (verdicts.get(e.id)?.reason ?? "").startsWith(batchRefusedPrefix(e.batch)))) ?? refused[0]!;
    const v = verdicts.get(culprit.id);
    const reason = v?.reason ?? `entry ${culprit.id} was ${v?.status ?? "not decided"}`;
    const err = conflict(reason, {
      verdicts: plan.entries.map((e: LedgerEntry) => ({ id: e.id, kind: e.kind, status: verdicts.get(e.id)?.status ?? "undecided", reason: verdicts.get(e.id)?.reason ?? null })),
    });
    return { status: 409, raw: JSON.stringify({ ...err.extra, error: { code: err.code, message: err.message } }) };
  }
}

/** Distinct from every device's own id, so a device's segments and its gateway segments never share keys. */
export function gatewayDevice(claims: Claims): string {
  return `gw-${claims.device ?? claims.sub}`.slice(0, 64);
}

function applyCatalog(docs: TeamDocs, ops: readonly CatalogOp[]): void {
  if (ops.length === 0) return;
  docs.catalog.change((d) => {
    for (const op of ops) {
      switch (op.op) {
        case "item.put": {
          // Present already (a retry finishing its plan): set fields, never replace the map,
          // which would drop a device's concurrent edit of another field.
          const target = d.items[op.item.id] as Record<string, unknown> | undefined;
          if (!target) d.items[op.item.id] = { ...op.item };
          else for (const [k, v] of Object.entries(op.item)) if (target[k] !== v) target[k] = v;
          break;
        }
        case "item.set": {
          const target = d.items[op.id] as Record<string, unknown> | undefined;
          if (!target) break;
          for (const [k, v] of Object.entries(op.fields)) if (target[k] !== v) target[k] = v;
          break;
        }
        case "group.put":
          d.groups[op.group.id] = { ...op.group };
          break;
        case "customer.put":
          if (!d.customers[op.customer.id]) d.customers[op.customer.id] = { ...op.customer };
          break;
      }
    }
  });
}
