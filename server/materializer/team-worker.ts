/**
 * Materializes one team: follows its segment registry and ledger segments in the Repo, decides
 * new entries in batches (one at a time per team), projects the catalog, and publishes
 * verdicts, stock and open balances back into the team's server-owned documents.
 */
import * as A from "@automerge/automerge";
import {
  generateAutomergeUrl,
  isValidAutomergeUrl,
  parseAutomergeUrl,
  type AutomergeUrl,
  type DocHandle,
  type DocumentId,
  type Repo,
} from "@automerge/automerge-repo";
import { parseCheckpoint, type Checkpoint } from "../../shared/checkpoint.js";
import type { CatalogDoc, DocKind, LedgerSegmentDoc, PublishedVerdict, SegmentRegistryDoc, StatusDoc, StoredCheckpoint, StoredVerdict, TeamRootDoc, VerdictsDoc } from "../../shared/docs.js";
import {
  DEFAULT_SETTINGS,
  GRANT_SCOPE,
  parseCustomer,
  parseGroup,
  parseItem,
  parseSettings,
  type ItemState,
  type TeamSettings,
} from "../../shared/domain/index.js";
import type { Logger } from "../log.js";
import { checkedLink, ForeignDocumentError } from "../relay/links.js";
import type { DocumentRegistry } from "../relay/registry.js";
import { checkpointSignatureValid } from "../audit/signer.js";
import { AllowanceKeeper, publishAllowances, republishAllowances } from "./allowances.js";
import { checkpointDue, checkpointId, latestSignedCheckpoint, storeCheckpoint, type Anchoring } from "./anchor.js";
import { processBatch, type BatchContext, type BatchEntry, type BatchOutcome } from "./batch.js";
import type { ProjectionLane } from "./projection-lane.js";
import { teamKey, type ClosedPeriodDoc, type JournalRecord, type SegmentCountsDoc } from "./collections.js";
import { findForeignCatalogRows } from "./catalog-rows.js";
import { figuresOf, sameFigures, SegmentTally } from "./segment-counts.js";
import { pausePoint } from "./pause-points.js";
import { chainHead, type ChainHead } from "./journal.js";
import type { MaterializerMetrics } from "./metrics.js";
import { closeDue, latestClose } from "./periods.js";
import { segmentDelta } from "./segment-changes.js";
import { addFact, applyActivity, emptyFacts, factsOf, segmentMissing, storedInvoice } from "./segment-facts.js";
import type { StatementSigner } from "./statements.js";
import { replaceAll, upsertEach } from "./write-set.js";

const FIND_TIMEOUT_MS = 15_000;
const SEGMENT_OPENS_AT_ONCE = 4;
const RETRY_AFTER_FAILURE_MS = 200;
const GATHER_MS = 30;

export interface TeamWorkerOptions {
  team: string;
  rootUrl: AutomergeUrl;
  repo: Repo;
  ctx: BatchContext;
  registry: DocumentRegistry;
  logger: Logger;
  metrics: MaterializerMetrics;
  /** Wall clock, injectable so deferral expiry can be tested. */
  now?: () => string;
  /** Upper bound on entries decided in one batch. */
  maxBatch?: number;
  /** How often waiting (deferred) entries are checked for expiry. */
  deferCheckMs?: number;
  /** Brings the projections up to the journal; run before the next batch after a failed one. */
  catchUp?: () => Promise<void>;
  /** The self-check (self-check.ts), run between batches every `everyMs` (0: never). */
  selfCheck?: { run: () => Promise<void>; everyMs: number };
  /** Signed checkpoints of the journal (anchor.ts); none are made without it. */
  anchor?: Anchoring;
  /** Signs the server-owned documents; without it they are published unsigned (as before statements). */
  signer?: StatementSigner;
}

interface Segment {
  url: AutomergeUrl;
  documentId: DocumentId;
  handle: DocHandle<LedgerSegmentDoc>;
  device: string | null;
  /** When the first change not yet decided was seen (for the verdict lag metric). */
  dirtySince: number | null;
  /**
   * Heads decided so far (the checkpoint in MongoDB), kept here once read: with hundreds of
   * devices writing, a read per dirty segment per batch was a good part of the batch's time.
   * `undefined` until read; `null` when the segment has none yet.
   */
  checkpoint: string[] | null | undefined;
}

/** A team document the materializer could not open: which one and why (its health record). */
export class TeamDocumentError extends Error {
  constructor(
    readonly team: string,
    readonly role: string,
    readonly documentId: string,
    readonly reason: string,
    options?: { cause: unknown },
  ) {
    super(`team ${team}: ${role} document ${documentId} could not be opened: ${reason}`, options);
    this.name = "TeamDocumentError";
  }
}

