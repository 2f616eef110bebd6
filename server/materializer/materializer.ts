/**
 * The materializer: finds every team in MongoDB, first brings each team's projections up to its
 * journal (crash recovery), then follows its documents with a TeamWorker.
 */
import type { AutomergeUrl, Repo } from "@automerge/automerge-repo";
import type { Db, MongoClient } from "mongodb";
import type { DatabaseFeatures } from "../db/resolve.js";
import type { Logger } from "../log.js";
import { createDocumentRegistry } from "../relay/registry.js";
import { collections, ensureIndexes, type Collections } from "./collections.js";
import { createMaterializerMetrics, type MaterializerMetrics } from "./metrics.js";
import { catchUp } from "./projections.js";
import { rebuildTeam } from "./rebuild.js";
import { StatementSigner } from "./statements.js";
import { TeamWorker } from "./team-worker.js";

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
  /**
   * The service's ES256 private key (the token key): signs root, status and verdict documents so
   * devices can accept them from peers. Without it they are published unsigned, which devices
   * accept only from the relay.
   */
  statementKeyPem?: string;
}

export class Materializer {
  readonly c: Collections;
  readonly metrics: MaterializerMetrics;
  private readonly workers = new Map<string, TeamWorker>();
  private readonly starting = new Map<string, Promise<void>>();
  private poll: NodeJS.Timeout | null = null;
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
    await this.discover();
    this.poll = setInterval(() => void this.discover().catch((err: unknown) => this.log.error({ err }, "team discovery failed")), this.opts.teamPollMs ?? 1000);
    this.poll.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.poll) clearInterval(this.poll);
    await Promise.allSettled(this.starting.values());
    await Promise.all([...this.workers.values()].map((w) => w.stop()));
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
      const p = this.startTeam(t._id, `automerge:${t.rootDocumentId}` as AutomergeUrl)
        .catch((err: unknown) => this.log.error({ err, team: t._id }, "team start failed; will retry"))
        .finally(() => this.starting.delete(t._id));
      this.starting.set(t._id, p);
    }
  }

  private async startTeam(team: string, rootUrl: AutomergeUrl): Promise<void> {
    const read = { pointLookups: !this.opts.features.indexedQueries };
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
      },
      registry: createDocumentRegistry(this.opts.db),
      logger: this.opts.logger,
      metrics: this.metrics,
      ...(this.opts.now ? { now: this.opts.now } : {}),
      ...(this.opts.deferCheckMs ? { deferCheckMs: this.opts.deferCheckMs } : {}),
      ...(this.opts.maxBatch ? { maxBatch: this.opts.maxBatch } : {}),
      ...(this.signer ? { signer: this.signer } : {}),
    });
    await worker.start();
    if (this.stopped) {
      await worker.stop();
      return;
    }
    this.workers.set(team, worker);
    this.log.info({ team, projectedSeq: caughtUp }, "team materializing");
  }
}
