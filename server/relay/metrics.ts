/** Prometheus metrics of the relay, on a Registry of its own (several services may share a process in tests). */
import { Counter, Gauge, Registry, collectDefaultMetrics } from "prom-client";

export interface RelayMetrics {
  registry: Registry;
  connections: Gauge;
  connectionsTotal: Counter;
  messages: Counter<"direction" | "type">;
  bytes: Counter<"direction">;
  refusals: Counter<"reason">;
  documentsLoaded: Gauge;
}

export function createRelayMetrics(documentsLoaded: () => number): RelayMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "relay_" });
  return {
    registry,
    connections: new Gauge({ name: "relay_connections", help: "Open WebSocket sessions", registers: [registry] }),
    connectionsTotal: new Counter({ name: "relay_connections_total", help: "Accepted WebSocket sessions", registers: [registry] }),
    messages: new Counter({
      name: "relay_messages_total",
      help: "Sync protocol messages by direction and type",
      labelNames: ["direction", "type"],
      registers: [registry],
    }),
    bytes: new Counter({ name: "relay_bytes_total", help: "WebSocket payload bytes", labelNames: ["direction"], registers: [registry] }),
    refusals: new Counter({
      name: "relay_refusals_total",
      help: "Refused handshakes, messages and sessions by reason",
      labelNames: ["reason"],
      registers: [registry],
    }),
    documentsLoaded: new Gauge({
      name: "relay_documents_loaded",
      help: "Documents held in memory by the relay's Repo",
      registers: [registry],
      collect() {
        this.set(documentsLoaded());
      },
    }),
  };
}
