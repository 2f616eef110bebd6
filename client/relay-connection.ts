/**
 * A device's connection to the relay (one address, or several it fails over between), and what
 * it learns from it: which of the device's own entries the relay has acknowledged. Kept apart
 * from the device's documents (device.ts) so the connection policy can change without touching
 * segments, verdicts or peers.
 */
import type { AutomergeUrl, DocHandle, Repo, StorageAdapterInterface } from "@automerge/automerge-repo";
import type { LedgerSegmentDoc } from "../shared/docs.js";
import type { BackoffOptions } from "./backoff.js";
import { ClientError } from "./errors.js";
import { loadRecord, saveRecord } from "./local-records.js";
import { segmentSize } from "./read-docs.js";
import type { SocketFactory } from "./socket.js";
import { ReconnectingClientAdapter, type LinkStatus } from "./ws-client-adapter.js";

const PROGRESS_THROTTLE_MS = 200;

/** A segment of this device's own, as the device holds it (undefined handle: not loaded yet). */
export interface OwnSegment {
  url: AutomergeUrl;
  handle?: DocHandle<LedgerSegmentDoc>;
}

export interface RelayConnectionOptions {
  /** http(s):// or ws(s):// addresses of the relays of one service, tried in turn. */
  urls: readonly string[];
  /** Index of the first address dialled (spreads a shop's devices over the relays). */
  startIndex?: number;
  token: () => string;
  createSocket: SocketFactory;
  storage: StorageAdapterInterface;
  paused: boolean;
  backoff?: BackoffOptions;
  /** The repo the adapter serves (made after this connection, which is one of its networks). */
  repo: () => Repo;
  /** This device's own segments. */
  ownSegments: () => Iterable<OwnSegment>;
  onStatus: (status: LinkStatus) => void;
  /** The count of own entries not acknowledged changed. */
  onProgress: (pending: number) => void;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The relay's sync endpoint at `serverUrl`: `/sync` on it, over ws(s). */
export function syncUrl(serverUrl: string): string {
  const u = new URL(serverUrl);
  u.protocol = u.protocol === "https:" || u.protocol === "wss:" ? "wss:" : "ws:";
  u.pathname = "/sync";
  u.search = "";
  return u.toString();
}

/** How the device waits for a document: its own waits end at close, without leaving listeners behind. */
export interface DocumentWait {
  closed(): boolean;
  untilReady(handle: DocHandle<unknown>, ms: number): Promise<void>;
}

export class RelayConnection {
  readonly adapter: ReconnectingClientAdapter;
  readonly #o: RelayConnectionOptions;
  /** Own entries acknowledged, per segment URL: the most any relay session reported. */
  #acked: Record<string, number> = {};
  #progressTimer: ReturnType<typeof setTimeout> | undefined;
  #lastPending = -1;
  /** An own write came since the last progress event: the next one is sent even at an equal count. */
  #wrote = false;
  #closed = false;

  constructor(opts: RelayConnectionOptions) {
    this.#o = opts;
    const urls = opts.urls.map((u) => {
      try {
        return syncUrl(u);
      } catch {
        throw new ClientError("invalid-input", `relay address ${JSON.stringify(u)} is not a URL (expected ws://host:port/sync)`);
      }
    });
    this.adapter = new ReconnectingClientAdapter({
      url: urls,
      ...(opts.startIndex !== undefined ? { startIndex: opts.startIndex } : {}),
      token: opts.token,
      createSocket: opts.createSocket,
      paused: opts.paused,
      ...(opts.backoff ? { backoff: opts.backoff } : {}),
      onStatus: (s) => opts.onStatus(s),
    });
  }

  get online(): boolean {
    return this.adapter.online;
  }

  /** The relay's sync address in use now (or dialled next, while offline). */
  get url(): string {
    return this.adapter.url;
  }

  get lastReason(): string {
    return this.adapter.lastReason;
  }

  pause(): void {
    this.adapter.pause();
  }

  resume(): void {
    this.adapter.resume();
  }

  reconnectNow(): void {
    this.adapter.reconnectNow();
  }

