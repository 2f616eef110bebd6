/** Prometheus metrics of the materializer (its own Registry: it may share a process in tests). */
import { Counter, Gauge, Histogram, Registry } from "prom-client";

export interface MaterializerMetrics {
  registry: Registry;
  decided: Counter<"status">;
  tampers: Counter;
  batchFailures: Counter;
  batchSize: Histogram;
  /** Seconds from a segment change being seen to its entries' verdicts being journaled. */
  lag: Histogram;
  /** Seconds from a segment change being seen to its verdicts published in the team's documents. */
  published: Histogram;
  /**
   * Seconds per stage of a batch: `wait` (oldest change seen → batch start), then the batch's
   * phases (batch.ts: load, decide, journal, publish, project, aggregate).
   */
  stage: Histogram<"stage">;
  /** Links from a team's root or status to a document not registered to that team, refused. */
  foreignDocuments: Counter<"kind">;
  /** Projection rows the team's registered catalog does not account for, as found at team start. */
  foreignRows: Gauge<"team" | "collection">;
  selfChecks: Counter;
  /** Allowance entries journaled: `grant` (the materializer's) or `return` (a device giving back), by verdict. */
  allowances: Counter<"kind" | "status">;
  /** Summaries, balances and their parts that a self-check found different from the journal (and repaired). */
  selfCheckDifferences: Counter<"kind">;
}

const LATENCY_BUCKETS = [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30];

export function createMaterializerMetrics(): MaterializerMetrics {
  const registry = new Registry();
  return {
    registry,
    decided: new Counter({ name: "materializer_entries_decided_total", help: "Entries decided, by verdict", labelNames: ["status"], registers: [registry] }),
    tampers: new Counter({ name: "materializer_tamper_events_total", help: "Decided entries seen changed", registers: [registry] }),
    batchFailures: new Counter({ name: "materializer_batch_failures_total", help: "Batches that failed and were retried", registers: [registry] }),
    batchSize: new Histogram({
      name: "materializer_batch_entries",
      help: "Entries per batch",
      buckets: [1, 5, 20, 100, 500, 2000, 5000],
      registers: [registry],
    }),
    lag: new Histogram({
      name: "materializer_verdict_lag_seconds",
      help: "From a ledger change seen to its verdict journaled",
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    published: new Histogram({
      name: "materializer_verdict_published_seconds",
      help: "From a ledger change seen to its verdicts published in the team's verdict documents",
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    stage: new Histogram({
      name: "materializer_batch_stage_seconds",
      help: "Seconds per batch stage: wait (change seen to batch start), load, decide, journal, publish, project, aggregate",
      labelNames: ["stage"],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      registers: [registry],
    }),
    foreignDocuments: new Counter({
      name: "materializer_foreign_documents_refused_total",
      help: "Linked documents refused because they are not registered to the team, by kind",
      labelNames: ["kind"],
      registers: [registry],
    }),
    foreignRows: new Gauge({
      name: "materializer_foreign_catalog_rows",
      help: "Item, group and customer rows not from the team's registered catalog (found at team start)",
      labelNames: ["team", "collection"],
      registers: [registry],
    }),
    allowances: new Counter({
      name: "materializer_allowance_entries_total",
      help: "Offline allowance entries decided: grants by the materializer, returns by devices; by verdict",
      labelNames: ["kind", "status"],
      registers: [registry],
    }),
    selfChecks: new Counter({ name: "materializer_self_checks_total", help: "Self-checks of summaries and balances against the journal", registers: [registry] }),
    selfCheckDifferences: new Counter({
      name: "materializer_self_check_differences_total",
      help: "Documents a self-check found different from the journal and repaired, by kind",
      labelNames: ["kind"],
      registers: [registry],
    }),
  };
}
