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
import { catchUp, type CatchUpReport } from "./projections.js";
import type { Anchoring } from "./anchor.js";
import { rebuildTeam } from "./rebuild.js";
import { runSelfCheck } from "./self-check.js";
import { HEARTBEAT_MS, heartbeats, type MaterializerHeartbeat, type TeamStatus } from "./readiness.js";
import { TeamDocumentError, TeamWorker } from "./team-worker.js";
import { StatementSigner } from "./statements.js";

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
  /** Self-check schedule (self-check.ts); at start always, then every `selfCheckMs` (0: never). */
  selfCheckMs?: number;
  selfCheckRecent?: number;
  /** Signed journal checkpoints (anchor.ts); the process always gives it, tests may not. */
  anchor?: Anchoring;
  /**
   * The service's ES256 private key (the token key): signs root, status and verdict documents so
   * devices can accept them from peers. Without it they are published unsigned, which devices
   * accept only from the relay.
   */
  statementKeyPem?: string;
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
  private heartbeat: NodeJS.Timeout | null = null;
  private readonly startedAt = new Date().toISOString();
  /** Teams being started or that failed to start, with the reason (for the heartbeat). */
  private readonly teamProblems = new Map<string, { state: "starting" | "failed"; error?: string }>();
  private renewal: NodeJS.Timeout | null = null;
  private stopped = false;
  private readonly log: Logger;
  /** One for every team: it remembers what it last signed per document. */
  private readonly signer: StatementSigner | undefined;

  constructor(private readonly opts: MaterializerOptions) {
    this.c = collections(opts.db);
    this.signer = opts.statementKeyPem ? new StatementSigner(opts.statementKeyPem) : undefined;
    this.metrics = opts.metrics ?? createMaterializerMetrics();
    this.log = opts.logger.child({ module: "materializer" });
  }

  async start(): Promise<void> {
    await ensureIndexes(this.c);
    this.log.info({ transactions: this.opts.features.transactions }, this.opts.features.transactions
      ? "batches run in transactions"
      : "no transactions on this server: journal-first order keeps projections recoverable");
    await this.beat();
    this.heartbeat = setInterval(() => void this.beat().catch((err: unknown) => this.log.warn({ err }, "heartbeat not written")), HEARTBEAT_MS);
    this.heartbeat.unref();
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
    if (this.heartbeat) clearInterval(this.heartbeat);
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

  /** The heartbeat `/readyz` reads (readiness.ts). */
  private async beat(): Promise<void> {
    const teams: TeamStatus[] = [];
    for (const [team, w] of this.workers) teams.push({ team, state: "ready", behindSeconds: w.behindSeconds() });
    for (const [team, p] of this.teamProblems) {
      if (!this.workers.has(team)) teams.push({ team, state: p.state, behindSeconds: 0, ...(p.error ? { error: p.error } : {}) });
    }
    const id = this.opts.teams?.length ? [...this.opts.teams].sort().join(",") : "*";
    const doc: MaterializerHeartbeat = {
      _id: id, pid: process.pid, startedAt: this.startedAt, at: new Date().toISOString(), connected: this.opts.repo.peers.length > 0, teams,
    };
    await heartbeats(this.opts.db).replaceOne({ _id: id }, doc, { upsert: true });
  }

  private async discover(): Promise<void> {
    const teams = await this.opts.db.collection<{ _id: string; rootDocumentId: string }>("teams").find({}).toArray();
    for (const t of teams) {
      if (this.stopped || this.workers.has(t._id) || this.starting.has(t._id)) continue;
      if (this.opts.teams?.length && !this.opts.teams.includes(t._id)) continue;
      if ((this.failures.get(t._id)?.nextAt ?? 0) > Date.now()) continue;
      if (this.opts.leases && (await this.opts.leases.acquire(t._id)) === null) continue;
      if (this.stopped || this.starting.has(t._id)) continue;
      if (this.teamProblems.get(t._id)?.state !== "failed") this.teamProblems.set(t._id, { state: "starting" });
      const p = this.startTeam(t._id, `automerge:${t.rootDocumentId}` as AutomergeUrl)
        .then(
          () => {
            this.teamProblems.delete(t._id);
            return this.startSucceeded(t._id);
          },
          async (err: unknown) => {
            this.teamProblems.set(t._id, { state: "failed", error: err instanceof Error ? err.message : String(err) });
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
      const report = await catchUp(this.c, team, 2000, undefined, read);
      caughtUp = report.to;
      logCatchUp(this.log, team, report);
    }
    // The first one runs as soon as the team has nothing to decide (TeamWorker), so a restart
    // decides first: it reads the team's whole journal.
    const selfCheck = async (): Promise<void> => {
      await runSelfCheck(this.c, team, { recent: this.opts.selfCheckRecent ?? 5000, read, logger: this.log, metrics: this.metrics });
    };
    const worker = new TeamWorker({
      team,
      rootUrl,
      repo: this.opts.repo,
      ctx: { c: this.c, client: this.opts.client, transactions: this.opts.features.transactions,
        heads: new Map(),
        decidedIds: new Map(),
        invoices: new Map(),
        lanes: new Map(),
        pointLookups: !this.opts.features.indexedQueries,
        ...(leases ? { fence: (t: string, session?: ClientSession) => leases.check(t, session) } : {}),
      },
      registry: createDocumentRegistry(this.opts.db),
      logger: this.opts.logger,
      metrics: this.metrics,
      ...(this.opts.now ? { now: this.opts.now } : {}),
      ...(this.opts.deferCheckMs ? { deferCheckMs: this.opts.deferCheckMs } : {}),
      ...(this.opts.maxBatch ? { maxBatch: this.opts.maxBatch } : {}),
      catchUp: async () => logCatchUp(this.log, team, await catchUp(this.c, team, 2000, undefined, read)),
      selfCheck: { run: selfCheck, everyMs: this.opts.selfCheckMs ?? 0 },
      ...(this.opts.anchor ? { anchor: this.opts.anchor } : {}),
      ...(this.signer ? { signer: this.signer } : {}),
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

/**
 * Says what a catch-up after a stop or crash did: nothing to do is debug, projections written
 * again with every aggregate already right is info, aggregates the crash had left wrong is a
 * warning with their ids.
 */
function logCatchUp(log: Logger, team: string, r: CatchUpReport): void {
  const { parts, summaries, balances } = r.repaired;
  const detail = { team, fromSeq: r.from, toSeq: r.to, records: r.records };
  if (r.records === 0) log.debug(detail, "catch-up: projections already up to the journal");
  else if (parts.length + summaries.length + balances.length === 0) log.info(detail, "catch-up: projected journal records after the last mark again; no aggregate was wrong");
  else log.warn({ ...detail, repaired: { parts, summaries, balances } }, "catch-up: repaired aggregates a crash had left behind the journal");
}
