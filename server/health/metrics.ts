/**
 * Prometheus gauges for team health, read when scraped: the problems come from MongoDB (the
 * materializer's records) and the relay's storage, so they are collected, not kept up to date.
 */
import { Gauge, Registry } from "prom-client";
import type { TeamProblem } from "./team-health.js";

export interface HealthMetricsSource {
  problems(): Promise<TeamProblem[]>;
  corruptChunks(): number;
}

export function createHealthMetrics(src: HealthMetricsSource): Registry {
  const registry = new Registry();
  new Gauge({
    name: "ledger_team_unhealthy_since_seconds",
    help: "Unix time since which a team's document cannot be loaded (one series per team, document and source)",
    labelNames: ["team", "document", "source"],
    registers: [registry],
    async collect() {
      this.reset();
      for (const p of await src.problems()) {
        this.set({ team: p.team, document: p.document ?? "", source: p.source }, Math.floor(Date.parse(p.since) / 1000));
      }
    },
  });
  new Gauge({
    name: "ledger_teams_unhealthy",
    help: "Teams with at least one document that cannot be loaded",
    registers: [registry],
    async collect() {
      this.set(new Set((await src.problems()).map((p) => p.team)).size);
    },
  });
  new Gauge({
    name: "relay_storage_corrupt_chunks",
    help: "Damaged chunks the relay's storage refused to load since it started (empty, truncated or altered)",
    registers: [registry],
    collect() {
      this.set(src.corruptChunks());
    },
  });
  return registry;
}