export class TeamWorker {
  private readonly log: Logger;
  private readonly now: () => string;
  private settings: TeamSettings = { ...DEFAULT_SETTINGS };
  private root!: DocHandle<TeamRootDoc>;
  private registryDoc!: DocHandle<SegmentRegistryDoc>;
  private catalog!: DocHandle<CatalogDoc>;
  private status!: DocHandle<StatusDoc>;
  private readonly segments = new Map<string, Segment>();
  /** Registry entries not (yet) registered to this team at the relay: checked again later. */
  private readonly pendingSegments = new Set<AutomergeUrl>();
  private readonly verdictDocs = new Map<string, DocHandle<VerdictsDoc>>();
  private catalogItems = new Map<string, ItemState>();
  private catalogDirty = true;
  private running: Promise<void> | null = null;
  private rerun = false;
  private stopped = false;
  /** Set once verdicts of a previous run are republished; no batch runs before. */
  private started = false;
  /** While the team's segments are first opened, each one opened may start a batch. */
  private decideWhileOpening = false;
  private timer: NodeJS.Timeout | null = null;
  private deferTimer: NodeJS.Timeout | null = null;
  private selfCheckTimer: NodeJS.Timeout | null = null;
  /**
   * Self-checks asked for and not yet run: one at start and one per interval. One runs when the
   * team has nothing to decide; two (a team never idle for a whole interval) run before a batch.
   */
  private selfChecksDue = 1;
  /**
   * Set when a batch fails: it may have journaled records without projecting them, and the next
   * batch's projected mark would pass over them.
   */
  private catchUpFirst = false;
  private readonly projectedCatalog = new Map<string, string>();
  private foreignCheck: Promise<void> | null = null;
  /**
   * What the journal says per segment, for the sync-status rows (segment-counts.ts); read with
   * the journal at start, advanced by each batch, and dropped when a batch fails (it may have
   * journaled records it never returned), to be read again before the next one.
   */
  private tally: SegmentTally | null = null;
  /** Set when the tally was (re)read: every segment's row is rewritten at the next batch. */
  private recountAll = false;
  /** The latest checkpoint signed for this team; `undefined` until read from MongoDB. */
  private lastCheckpoint: Checkpoint | null | undefined;
  /** The close in force (periods.ts); `undefined` until read from MongoDB, and again after a failed batch. */
  private close: ClosedPeriodDoc | null | undefined;
  private readonly allowances: AllowanceKeeper;

  constructor(private readonly opts: TeamWorkerOptions) {
    this.log = opts.logger.child({ module: "materializer", team: opts.team });
    this.now = opts.now ?? (() => new Date().toISOString());
    this.allowances = new AllowanceKeeper({
      ctx: opts.ctx,
      team: opts.team,
      settings: () => this.settings,
      catalogItems: () => this.catalogItems,
      devices: () => [...this.segments.values()].flatMap((s) => (s.device === null ? [] : [s.device])),
      now: this.now,
      closedThrough: () => this.close?.through ?? null,
      settle: () => this.projectionsWritten(),
    });
  }

  async start(): Promise<void> {
    // Each link is checked before the document is opened: a handle to another team's document,
    // once open, would feed its changes into this team's projections until the next restart.
    this.root = await this.open<TeamRootDoc>("team-root", this.opts.rootUrl);
    const root = this.root.doc();
    this.readSettings(root.settings);
    // Admins change settings through the HTTP API, which writes them to the root; listening
    // before the awaits below, so a change made while the team starts is not missed.
    // The service writes them without the statement key: the materializer signs the new root.
    this.root.on("change", () => {
      this.readSettings(this.root.doc().settings);
      this.serverChange(this.root);
      this.schedule(); // new allowance settings are planned for without waiting for a sale
    });
    this.registryDoc = await this.open<SegmentRegistryDoc>("segment-registry", root.registry);
    this.catalog = await this.open<CatalogDoc>("catalog", root.catalog);
    this.status = await this.open<StatusDoc>("status", root.status);
    // Documents from before signatures get their first statement (no new version otherwise).
    this.serverChange(this.root);
    this.serverChange(this.status);
    // A foreign verdicts link is dropped rather than stopping the team: earlier versions, following
    // another team's root, wrote links to that team's verdict documents into this status; the
    // victim team must keep running, and a segment of its own gets a new verdicts document.
    const foreignVerdicts: string[] = [];
    for (const [segmentUrl, verdictsUrl] of Object.entries(this.status.doc().verdicts ?? {})) {
      if (!isValidAutomergeUrl(verdictsUrl)) continue;
      try {
        this.verdictDocs.set(segmentUrl, await this.open<VerdictsDoc>("verdicts", verdictsUrl));
      } catch (err) {
        if (!(err instanceof TeamDocumentError && err.cause instanceof ForeignDocumentError)) throw err;
        foreignVerdicts.push(segmentUrl);
      }
    }
    if (foreignVerdicts.length > 0) {
      this.serverChange(this.status, (d) => {
        for (const segmentUrl of foreignVerdicts) delete d.verdicts[segmentUrl];
      });
    }

    this.catalog.on("change", () => {
      this.catalogDirty = true;
      this.schedule();
    });
    this.registryDoc.on("change", () => void this.refreshSegments().then(() => this.schedule()));
    // Batches begin with the first segments opened, while the rest still load: opening is the
    // relay's and this process's Automerge work, a batch mostly waits on MongoDB.
    // Only at start: later, segments that arrive together are decided together, in (at, id)
    // order, rather than in the order they happen to open.
    this.decideWhileOpening = true;
    const opening = this.refreshSegments();
    opening.catch(() => undefined); // handled by the await below, after republish
    await this.republish();
    await this.keepPublishedWitness();
    this.started = true;
    this.schedule();
    // In the background: on FerretDB the check scans (2.3 s for 5,000 items), and it only reports.
    this.foreignCheck = this.reportForeignRows().catch((err: unknown) => this.log.warn({ err }, "foreign catalog rows could not be checked"));
    await opening.finally(() => (this.decideWhileOpening = false));
    if (this.pendingSegments.size > 0) this.schedule(); // a batch during the opening did not retry them
    this.deferTimer = setInterval(() => this.schedule(), this.opts.deferCheckMs ?? 30_000);
    this.deferTimer.unref();
    const check = this.opts.selfCheck;
    if (check && check.everyMs > 0) {
      this.selfCheckTimer = setInterval(() => {
        this.selfChecksDue += 1;
        this.schedule();
      }, check.everyMs);
      this.selfCheckTimer.unref();
    }
  }

