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
  /** Sessions whose reading was paused because their messages awaiting checks went over a bound. */
  backpressure: Counter;
  /** Registers the source of the held-for-peers gauges (the adapter, once it exists). */
  observeHeld(source: () => HeldForPeers): void;
}

/** What the relay holds on behalf of peers, for the gauges below. */
export interface HeldForPeers {
  queuedBytes: number;
  pendingRequests: number;
  pendingRequestBytes: number;
  pendingRequestsDropped: number;
}

export function createRelayMetrics(documentsLoaded: () => number): RelayMetrics {
  const registry = new Registry();
  let held: () => HeldForPeers = () => ({ queuedBytes: 0, pendingRequests: 0, pendingRequestBytes: 0, pendingRequestsDropped: 0 });
  const heldGauge = (name: string, help: string, pick: (h: HeldForPeers) => number): Gauge =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(pick(held()));
      },
    });
  heldGauge("relay_queued_bytes", "Bytes of received messages waiting for their document's registration lookup", (h) => h.queuedBytes);
  heldGauge("relay_pending_requests", "Requests for unknown documents remembered to answer when they arrive", (h) => h.pendingRequests);
  heldGauge("relay_pending_request_bytes", "Estimated bytes those remembered requests hold", (h) => h.pendingRequestBytes);
  heldGauge("relay_pending_requests_dropped", "Remembered requests forgotten to stay within their bounds, since start", (h) => h.pendingRequestsDropped);
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
    backpressure: new Counter({
      name: "relay_backpressure_total",
      help: "Times a session stopped being read because its messages awaiting checks were over a bound",
      registers: [registry],
    }),
    observeHeld(source) {
      held = source;
    },
  };
}
