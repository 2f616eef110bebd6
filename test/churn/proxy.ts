/**
 * A TCP proxy between the devices and the relay that the chaos driver can cut: a graceful close
 * (FIN both ways, what a relay or NAT closing the connection looks like) or a reset (RST, what a
 * dropped Wi-Fi or a killed middlebox looks like). Cutting here, outside the relay, keeps the
 * relay's code untouched and lets both ends see exactly what a network would show them.
 */
import net from "node:net";

export type CutKind = "close" | "reset";

interface Pair {
  client: net.Socket;
  upstream: net.Socket;
}

export class ChaosProxy {
  readonly #server: net.Server;
  readonly #pairs = new Set<Pair>();
  #port = 0;
  /** Connections accepted since start, for the report. */
  accepted = 0;

  constructor(
    readonly listenPort: number,
    readonly targetPort: number,
  ) {
    this.#server = net.createServer((client) => this.#accept(client));
    this.#server.on("error", () => undefined);
  }

  get port(): number {
    return this.#port;
  }

  get open(): number {
    return this.#pairs.size;
  }

  start(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(this.listenPort, "127.0.0.1", () => {
        this.#port = (this.#server.address() as net.AddressInfo).port;
        resolve(this.#port);
      });
    });
  }

  #accept(client: net.Socket): void {
    this.accepted += 1;
    const upstream = net.connect(this.targetPort, "127.0.0.1");
    const pair: Pair = { client, upstream };
    this.#pairs.add(pair);
    const end = (): void => {
      if (!this.#pairs.delete(pair)) return;
      client.destroy();
      upstream.destroy();
    };
    // Either side failing (relay down, reset by the relay's death) ends both, like a real path.
    client.on("error", end);
    upstream.on("error", end);
    client.on("close", end);
    upstream.on("close", end);
    client.pipe(upstream);
    upstream.pipe(client);
  }

  /** Cuts one random live connection; false when there is none. */
  cut(kind: CutKind, random: () => number = Math.random): boolean {
    const pairs = [...this.#pairs];
    if (pairs.length === 0) return false;
    const pair = pairs[Math.floor(random() * pairs.length)] as Pair;
    this.#pairs.delete(pair);
    if (kind === "reset") {
      pair.client.resetAndDestroy();
      pair.upstream.resetAndDestroy();
    } else {
      pair.client.end();
      pair.upstream.end();
      // A peer that ignores the FIN must not keep the pair alive.
      setTimeout(() => {
        pair.client.destroy();
        pair.upstream.destroy();
      }, 1_000).unref();
    }
    return true;
  }

  async close(): Promise<void> {
    for (const p of this.#pairs) {
      p.client.destroy();
      p.upstream.destroy();
    }
    this.#pairs.clear();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