  /** Seconds since the oldest change not yet decided was seen (0 when caught up). */
  behindSeconds(): number {
    let oldest: number | null = null;
    for (const seg of this.segments.values()) {
      if (seg.dirtySince !== null) oldest = oldest === null ? seg.dirtySince : Math.min(oldest, seg.dirtySince);
    }
    return oldest === null ? 0 : Math.round((Date.now() - oldest) / 100) / 10;
  }

  /** A link the registry gives to this team as `kind`; refused (logged, counted, thrown) otherwise. */
  private async link(kind: DocKind, url: unknown): Promise<AutomergeUrl> {
    try {
      return await checkedLink(this.opts.registry, this.opts.team, kind, url);
    } catch (err) {
      if (err instanceof ForeignDocumentError) {
        this.opts.metrics.foreignDocuments.inc({ kind });
        this.log.error({ documentId: err.documentId, kind, reason: err.reason }, "refused a linked document not registered to the team");
      }
      throw err;
    }
  }

  private readSettings(raw: unknown): void {
    const parsed = parseSettings(raw);
    if (parsed.ok) {
      this.settings = parsed.settings;
      this.allowances.touch();
    } else this.log.warn({ reason: parsed.reason }, "team settings unreadable; keeping the previous ones");
  }

  /**
   * Rows of items, groups or customers that the team's registered catalog does not account for
   * were written from another document (before links were checked): reported, not deleted here,
   * since `npm run rebuild` recomputes them cleanly.
   */
  private async reportForeignRows(): Promise<void> {
    const found = await findForeignCatalogRows(this.opts.ctx.c, this.opts.team, this.catalog.doc());
    for (const [collection, ids] of Object.entries(found)) this.opts.metrics.foreignRows.set({ team: this.opts.team, collection }, ids.length);
    const total = found.items.length + found.groups.length + found.customers.length;
    if (total === 0) return;
    this.log.warn(
      {
        items: found.items.length, groups: found.groups.length, customers: found.customers.length,
        examples: [...found.items, ...found.groups, ...found.customers].slice(0, 10),
      },
      "projection rows not from the team's registered catalog: run `npm run rebuild` to recompute them",
    );
  }

