/**
 * The materializer: finds every team in MongoDB, first brings each team's projections up to its
 * journal (crash recovery), then follows its documents with a TeamWorker.
 */
import type { AutomergeUrl, Repo } from "@automerge/automerge-repo";
import type { ClientSession, Db, MongoClient } from "mongodb";
import type { DatabaseFeatures } from "../db/resolve.js";
import type { Logger } from "../log.js";
import { retryDelayMs, teamHealthCollection, type TeamHealthRecord } from "../health/team-health.js";
import { createDocumentRegistry } from "../relay/registry.js";
import { collections, ensureIndexes, type Collections } from "./collections.js";
import { Leases } from "./leases.js";
import { createMaterializerMetrics, type MaterializerMetrics } from "./metrics.js";
import { catchUp } from "./projections.js";
import { rebuildTeam } from "./rebuild.js";
import { TeamDocumentError, TeamWorker } from "./team-worker.js";

export interface MaterializerOptions {
  db: Db;
  client: MongoClient;
  features: DatabaseFeatures;
  repo: Repo;
  logger: Logger;
  metrics?: MaterializerMetrics;
  now?: () => string;
  /** How often the teams collection is checked for new teams. */
  teamPollMs?: number;
  deferCheckMs?: number;
  maxBatch?: number;
  /** Only these teams; all when absent or empty. */
  teams?: readonly string[];
  /** Longest wait between two start attempts of a team that fails to start. */
  maxRetryMs?: number;
  /**
   * Team leases shared with other materializer instances: a team is started only once its lease
   * is taken, renewed every third of the lease, stopped when lost. Without it every team (or
   * `teams`) is decided here, as when one instance ran alone.
   */
  leases?: Leases;
}

/** A team whose start failed: when to try again, and since when it fails. */
interface StartFailure {
  attempts: number;
  since: Date;
  nextAt: number;
}

export class Materializer {
  readonly c: Collections;
  readonly metrics: MaterializerMetrics;
  private readonly workers = new Map<string, TeamWorker>();
  private readonly starting = new Map<string, Promise<void>>();
  private readonly failures = new Map<string, StartFailure>();
  private poll: NodeJS.Timeout | null = null;
  private renewal: NodeJS.Timeout | null = null;
  private stopped = false;
  private readonly log: Logger;

  constructor(private readonly opts: MaterializerOptions) {
    this.c = collections(opts.db);
    this.metrics = opts.metrics ?? createMaterializerMetrics();
    this.log = opts.logger.child({ module: "materializer" });
  }

  async start(): Promise<void> {
    await ensureIndexes(this.c);
    this.log.info({ transactions: this.opts.features.transactions }, this.opts.features.transactions
      ? "batches run in transactions"
      : "no transactions on this server: journal-first order keeps projections recoverable");
    await this.discover();
    this.poll = setInterval(() => void this.discover().catch((err: unknown) => this.log.error({ err }, "team discovery failed")), this.opts.teamPollMs ?? 1000);
    this.poll.unref();
    const leases = this.opts.leases;
    if (leases) {
      this.renewal = setInterval(() => void this.renewLeases(leases).catch((err: unknown) => this.log.error({ err }, "lease renewal failed")), Math.max(50, Math.floor(leases.opts.leaseMs / 3)));
      this.renewal.unref();
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.poll) clearInterval(this.poll);
    if (this.renewal) clearInterval(this.renewal);
    await Promise.allSettled(this.starting.values());
    await Promise.all([...this.workers.values()].map((w) => w.stop()));
    const leases = this.opts.leases;
    if (leases) await Promise.all(leases.held().map((team) => leases.release(team).catch(() => undefined)));
  }

  /** Teams whose lease is held here. */
  teams(): string[] {
    return [...this.workers.keys()];
  }

  /** A lease lost (this process stalled past it, or the database was unreachable) stops its team here. */
  private async renewLeases(leases: Leases): Promise<void> {
    // Teams still starting too: catching up a large team can take longer than a lease.
    for (const team of leases.held()) {
      if (await leases.renew(team)) continue;
      const worker = this.workers.get(team);
      this.workers.delete(team);
      this.log.warn({ team, owner: leases.opts.owner }, "team lease lost: stopped deciding this team");
      await worker?.stop();
    }
  }

  /** Resolves when every known team has decided everything it has seen. */
  async idle(): Promise<void> {
    await Promise.allSettled(this.starting.values());
    await Promise.all([...this.workers.values()].map((w) => w.idle()));
  }