  /** Acknowledgement counts remembered from the last run. */
  async load(): Promise<void> {
    const acked = await loadRecord(this.#o.storage, "acked");
    if (typeof acked === "object" && acked !== null) {
      for (const [k, v] of Object.entries(acked)) if (Number.isSafeInteger(v)) this.#acked[k] = v as number;
    }
  }

  /** Entries of this own segment the relay has acknowledged (the most any session reported). */
  acked(url: string): number {
    return this.#acked[url] ?? 0;
  }

  /**
   * A progress event within the throttle. `wrote`: an own entry was recorded. The last count
   * reported can be stale (acknowledgements of a segment no longer followed send no event), so
   * after writes the count is reported even when it equals that one (seen: five offline sales
   * made within one throttle window after five acknowledged ones, and no event said 5).
   */
  scheduleProgress(wrote = false): void {
    if (wrote) this.#wrote = true;
    if (this.#progressTimer || this.#closed) return;
    this.#progressTimer = setTimeout(() => {
      this.#progressTimer = undefined;
      if (this.#closed) return;
      const pending = this.pendingCount();
      if (pending !== this.#lastPending || this.#wrote) {
        this.#wrote = false;
        this.#lastPending = pending;
        this.#o.onProgress(pending);
        void saveRecord(this.#o.storage, "acked", this.#acked).catch(() => undefined);
      }
    }, PROGRESS_THROTTLE_MS);
  }

  /**
   * Own entries the relay has not acknowledged. The relay answers only with what it has saved
   * (server/relay/durable-outbox.ts), so the heads it reports are durable there. Counts are
   * remembered across restarts: after an offline restart the relay's heads are unknown until
   * it is reached again. After a failover the counts stay those of the relay that acknowledged
   * them: what it saved is in the database it shares with the others, or on its disk until it
   * comes back and its links pass it on.
   */
  pendingCount(): number {
    const relayPeer = this.adapter.remotePeerId;
    const repo = this.#o.repo();
    const storageId = relayPeer ? repo.getStorageIdOfPeer(relayPeer) : undefined;
    let pending = 0;
    for (const seg of this.#o.ownSegments()) {
      if (!seg.handle) continue;
      const doc = seg.handle.doc();
      const size = segmentSize(doc);
      const info = storageId ? seg.handle.getSyncInfo(storageId) : undefined;
      if (info) {
        const heads = seg.handle.heads();
        let acked: number | undefined;
        if (info.lastHeads.length === heads.length && info.lastHeads.every((h) => heads.includes(h))) acked = size;
        else {
          try {
            acked = segmentSize(seg.handle.view(info.lastHeads).doc());
          } catch {
            acked = undefined;
          }
        }
        if (acked !== undefined && acked >= (this.#acked[seg.url] ?? 0)) this.#acked[seg.url] = acked;
      }
      pending += Math.max(0, size - (this.#acked[seg.url] ?? 0));
    }
    return pending;
  }

  /** Resolves when the relay has acknowledged every own entry (or rejects at the deadline). */
  async whenSynced(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.pendingCount() > 0) {
      if (Date.now() > deadline) throw new Error(`still ${this.pendingCount()} entries not on the relay after ${timeoutMs} ms`);
      await sleep(100);
    }
  }

  /**
   * find() right after connecting can report a document unavailable while the relay is still
   * loading it (AUTOMERGE-NOTES.md): wait for the relay session first, and re-ask on a new
   * session until the deadline. While the relay has not answered at all, each wait is twice the
   * last (2 s to 30 s): a relay busy with a large team answers late, and reconnecting every 2 s
   * would only restart the wait. An answer of "unavailable" is asked again after 2 s.
   */
  async fetch(url: AutomergeUrl, deadline: number, wait: DocumentWait): Promise<DocHandle<unknown>> {
    const repo = this.#o.repo();
    let waitMs = 2000;
    while (Date.now() < deadline) {
      if (wait.closed()) throw new ClientError("closed", "device closed");
      if (!this.online) {
        await sleep(100);
        continue;
      }
      const handle = await repo.find<unknown>(url, { allowableStates: ["ready", "unavailable", "requesting"] });
      if (handle.isReady()) return handle;
      await wait.untilReady(handle, Math.min(waitMs, Math.max(0, deadline - Date.now()))).catch(() => undefined);
      if (handle.isReady()) return handle;
      waitMs = handle.inState(["unavailable"]) ? 2000 : Math.min(waitMs * 2, 30_000);
      this.reconnectNow();
    }
    throw new ClientError("not-enrolled", `could not fetch ${url} from the relay: ${this.lastReason}`);
  }

  /** Stops the progress timer and saves the counts (best effort: rebuilt on the next session). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#progressTimer) clearTimeout(this.#progressTimer);
    try {
      this.pendingCount();
      await saveRecord(this.#o.storage, "acked", this.#acked);
    } catch {
      // Best effort: the counts are rebuilt on the next relay session.
    }
  }
}