  /**
   * Bounded: a start that cannot get a team document fails, naming it, and is retried later by
   * the Materializer instead of hanging. A document that loads without its `type` (empty, or
   * something else) fails too: deciding against an empty catalog would be wrong, not just slow.
   */
  private async open<T>(kind: DocKind, link: unknown): Promise<DocHandle<T>> {
    let url: AutomergeUrl;
    try {
      url = await this.link(kind, link);
    } catch (err) {
      if (!(err instanceof ForeignDocumentError)) throw err;
      throw new TeamDocumentError(this.opts.team, kind, err.documentId, err.reason, { cause: err });
    }
    const documentId = parseAutomergeUrl(url).documentId;
    const role = kind;
    // Every team document carries its kind as `type` from its first change.
    const type = kind;
    let handle: DocHandle<T>;
    try {
      handle = await this.opts.repo.find<T>(url, { signal: AbortSignal.timeout(FIND_TIMEOUT_MS) });
    } catch (err) {
      const timedOut = err instanceof Error && (err.name === "AbortError" || err.name === "TimeoutError");
      const reason = timedOut ? `not received from the relay within ${FIND_TIMEOUT_MS / 1000} s` : err instanceof Error ? err.message : String(err);
      throw new TeamDocumentError(this.opts.team, role, documentId, reason);
    }
    const found = (handle.doc() as { type?: unknown } | undefined)?.type;
    if (type !== undefined && found !== type) {
      throw new TeamDocumentError(this.opts.team, role, documentId, found === undefined ? "the document is empty" : `expected a ${type} document, found ${JSON.stringify(found)}`);
    }
    return handle;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.deferTimer) clearInterval(this.deferTimer);
    if (this.selfCheckTimer) clearInterval(this.selfCheckTimer);
    await this.foreignCheck;
    await this.running;
    await this.lane()?.settled();
  }

  /** Resolves once every change seen so far has been decided, published and projected. */
  async idle(): Promise<void> {
    while (this.running || this.timer) {
      await (this.running ?? new Promise((r) => setTimeout(r, 20)));
    }
    await this.lane()?.settled();
  }

  /** Where this team's projections are written behind its journal (batch.ts BatchContext.lanes). */
  private lane(): ProjectionLane | undefined {
    return this.opts.ctx.lanes?.get(this.opts.team);
  }

  /** Waits until the projections queued so far are written; throws if one failed (the batch then fails, and a catch-up follows). */
  private async projectionsWritten(): Promise<void> {
    await this.lane()?.drain();
  }

  /**
   * A batch when the team is idle starts GATHER_MS after the first change: segments that arrive
   * together (devices coming online at once) are decided together, in (at, id) order.
   */
  private schedule(): void {
    this.startSoon(GATHER_MS);
  }

  private startSoon(delayMs: number): void {
    if (this.stopped || !this.started) return;
    if (this.running) {
      this.rerun = true;
      return;
    }
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.running = this.runOnce()
        .then(
          () => 0,
          (err: unknown) => {
            this.log.error({ err }, "batch failed; retrying");
            this.opts.metrics.batchFailures.inc();
            this.catchUpFirst = true;
            this.close = undefined;
            this.tally = null;
            this.rerun = true;
            return RETRY_AFTER_FAILURE_MS;
          },
        )
        .then((delay) => {
          this.running = null;
          if (this.rerun) {
            this.rerun = false;
            // Straight on after a batch: what arrived meanwhile has waited already, and makes
            // the next batch (larger when behind). A pause after a failure, so a database that
            // is down is not asked in a loop.
            if (delay === 0) this.startSoon(0);
            else setTimeout(() => this.schedule(), delay).unref();
          }
        });
    }, delayMs);
  }

  private refreshing: Promise<void> | null = null;
  private refreshAgain = false;

  /**
   * One refresh at a time (the registry's change events and the batch loop both ask for it); a
   * request during a refresh runs another one after it, since the registry may have changed
   * after the running one read it.
   */
  private refreshSegments(): Promise<void> {
    if (this.refreshing) {
      this.refreshAgain = true;
      return this.refreshing;
    }
    this.refreshing = (async () => {
      do {
        this.refreshAgain = false;
        await this.doRefreshSegments();
      } while (this.refreshAgain);
    })().finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  private async doRefreshSegments(): Promise<void> {
    const todo = new Map<string, AutomergeUrl>();
    for (const url of [...Object.values(this.registryDoc.doc().segments ?? {}), ...this.pendingSegments]) {
      if (typeof url !== "string" || !isValidAutomergeUrl(url)) continue;
      const { documentId } = parseAutomergeUrl(url);
      if (!this.segments.has(documentId)) todo.set(documentId, url);
    }
    // Several at once: opening a segment is the relay loading it and the two sides encoding and
    // applying its changes, each on its own process. One at a time, a team of 100 segments of
    // 1,000 entries took 220 s to open before its first batch.
    const queue = [...todo.values()];
    const worker = async (): Promise<void> => {
      for (let url = queue.shift(); url !== undefined; url = queue.shift()) await this.openSegment(url);
    };
    await Promise.all(Array.from({ length: SEGMENT_OPENS_AT_ONCE }, worker));
  }

  private async openSegment(url: AutomergeUrl): Promise<void> {
    const { documentId } = parseAutomergeUrl(url);
    // A member could list another team's document here: only segments the relay registered
    // to this team are read.
    const rec = await this.opts.registry.lookup(documentId);
    if (!rec || rec.team !== this.opts.team || rec.kind !== "ledger-segment") {
      this.pendingSegments.add(url);
      return;
    }
    let handle: DocHandle<LedgerSegmentDoc>;
    try {
      // Bounded: a segment the relay cannot serve right now must not hold up the others.
      handle = await this.opts.repo.find<LedgerSegmentDoc>(url, { signal: AbortSignal.timeout(FIND_TIMEOUT_MS) });
    } catch (err) {
      this.log.warn({ segment: documentId, err: err instanceof Error ? err.message : String(err) }, "segment not available yet; will retry");
      this.pendingSegments.add(url);
      return;
    }
    this.pendingSegments.delete(url);
    const device = typeof handle.doc().device === "string" ? handle.doc().device : null;
    const seg: Segment = { url, documentId, handle, device, dirtySince: Date.now(), checkpoint: undefined };
    this.segments.set(documentId, seg);
    handle.on("change", () => {
      seg.dirtySince ??= Date.now();
      this.schedule();
    });
    if (this.decideWhileOpening) this.schedule();
  }

  private async runOnce(): Promise<void> {
    if (this.catchUpFirst && this.opts.catchUp) {
      // Its failure, if any, is why the catch-up runs: only the writes must be over.
      await this.lane()?.drain().catch(() => undefined);
      await this.opts.catchUp();
      this.catchUpFirst = false;
    }
    if (this.selfChecksDue >= 2) await this.runSelfCheck();
    if (!this.tally) {
      this.tally = await SegmentTally.load(this.opts.ctx.c, this.opts.team);
      this.recountAll = true;
    }
    // Waits for a refresh under way (it returns that one), so segments that arrive together are
    // decided together; except during the team's first opening, which schedules a batch for each
    // segment it opens and retries what it could not open once it is done.
    if (this.pendingSegments.size > 0 && !this.decideWhileOpening) {
      await this.refreshSegments();
      // The relay registers a segment when its first sync message arrives, which may come
      // after the registry entry that names it: look again shortly.
      if (this.pendingSegments.size > 0) setTimeout(() => this.schedule(), 500).unref();
    }
    if (this.catalogDirty) {
      // Items first seen in a sale are inserted by the projections: not at the same time.
      await this.projectionsWritten();
      this.catalogDirty = false;
      await this.projectCatalog();
    }
    // Before the batch is read: what it decides is decided with the close in force.
    await this.closePeriods();
    const { c } = this.opts.ctx;
    const max = this.opts.maxBatch ?? 5000;
    const batch: BatchEntry[] = [];
    const advanced: { seg: Segment; heads: string[] }[] = [];
    let oldest: number | null = null;
    for (const seg of this.segments.values()) {
      if (seg.dirtySince === null) continue;
      if (batch.length >= max) {
        this.rerun = true;
        break;
      }
      if (seg.checkpoint === undefined) seg.checkpoint = (await c.checkpoints.findOne({ _id: seg.documentId }))?.heads ?? null;
      const doc = seg.handle.doc();
      const delta = segmentDelta(doc, seg.checkpoint ?? undefined);
      const entries = (doc.entries ?? {}) as Record<string, unknown>;
      for (const key of delta.keys) {
        if (!Object.hasOwn(entries, key)) continue;
        const origin = delta.origin.get(key);
        batch.push({
          key,
          raw: entries[key],
          provenance: { segment: seg.documentId, device: seg.device, change: origin?.change ?? null, actor: origin?.actor ?? null },
        });
      }
      advanced.push({ seg, heads: delta.heads });
      oldest = oldest === null ? seg.dirtySince : Math.min(oldest, seg.dirtySince);
      seg.dirtySince = null;
    }
    // Waiting entries are looked for only when nothing new came (a batch reads them anyway).
    if (batch.length === 0 && (await c.deferred.countDocuments({ team: this.opts.team })) === 0) {
      // A quiet team: a projection write that failed behind the last batch fails this run (logged,
      // counted), and the catch-up follows.
      await this.projectionsWritten();
      await this.saveCheckpoints(advanced);
      await this.writeCounts(advanced.map((a) => a.seg));
      await this.anchor(); // the periodic tick is what signs a quiet team's last records
      if (this.selfChecksDue > 0) await this.runSelfCheck();
      await this.rebalanceAllowances();
      return;
    }
    const started = Date.now();
    if (oldest !== null) this.opts.metrics.stage.observe({ stage: "wait" }, (started - oldest) / 1000);
    let outcome: BatchOutcome;
    try {
      // Verdicts are published as soon as the journal holds them, before the projections.
      const journaled = async (records: readonly JournalRecord[], deferred: BatchOutcome["deferred"]): Promise<void> => {
        if (oldest !== null && records.length > 0) this.opts.metrics.lag.observe((Date.now() - oldest) / 1000);
        await this.publish(records, deferred);
        if (oldest !== null) this.opts.metrics.published.observe((Date.now() - oldest) / 1000);
      };
      outcome = await processBatch(this.opts.ctx, this.opts.team, batch, this.settings, this.catalogItems, this.now(), this.close?.through ?? null, journaled);
    } catch (err) {
      // Not decided: the segments stay dirty so the retry reads them again.
      for (const { seg } of advanced) seg.dirtySince ??= oldest ?? Date.now();
      throw err;
    }
    await this.saveCheckpoints(advanced);
    await this.writeCounts(this.countsTouched(outcome, advanced));
    await this.anchor();
    this.observe(outcome, batch.length, started);
    this.allowances.observe(outcome.records);
    await this.rebalanceAllowances();
  }

  /** Grants due now (server/materializer/allowances.ts), journaled, then published like any batch. */
  private async rebalanceAllowances(): Promise<void> {
    const outcome = await this.allowances.rebalance();
    if (!outcome || outcome.records.length === 0) return;
    await this.publish(outcome.records, outcome.deferred);
    await this.anchor();
    for (const r of outcome.records) this.opts.metrics.allowances.inc({ kind: "grant", status: r.status });
    this.log.info({ grants: outcome.records.filter((r) => r.status === "accepted").length, seq: outcome.records.at(-1)?.seq }, "allowances granted");
  }

  /** Applies a close an admin asked for or the setting makes due, and publishes the one in force. */
  private async closePeriods(): Promise<void> {
    const { c, fence } = this.opts.ctx;
    const team = this.opts.team;
    if (this.close === undefined) {
      this.close = await latestClose(c, team);
      this.publishClose();
    }
    const closed = await closeDue({ c, team, now: this.now(), settings: this.settings, head: () => this.head(), current: this.close, fence, settle: () => this.projectionsWritten() });
    if (!closed) return;
    this.close = closed;
    this.log.info({ through: closed.through, seq: closed.seq, cause: closed.cause, closedBy: closed.closedBy, days: closed.summaries.length }, "period closed");
    this.publishClose();
    // The head the close falls after, signed as it closes: its place in the chain gets a witness.
    await this.anchor(true);
  }

  /** The journal's last record, from the batches' cache (a sort over the journal otherwise). */
  private async head(): Promise<ChainHead> {
    const { c, heads } = this.opts.ctx;
    let head = heads?.get(this.opts.team);
    if (!head) {
      head = await chainHead(c, this.opts.team);
      heads?.set(this.opts.team, head);
    }
    return head;
  }

  /** Devices see the last closed day in the status document. */
  private publishClose(): void {
    const through = this.close?.through;
    if (through === undefined || this.status.doc().closedThrough === through) return;
    this.serverChange(this.status, (d) => {
      d.closedThrough = through;
    });
  }

  private async runSelfCheck(): Promise<void> {
    if (!this.opts.selfCheck) return;
    await this.projectionsWritten();
    this.selfChecksDue = 0;
    await this.opts.selfCheck.run();
    await this.checkCounts();
  }

  /** The segments whose rows a batch changed (read, or holding an entry it decided), with the tally advanced. */
  private countsTouched(outcome: BatchOutcome, advanced: readonly { seg: Segment }[]): Segment[] {
    const touched = new Set<string>(advanced.map((a) => a.seg.documentId));
    const tally = this.tally;
    if (tally) {
      for (const r of outcome.records) {
        // A waiting entry decided from another segment's copy leaves its first segment too.
        const before = tally.homeOf(r.entryId);
        if (before) touched.add(before);
        touched.add(r.provenance.segment);
        tally.record(r.entryId, r.status, r.provenance.segment);
      }
      for (const d of outcome.deferred) {
        const before = tally.homeOf(d.verdict.id);
        if (before) touched.add(before);
        touched.add(d.provenance.segment);
        tally.defer(d.verdict.id, d.provenance.segment);
      }
    }
    return [...touched].flatMap((id) => this.segments.get(id) ?? []);
  }

  /** A segment's sync-status row: its document as it is now, and the tally. */
  private countsOf(seg: Segment, tally: SegmentTally, now: string): SegmentCountsDoc {
    const doc = seg.handle.doc();
    return tally.row(this.opts.team, seg.documentId, seg.device, Object.keys(doc.entries ?? {}), A.getHeads(doc), now);
  }

  /** Rewrites the rows of these segments (all of them after the tally was read again), whole, after the batch's projections. */
  private async writeCounts(touched: readonly Segment[]): Promise<void> {
    const tally = this.tally;
    if (!tally) return;
    const segments = this.recountAll ? [...this.segments.values()] : touched;
    if (segments.length === 0) return;
    const now = this.now();
    const rows = segments.map((seg) => this.countsOf(seg, tally, now));
    await pausePoint("before-counts");
    // One upsert each: a kill between two leaves no row absent, only behind until the next batch.
    await upsertEach(this.opts.ctx.c.segmentCounts, rows);
    this.recountAll = false;
  }

  /**
   * Part of the self-check: every segment's row recomputed from the whole journal (read again,
   * so the tally itself is checked too) and the segment's document, compared with the stored
   * one, and rewritten where it differs. Segments with changes not yet decided are left to their
   * next batch.
   */
  private async checkCounts(): Promise<void> {
    const { c } = this.opts.ctx;
    const team = this.opts.team;
    const started = Date.now();
    const tally = await SegmentTally.load(c, team);
    this.tally = tally;
    const now = this.now();
    const stored = new Map((await c.segmentCounts.find({ team }).toArray()).map((r) => [r.segment, r]));
    const wrong: SegmentCountsDoc[] = [];
    for (const seg of this.segments.values()) {
      if (seg.dirtySince !== null) continue;
      const want = this.countsOf(seg, tally, now);
      const have = stored.get(seg.documentId);
      if (!have || !sameFigures(have, want)) wrong.push(want);
    }
    const detail = { segments: this.segments.size, ms: Date.now() - started };
    if (wrong.length === 0) {
      this.log.info(detail, "self-check: sync-status counts agree with the journal");
      return;
    }
    this.opts.metrics.selfCheckDifferences.inc({ kind: "segment-counts" }, wrong.length);
    this.log.warn(
      {
        ...detail,
        repaired: wrong.length,
        differences: wrong.slice(0, 20).map((w) => ({ segment: w.segment, stored: figuresOf(stored.get(w.segment)), expected: figuresOf(w) })),
      },
      "self-check: repaired sync-status counts that differed from the journal",
    );
    await upsertEach(c.segmentCounts, wrong);
  }

  private async saveCheckpoints(advanced: { seg: Segment; heads: string[] }[]): Promise<void> {
    const now = this.now();
    const team = this.opts.team;
    await replaceAll(this.opts.ctx.c.checkpoints, advanced.map(({ seg, heads }) => ({ _id: seg.documentId, team, heads, updatedAt: now })));
    for (const { seg, heads } of advanced) seg.checkpoint = heads;
  }

  private observe(outcome: BatchOutcome, size: number, started: number): void {
    const m = this.opts.metrics;
    m.batchSize.observe(size);
    for (const r of outcome.records) {
      m.decided.inc({ status: r.status });
      if (r.kind === "allowance") m.allowances.inc({ kind: r.provenance.segment === GRANT_SCOPE ? "grant" : "return", status: r.status });
    }
    if (outcome.deferred.length) m.decided.inc({ status: "deferred" }, outcome.deferred.length);
    if (outcome.tampered.length) m.tampers.inc(outcome.tampered.length);
    for (const t of outcome.tampered) {
      this.log.warn({ entry: t.id, device: t.provenance.device, decidedHash: t.decidedHash, newHash: t.newHash }, "tamper: decided entry changed");
    }
    // Logged once projected, with every phase (the projections are written behind the next batch).
    void outcome.projected.then(() => {
      this.logBatch(outcome, size, started);
      // A failed projection write is reported by the next run, which also starts the catch-up.
      if (this.lane()?.failed) this.schedule();
    });
  }

  private logBatch(outcome: BatchOutcome, size: number, started: number): void {
    for (const [stage, ms] of Object.entries(outcome.phases)) this.opts.metrics.stage.observe({ stage }, ms / 1000);
    this.log.info(
      {
        batch: size,
        decided: outcome.records.length,
        deferred: outcome.deferred.length,
        tampered: outcome.tampered.length,
        seq: outcome.records.at(-1)?.seq,
        ms: Date.now() - started,
        phases: outcome.phases,
      },
      "batch decided",
    );
  }

  /** Items, groups and customers from the catalog document into MongoDB; only what changed. */
  private async projectCatalog(): Promise<void> {
    const { c } = this.opts.ctx;
    const team = this.opts.team;
    const doc = this.catalog.doc();
    const now = this.now();
    const items = new Map<string, ItemState>();
    const itemOps = [];
    const groupOps = [];
    const customerOps = [];
    for (const [id, raw] of Object.entries(doc.items ?? {})) {
      const p = parseItem(id, raw);
      if (!p.ok) continue;
      items.set(id, { name: p.item.name, price: p.item.price, active: p.item.active });
      if (!this.changed(`i:${id}`, p.item)) continue;
      itemOps.push({
        updateOne: { filter: { _id: teamKey(team, id) }, update: { $set: { team, ...p.item, source: "catalog" as const, updatedAt: now } }, upsert: true },
      });
    }
    for (const [id, raw] of Object.entries(doc.groups ?? {})) {
      const p = parseGroup(id, raw);
      if (!p.ok || !this.changed(`g:${id}`, p.group)) continue;
      groupOps.push({ updateOne: { filter: { _id: teamKey(team, id) }, update: { $set: { team, ...p.group, updatedAt: now } }, upsert: true } });
    }
    for (const [id, raw] of Object.entries(doc.customers ?? {})) {
      const p = parseCustomer(id, raw);
      if (!p.ok || !this.changed(`c:${id}`, p.customer)) continue;
      customerOps.push({ updateOne: { filter: { _id: teamKey(team, id) }, update: { $set: { team, ...p.customer, updatedAt: now } }, upsert: true } });
    }
    this.catalogItems = items;
    if (itemOps.length) await c.items.bulkWrite(itemOps);
    if (groupOps.length) await c.groups.bulkWrite(groupOps);
    if (customerOps.length) await c.customers.bulkWrite(customerOps);
  }

  private changed(key: string, value: unknown): boolean {
    const json = JSON.stringify(value);
    if (this.projectedCatalog.get(key) === json) return false;
    this.projectedCatalog.set(key, json);
    return true;
  }

  /** After a restart: every journaled verdict and the current figures, in case a crash came first. */
  private async republish(): Promise<void> {
    const { c } = this.opts.ctx;
    const bySegment = new Map<string, Map<string, PublishedVerdict>>();
    // The same read gives the sync-status tally: no second scan of the journal at start.
    const tally = new SegmentTally();
    const facts = emptyFacts();
    for await (const r of c.journal.find({ team: this.opts.team }).sort({ seq: 1 })) {
      addFact(facts, r);
      let m = bySegment.get(r.provenance.segment);
      if (!m) bySegment.set(r.provenance.segment, (m = new Map()));
      m.set(r.entryId, published(r));
      tally.record(r.entryId, r.status, r.provenance.segment);
    }
    for await (const d of c.deferred.find({ team: this.opts.team })) {
      tally.defer(d.entryId, d.provenance.segment);
      let m = bySegment.get(d.provenance.segment);
      if (!m) bySegment.set(d.provenance.segment, (m = new Map()));
      if (!m.has(d.entryId)) m.set(d.entryId, { status: "deferred", reason: `waiting for invoice ${d.entry.invoice}`, decidedAt: d.since });
    }
    for (const [segment, verdicts] of bySegment) await this.writeVerdicts(segment, verdicts);
    this.tally = tally;
    this.recountAll = true;
    const stock: Record<string, number> = {};
    for await (const s of c.stock.find({ team: this.opts.team })) stock[s.item] = s.level;
    const open: Record<string, { total: number; paid: number; outstanding: number; status: "open" }> = {};
    for await (const inv of c.invoices.find({ team: this.opts.team, status: "open" })) {
      open[inv.id] = { total: inv.total, paid: inv.paid, outstanding: inv.outstanding, status: "open" };
    }
    const head = await c.journal.find({ team: this.opts.team }).sort({ seq: -1 }).limit(1).next();
    const allowances = await republishAllowances(this.opts.ctx, this.opts.team);
    this.serverChange(this.status, (d) => {
      allowances(d);
      for (const [k, v] of Object.entries(stock)) if (d.stock[k] !== v) d.stock[k] = v;
      // Stock is published from the same records as stock levels, so a key without a level was
      // not written for this team (earlier versions, following another team's root, wrote its
      // stock into this status).
      for (const k of Object.keys(d.stock)) if (!Object.hasOwn(stock, k)) delete d.stock[k];
      for (const k of Object.keys(d.invoices)) if (!Object.hasOwn(open, k)) delete d.invoices[k];
      for (const [k, v] of Object.entries(open)) {
        const cur = d.invoices[k];
        if (!cur || cur.paid !== v.paid || cur.total !== v.total || segmentMissing(cur, k, facts)) d.invoices[k] = storedInvoice(v, k, facts, cur);
      }
      applyActivity(d, facts);
      // A team without a journal yet is at 0, whatever another team's materializer wrote here.
      if (d.seq !== (head?.seq ?? 0)) {
        d.seq = head?.seq ?? 0;
        d.updatedAt = this.now();
      }
    });
  }

  private async publish(records: readonly JournalRecord[], deferred: BatchOutcome["deferred"]): Promise<void> {
    const bySegment = new Map<string, Map<string, PublishedVerdict>>();
    const add = (segment: string, id: string, v: PublishedVerdict): void => {
      let m = bySegment.get(segment);
      if (!m) bySegment.set(segment, (m = new Map()));
      m.set(id, v);
    };
    for (const r of records) add(r.provenance.segment, r.entryId, published(r));
    for (const d of deferred) {
      add(d.provenance.segment, d.verdict.id, { status: "deferred", reason: d.verdict.reason ?? "waiting for invoice", decidedAt: this.now() });
    }
    for (const [segment, verdicts] of bySegment) await this.writeVerdicts(segment, verdicts);

    if (records.length === 0) return;
    const stock = new Map<string, number>();
    const invoices = new Map<string, { total: number; paid: number; outstanding: number; status: "open" | "finalized" | "void" }>();
    for (const r of records) {
      for (const e of r.effects) {
        if (e.type === "stock") stock.set(e.item, e.level);
        if (e.type === "invoice") invoices.set(e.invoice.id, { total: e.invoice.total, paid: e.invoice.paid, outstanding: e.invoice.outstanding, status: e.invoice.status });
      }
    }
    const last = records[records.length - 1]!;
    const facts = factsOf(records);
    this.serverChange(this.status, (d) => {
      for (const [item, level] of stock) d.stock[item] = level;
      // Only open invoices stay: the status document follows the working set, not the history.
      for (const [id, inv] of invoices) {
        if (inv.status === "open") d.invoices[id] = storedInvoice(inv, id, facts, d.invoices[id]);
        else if (d.invoices[id]) delete d.invoices[id];
      }
      publishAllowances(d, records);
      applyActivity(d, facts);
      d.seq = last.seq;
      d.updatedAt = this.now();
    });
  }

  /** Signs, stores and publishes a checkpoint of the chain head when the policy says one is due. */
  /** `force`: sign whenever the head is past the last checkpoint (a close), not only when the policy says so. */
  private async anchor(force = false): Promise<void> {
    const anchoring = this.opts.anchor;
    if (!anchoring) return;
    const { c } = this.opts.ctx;
    const team = this.opts.team;
    const head = await this.head();
    if (this.lastCheckpoint === undefined) this.lastCheckpoint = await latestSignedCheckpoint(c, team);
    const at = this.now();
    const due = force ? head.seq > (this.lastCheckpoint?.seq ?? 0) : checkpointDue(this.lastCheckpoint, head, Date.parse(at), anchoring.policy);
    if (!due) return;
    const cp = anchoring.signer.sign({ team, seq: head.seq, head: head.recordHash, at });
    // Stored before it is published: a device never holds a checkpoint the database never had.
    await storeCheckpoint(c, cp, "signed");
    this.lastCheckpoint = cp;
    this.publishCheckpoint(cp);
  }

  private publishCheckpoint(cp: Checkpoint): void {
    const stored: StoredCheckpoint = {
      team: new A.ImmutableString(cp.team), seq: cp.seq, head: new A.ImmutableString(cp.head),
      at: new A.ImmutableString(cp.at), keyId: new A.ImmutableString(cp.keyId), sig: new A.ImmutableString(cp.sig),
    };
    this.serverChange(this.status, (d) => {
      d.checkpoint = stored;
    });
  }

  /**
   * At start: a checkpoint published in the status document (which lives with the relay, not in
   * MongoDB) that the database does not have means the database is an earlier copy, or its
   * checkpoints were deleted. It is stored back as a witness, so verify-journal names it; the
   * latest stored one is published again otherwise.
   */
  private async keepPublishedWitness(): Promise<void> {
    const anchoring = this.opts.anchor;
    if (!anchoring) return;
    const { c } = this.opts.ctx;
    const published = this.status.doc().checkpoint;
    const cp = published === undefined ? undefined : parseCheckpoint(published);
    if (cp !== undefined && typeof cp !== "string" && cp.team === this.opts.team && checkpointSignatureValid(cp, anchoring.publicKeyPem)) {
      if (!(await c.journalCheckpoints.findOne({ _id: checkpointId(cp) }))) {
        await storeCheckpoint(c, cp, "witness");
        this.log.error(
          { seq: cp.seq, head: cp.head, at: cp.at },
          "the status document holds a signed checkpoint this database lacks: database restored from an earlier copy, or checkpoints deleted; kept as a witness for verify-journal",
        );
      }
    }
    this.lastCheckpoint = await latestSignedCheckpoint(c, this.opts.team);
    if (this.lastCheckpoint && (typeof cp === "string" || cp === undefined || cp.sig !== this.lastCheckpoint.sig)) {
      // Only when it is newer than what devices hold (a witness of a later head stays published).
      if (cp === undefined || typeof cp === "string" || cp.seq < this.lastCheckpoint.seq) this.publishCheckpoint(this.lastCheckpoint);
    }
  }

  /**
   * Every change to a server-owned document goes through here: with a signer it carries the
   * service's statement, so devices can take it from peers (server/materializer/statements.ts).
   */
  private serverChange<T>(handle: DocHandle<T>, fn?: (d: T) => void): void {
    if (this.opts.signer) this.opts.signer.change(handle, fn);
    else if (fn) handle.change(fn);
  }

  private async writeVerdicts(segmentId: string, verdicts: Map<string, PublishedVerdict>): Promise<void> {
    // Grants come from the materializer itself, not from a segment: no verdicts document.
    if (!segmentId || segmentId === GRANT_SCOPE) return;
    const segmentUrl = `automerge:${segmentId}` as AutomergeUrl;
    let handle = this.verdictDocs.get(segmentUrl);
    if (!handle) {
      // The id is registered to the team before the document exists anywhere, so the relay
      // knows whose it is from the first sync message on.
      const url = generateAutomergeUrl();
      const { documentId } = parseAutomergeUrl(url);
      await this.opts.registry.register({ _id: documentId, team: this.opts.team, kind: "verdicts", readOnly: true, createdAt: new Date() });
      const initial: VerdictsDoc = { type: "verdicts", team: this.opts.team, segment: segmentUrl, verdicts: {} };
      handle = this.opts.repo.import<VerdictsDoc>(A.save(A.from(initial as unknown as Record<string, unknown>)), { docId: documentId });
      this.verdictDocs.set(segmentUrl, handle);
      const created = handle;
      this.serverChange(this.status, (d) => {
        d.verdicts[segmentUrl] = created.url;
      });
    }
    this.serverChange(handle, (d) => {
      for (const [id, v] of verdicts) {
        const cur = d.verdicts[id];
        if (cur && String(cur.status) === v.status && cur.seq === v.seq) continue;
        d.verdicts[id] = stored(v);
      }
    });
  }
}

function stored(v: PublishedVerdict): StoredVerdict {
  const out: StoredVerdict = { status: new A.ImmutableString(v.status), decidedAt: new A.ImmutableString(v.decidedAt) };
  if (v.reason !== undefined) out.reason = new A.ImmutableString(v.reason);
  if (v.seq !== undefined) out.seq = v.seq;
  return out;
}

function published(r: JournalRecord): PublishedVerdict {
  const v: PublishedVerdict = { status: r.status, seq: r.seq, decidedAt: r.decidedAt };
  if (r.reason !== null) v.reason = r.reason;
  return v;
}