  private async discover(): Promise<void> {
    const teams = await this.opts.db.collection<{ _id: string; rootDocumentId: string }>("teams").find({}).toArray();
    for (const t of teams) {
      if (this.stopped || this.workers.has(t._id) || this.starting.has(t._id)) continue;
      if (this.opts.teams?.length && !this.opts.teams.includes(t._id)) continue;
      if ((this.failures.get(t._id)?.nextAt ?? 0) > Date.now()) continue;
      if (this.opts.leases && (await this.opts.leases.acquire(t._id)) === null) continue;
      if (this.stopped || this.starting.has(t._id)) continue;
      const p = this.startTeam(t._id, `automerge:${t.rootDocumentId}` as AutomergeUrl)
        .then(
          () => this.startSucceeded(t._id),
          async (err: unknown) => {
            // Another instance may do better (or fail the same way and record it).
            await this.opts.leases?.release(t._id);
            await this.startFailed(t._id, err);
          },
        )
        .catch((err: unknown) => this.log.error({ err, team: t._id }, "could not record the team's health"))
        .finally(() => this.starting.delete(t._id));
      this.starting.set(t._id, p);
    }
  }

  /** One log line per attempt, ever further apart, and the team's health record for the service. */
  private async startFailed(team: string, err: unknown): Promise<void> {
    const before = this.failures.get(team);
    const attempts = (before?.attempts ?? 0) + 1;
    const since = before?.since ?? new Date();
    const retryInMs = retryDelayMs(attempts, this.opts.maxRetryMs);
    this.failures.set(team, { attempts, since, nextAt: Date.now() + retryInMs });
    const doc = err instanceof TeamDocumentError ? { document: err.documentId, role: err.role, reason: err.reason } : { document: null, role: null, reason: err instanceof Error ? err.message : String(err) };
    this.log.error({ team, attempt: attempts, retryInMs, ...doc, ...(err instanceof TeamDocumentError ? {} : { err }) }, "team start failed; retrying later");
    const now = new Date();
    const record: Omit<TeamHealthRecord, "_id"> = { ...doc, since, attempts, lastAttemptAt: now, nextAttemptAt: new Date(now.getTime() + retryInMs) };
    await teamHealthCollection(this.opts.db).replaceOne({ _id: team }, record, { upsert: true });
  }

  private async startSucceeded(team: string): Promise<void> {
    const before = this.failures.get(team);
    this.failures.delete(team);
    if (before) this.log.info({ team, attempts: before.attempts, failingSince: before.since.toISOString() }, "team started after failed attempts");
    // Also clears a record a previous run of the materializer left.
    await teamHealthCollection(this.opts.db).deleteOne({ _id: team });
  }

  private async startTeam(team: string, rootUrl: AutomergeUrl): Promise<void> {
    const read = { pointLookups: !this.opts.features.indexedQueries };
    const leases = this.opts.leases;
    const state = await this.c.teamState.findOne({ _id: team });
    let caughtUp: number;
    if (state && state.projectedSeq > 0 && state.aggregates !== "parts") {
      this.log.warn({ team, projectedSeq: state.projectedSeq }, "projections predate aggregate parts: rebuilding them from the journal");
      caughtUp = await rebuildTeam(this.c, team, undefined, read);
    } else {
      caughtUp = await catchUp(this.c, team, 2000, undefined, read);
    }
    const worker = new TeamWorker({
      team,
      rootUrl,
      repo: this.opts.repo,
      ctx: { c: this.c, client: this.opts.client, transactions: this.opts.features.transactions,
        heads: new Map(),
        decidedIds: new Map(),
        pointLookups: !this.opts.features.indexedQueries,
        ...(leases ? { fence: (t: string, session?: ClientSession) => leases.check(t, session) } : {}),
      },
      registry: createDocumentRegistry(this.opts.db),
      logger: this.opts.logger,
      metrics: this.metrics,
      ...(this.opts.now ? { now: this.opts.now } : {}),
      ...(this.opts.deferCheckMs ? { deferCheckMs: this.opts.deferCheckMs } : {}),
      ...(this.opts.maxBatch ? { maxBatch: this.opts.maxBatch } : {}),
    });
    await worker.start();
    if (this.stopped) {
      await worker.stop();
      return;
    }
    this.workers.set(team, worker);
    this.log.info({ team, projectedSeq: caughtUp, lease: this.opts.leases?.tokenOf(team) ?? null }, "team materializing");
  }
}
