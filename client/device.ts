/**
 * A device of a team: the team's documents in a local Repo, writes that never wait for a network,
 * and sync with the relay and with peers whenever a path exists. Platform-neutral: storage and
 * sockets come in through `Platform` (client/node.ts makes the Node one).
 */
import {
  Repo,
  type AutomergeUrl,
  type DocHandle,
  type PeerId,
  type StorageAdapterInterface,
} from "@automerge/automerge-repo";
import type { CatalogDoc, LedgerSegmentDoc, PublishedInvoice, PublishedVerdict, SegmentRegistryDoc, VerdictStatus } from "../shared/docs.js";
import type { Claims } from "../shared/auth/claims.js";
import {
  foldEffects,
  type InvoiceRecord,
  type Item,
  type LedgerEntry,
  type PaymentEntry,
  type SaleEntry,
  type Projection,
} from "../shared/domain/index.js";
import type { BackoffOptions } from "./backoff.js";
import { CatalogEditor, readCatalog, type CatalogView } from "./catalog.js";
import { catalogConflicts, type CatalogConflict } from "./catalog-conflicts.js";
import { Emitter } from "./emitter.js";
import {
  buildPayment,
  buildSale,
  buildStock,
  buildVoid,
  toDocValue,
  type CheckContext,
  type CheckedEntry,
  type PaymentInput,
  type SaleInput,
  type StockInput,
  type VoidInput,
} from "./entries.js";
import { AllowanceDesk, IDLE_RETURN_MS, type AllowanceView, type AtRiskLine } from "./allowances.js";
import { ClientError } from "./errors.js";
import { loadRecord, saveRecord } from "./local-records.js";
import { keepCheckpoint, readKeptCheckpoints } from "./checkpoints.js";
import type { Checkpoint } from "../shared/checkpoint.js";
import { provisionalOf, type Provisional } from "./provisional.js";
import { readRoot, segmentSize, type StatusView, type TeamRefs } from "./read-docs.js";
import { changeSafely, recoverIfWedged, type WedgeRecovery } from "./safe-change.js";
import { SegmentSet } from "./segment-set.js";
import type { SocketFactory } from "./socket.js";
import { ServerDocuments } from "./server-docs.js";
import type { DroppedMessage } from "./statements.js";
import type { PeerIdentity } from "./peer/handshake.js";
import { PeerLinks, type PeerAccess } from "./peer/links.js";
import type { PeerPlatform } from "./peer/types.js";
import { readOwnClaims } from "./token.js";
import { DEFAULT_HISTORY_DAYS } from "./working-set.js";
import type { LinkStatus } from "./ws-client-adapter.js";
import { RelayConnection, type DocumentWait } from "./relay-connection.js";

/** What differs between Node and a browser. */
export interface Platform {
  storage: StorageAdapterInterface;
  /** Sockets to the relay. */
  relaySocket: SocketFactory;
  /** Peer-to-peer links: raw sockets, a listener, the device key's store (client/peer/). */
  peer?: PeerPlatform;
}

export interface DeviceOptions {
  /** http(s):// address of the relay; the WebSocket endpoint is `/sync` on it. */
  serverUrl: string;
  /**
   * Every relay of the service, when there are several (serverUrl is then not dialled): the
   * device stays on one while it works, moves to the next when it dies, and asks the one it is
   * on for its peer certificate. Without it, serverUrl is the one relay.
   */
  relayUrls?: readonly string[];
  /** Index in relayUrls of the relay tried first (default 0): spreads a shop's devices. */
  relayIndex?: number;
  /** The device's token, or a function returning the current one (refreshed tokens). */
  token: string | (() => string);
  /** The team root URL from enrollment; needed only the first time. */
  rootUrl?: AutomergeUrl;
  /** Must equal the token's `device` claim when it has one. */
  deviceId: string;
  platform: Platform;
  /**
   * PEM public key that signs the team's tokens and certificates, from enrolment: when given, a
   * device certificate signed by another key is refused (kept after enrollment).
   */
  publicKeyPem?: string;
  /** Start without connecting to the relay (goOnline() later). */
  offline?: boolean;
  /** How long enrollment waits for the relay. */
  enrollTimeoutMs?: number;
  /** Entries per segment before rotating; defaults to SEGMENT_MAX_ENTRIES. */
  segmentMaxEntries?: number;
  /**
   * Days of the team's ledger held (today included) beyond own segments, undecided ones and open
   * invoices' (client/working-set.ts); older history comes with `fetchHistory()`. Default 2.
   */
  historyDays?: number;
  /** Clock, for tests of monthly rotation. */
  now?: () => Date;
  backoff?: BackoffOptions;
}

export type EntryStatus = "undecided" | VerdictStatus;

export interface DeviceEvents {
  /** A relay session began; `url`: that relay's sync address (which one, after a failover). */
  online: (e: { remotePeerId: string; url: string }) => void;
  offline: (e: { reason: string; retryInMs: number | null }) => void;
  /** Own entries the relay has not acknowledged yet. */
  progress: (e: { pending: number }) => void;
  verdict: (e: { entryId: string; verdict: PublishedVerdict }) => void;
  peer: (e: { address: string; status: LinkStatus }) => void;
  /** A peer proved itself (certificate and key); `address` is the dialled URL or the remote socket. */
  "peer-authenticated": (e: { address: string; peer: PeerIdentity }) => void;
  /** A link was refused or failed in its handshake; the precise reason stays on this device. */
  "peer-refused": (e: { address: string; reason: string }) => void;
  /** A wedged document handle was recovered (see safe-change.ts). */
  recovered: (e: { documentId: string }) => void;
  /** A peer's change to a server-owned document was refused (client/statements.ts). */
  dropped: (e: DroppedMessage) => void;
}

export interface InvoiceView {
  id: string;
  sale: SaleEntry;
  /** The server's verdict when this device has it, else undefined. */
  verdict?: PublishedVerdict;
  /** Open balance from the status document, when the invoice is open there. */
  authoritative?: PublishedInvoice;
  /** Provisional record (authoritative plus every undecided entry held here), when known. */
  provisional?: InvoiceRecord;
}

interface Enrollment {
  rootUrl: AutomergeUrl;
  team: string;
  catalog: AutomergeUrl;
  registry: AutomergeUrl;
  status: AutomergeUrl;
  publicKeyPem?: string;
}

const DEFAULT_ENROLL_TIMEOUT_MS = 30_000;
const OWN_SEGMENTS_LOAD_MS = 10_000;
/** Registry changes come in bursts (a team mate rotating, a sync of many segments): one refresh per burst. */
const REFRESH_THROTTLE_MS = 200;
/** How often held documents are probed for the failed-send wedge (safe-change.ts `isWedged`). */
const WEDGE_CHECK_MS = 5_000;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export class Device extends Emitter<DeviceEvents> {
  readonly deviceId: string;
  readonly claims: Claims;
  readonly repo: Repo;
  readonly #opts: DeviceOptions;
  readonly #relay: RelayConnection;
  readonly #token: () => string;
  #refs!: TeamRefs;
  #root!: DocHandle<unknown>;
  #allowances!: AllowanceDesk;
  #enrollment!: Enrollment;
  #registry!: DocHandle<SegmentRegistryDoc>;
  #catalog!: DocHandle<CatalogDoc>;
  #status!: DocHandle<unknown>;
  /** The segments of the working set this device holds (segment-set.ts). */
  #segmentSet: SegmentSet | undefined;
  /** Status, verdicts and the peer filter (server-docs.ts). */
  #server: ServerDocuments | undefined;
  #writeQueue: Promise<unknown> = Promise.resolve();
  #provisional: Provisional | undefined;
  #refreshTimer: ReturnType<typeof setTimeout> | undefined;
  #wedgeTimer: ReturnType<typeof setInterval> | undefined;
  #allowanceTimer: ReturnType<typeof setInterval> | undefined;
  #closed = false;
  /** The document waits under way, one signal each (#untilReady), aborted at close. */
  readonly #openWaits = new Set<AbortController>();
  readonly #links: PeerLinks;
  readonly #unsubscribe: Array<() => void> = [];
  readonly #recovery: WedgeRecovery;
  #catalogEditor!: CatalogEditor;
  /** Signed journal checkpoints seen in the status document, kept for auditors (checkpoints.ts). */
  #checkpoints: Checkpoint[] = [];

  private constructor(opts: DeviceOptions, claims: Claims) {
    super();
    this.#opts = opts;
    this.claims = claims;
    this.deviceId = opts.deviceId;
    this.#token = typeof opts.token === "function" ? opts.token : () => opts.token as string;
    this.#relay = new RelayConnection({
      urls: opts.relayUrls && opts.relayUrls.length > 0 ? opts.relayUrls : [opts.serverUrl],
      ...(opts.relayIndex !== undefined ? { startIndex: opts.relayIndex } : {}),
      token: this.#token,
      createSocket: opts.platform.relaySocket,
      storage: opts.platform.storage,
      paused: opts.offline ?? false,
      ...(opts.backoff ? { backoff: opts.backoff } : {}),
      repo: () => this.repo,
      ownSegments: () => this.#ownSegmentSlots(),
      onStatus: (s) => this.#onRelayStatus(s),
      onProgress: (pending) => this.emit("progress", { pending }),
    });
    this.repo = new Repo({
      storage: opts.platform.storage,
      network: [this.#relay.adapter],
      peerId: `device-${opts.deviceId}-${globalThis.crypto.randomUUID().slice(0, 8)}` as PeerId,
    });
    this.#links = new PeerLinks({
      repo: this.repo,
      platform: opts.platform.peer,
      storage: opts.platform.storage,
      deviceId: opts.deviceId,
      team: claims.team,
      token: this.#token,
      serverUrl: opts.relayUrls && opts.relayUrls.length > 0 ? () => this.#relay.url : opts.serverUrl,
      pinnedPublicKeyPem: () => this.#enrollment?.publicKeyPem ?? opts.publicKeyPem,
      ...(opts.backoff ? { backoff: opts.backoff } : {}),
      events: {
        status: (address, status) => this.emit("peer", { address, status }),
        authenticated: (address, peer) => this.emit("peer-authenticated", { address, peer }),
        refused: (address, reason) => this.emit("peer-refused", { address, reason }),
      },
      guard: (adapter) => this.#serverDocs.guardPeer(adapter),
    });
    this.#recovery = {
      onRecovered: (documentId) => {
        // The sync states of the failed exchange describe a document we no longer hold: start
        // every outgoing session afresh so the peers resend what the recovery dropped.
        this.#relay.reconnectNow();
        this.#links.reconnectAll();
        this.emit("recovered", { documentId });
      },
    };
  }

  /** Opens a device: from local storage when enrolled, else by fetching the team's documents once. */
  static async open(opts: DeviceOptions): Promise<Device> {
    const token = typeof opts.token === "function" ? opts.token() : opts.token;
    const claims = readOwnClaims(token);
    if (claims.device !== undefined && claims.device !== opts.deviceId) {
      throw new ClientError("bad-token", `token is for device ${claims.device}, not ${opts.deviceId}`);
    }
    if (claims.role !== "member" && claims.role !== "admin") {
      throw new ClientError("bad-token", `a device needs a member or admin token, not ${claims.role}`);
    }
    const device = new Device(opts, claims);
    try {
      await device.#start();
    } catch (err) {
      await device.close();
      throw err;
    }
    return device;
  }

  // ---- start ----

  async #start(): Promise<void> {
    const stored = await loadRecord(this.#opts.platform.storage, "enrollment");
    const enrollment = isEnrollment(stored) ? stored : await this.#enroll();
    if (this.#opts.rootUrl && this.#opts.rootUrl !== enrollment.rootUrl) {
      throw new ClientError("bad-document", `this data folder is enrolled in ${enrollment.rootUrl}, not ${this.#opts.rootUrl}`);
    }
    if (this.#opts.publicKeyPem && enrollment.publicKeyPem !== this.#opts.publicKeyPem) {
      enrollment.publicKeyPem = this.#opts.publicKeyPem;
      await saveRecord(this.#opts.platform.storage, "enrollment", enrollment);
    }
    this.#enrollment = enrollment;
    this.#server = new ServerDocuments({
      repo: this.repo,
      rootUrl: enrollment.rootUrl,
      statusUrl: enrollment.status,
      publicKeyPem: enrollment.publicKeyPem,
      whenReady: (handle) => this.#whenReadyWhileOpen(handle),
      onDrop: (drop) => this.emit("dropped", drop),
      onVerdict: (entryId, verdict) => this.emit("verdict", { entryId, verdict }),
      onChange: () => {
        this.#provisional = undefined;
        // Verdicts settle own segments, which may then leave the working set.
        this.#scheduleRefresh();
      },
    });
    await this.#links.load();
    if (this.#relay.online) this.#links.renewIfDue();
    const root = await this.repo.find(enrollment.rootUrl);
    const refs = readRoot(root.doc());
    if (typeof refs === "string") throw new ClientError("bad-document", refs);
    if (refs.team !== this.claims.team) throw new ClientError("bad-token", `token is for team ${this.claims.team}, root is ${refs.team}`);
    this.#refs = refs;
    this.#root = root;
    this.#allowances = new AllowanceDesk({
      device: this.deviceId,
      // Read at each sale: an admin may put items under the policy while the device runs.
      policy: () => {
        const now = readRoot(this.#root.doc());
        return typeof now === "string" ? this.#refs.settings.allowances : now.settings.allowances;
      },
      published: () => this.#statusView(),
      ownEntries: () => this.entries().filter((e) => e.device === this.deviceId),
      verdict: (id) => this.#verdictOf(id),
    });
    this.#registry = await this.repo.find<SegmentRegistryDoc>(refs.registry);
    this.#catalog = await this.repo.find<CatalogDoc>(refs.catalog);
    this.#status = await this.repo.find<unknown>(refs.status);
    this.#server.addMember(this.#registry.documentId);
    this.#server.addMember(this.#catalog.documentId);
    this.#catalogEditor = new CatalogEditor(this.#catalog, this.#recovery, (ids) => this.repo.flush(ids), this.deviceId);
    this.#checkpoints = readKeptCheckpoints(await loadRecord(this.#opts.platform.storage, "checkpoints"));
    await this.#relay.load();

    this.#segmentSet = new SegmentSet({
      repo: this.repo,
      storage: this.#opts.platform.storage,
      deviceId: this.deviceId,
      team: refs.team,
      registry: this.#registry,
      recovery: this.#recovery,
      ...(this.#opts.segmentMaxEntries !== undefined ? { segmentMaxEntries: this.#opts.segmentMaxEntries } : {}),
      historyDays: this.#opts.historyDays ?? DEFAULT_HISTORY_DAYS,
      today: () => (this.#opts.now?.() ?? new Date()).toISOString().slice(0, 10),
      status: () => this.#statusView(),
      addMember: (documentId) => this.#serverDocs.addMember(documentId),
      whenReady: (handle) => this.#whenReadyWhileOpen(handle),
      settled: (url, ids) =>
        this.#relay.acked(url) >= ids.length && ids.every((id) => {
          const v = this.#verdictOf(id);
          return v !== undefined && v.status !== "deferred";
        }),
      onHeld: () => {
        this.#provisional = undefined;
        this.#followVerdicts();
        // A segment counted from now on (or no more) changes the pending count with no write or
        // acknowledgement to say so.
        this.#relay.scheduleProgress(true);
      },
      onChange: () => (this.#provisional = undefined),
      onRemoteHeads: () => this.#relay.scheduleProgress(),
      onEvicted: (url) => this.#serverDocs.unfollow(url),
    });
    await this.#segmentSet.loadSettled();
    this.#watch(this.#registry, () => void this.#segments.refresh());
    this.#watch(this.#catalog, () => (this.#provisional = undefined));
    this.#watch(this.#status, () => this.#onStatus());
    await this.#segments.openCurrent();
    // Own segments are in local storage: have them all before the first read or write. The bound
    // only matters if storage lost one (it would then wait for a peer that may never come).
    await Promise.race([Promise.all(this.#segments.refresh()), sleep(OWN_SEGMENTS_LOAD_MS)]);
    this.#onStatus();
    this.#relay.scheduleProgress();
    this.#wedgeTimer = setInterval(() => this.#recoverWedged(), WEDGE_CHECK_MS);
    // Idle allowances flow back while online, where the server can hand them to busier tills.
    this.#allowanceTimer = setInterval(() => {
      if (this.online) void this.returnIdleAllowances().catch(() => undefined);
    }, 60_000);
    this.#allowanceTimer.unref?.();
  }

  /**
   * Writes recover their own document (changeSafely); this finds the ones nobody writes here,
   * whose wedge would otherwise only show as verdicts and others' entries no longer arriving.
   */
  #recoverWedged(): void {
    if (this.#closed) return;
    const handles: Array<DocHandle<unknown>> = [this.#registry, this.#catalog, this.#status, ...this.#serverDocs.verdictHandles()] as Array<DocHandle<unknown>>;
    for (const seg of this.#segmentSet?.segments() ?? []) if (seg.handle) handles.push(seg.handle as DocHandle<unknown>);
    for (const handle of handles) {
      try {
        recoverIfWedged(handle, this.#recovery);
      } catch {
        // A handle unloaded or deleted meanwhile: nothing to recover, the next round looks again.
      }
    }
  }

  /** First start: wait for the relay, fetch root, registry, catalog and status, remember them. */
  async #enroll(): Promise<Enrollment> {
    const rootUrl = this.#opts.rootUrl;
    if (!rootUrl) throw new ClientError("not-enrolled", "this device is not enrolled: give the team's root URL and reach the relay once");
    if (this.#opts.offline) throw new ClientError("not-enrolled", "this device is not enrolled yet and was started offline");
    const deadline = Date.now() + (this.#opts.enrollTimeoutMs ?? DEFAULT_ENROLL_TIMEOUT_MS);
    const root = await this.#relay.fetch(rootUrl, deadline, this.#documentWait);
    const refs = readRoot(root.doc());
    if (typeof refs === "string") throw new ClientError("bad-document", refs);
    for (const u of [refs.registry, refs.catalog, refs.status]) await this.#relay.fetch(u, deadline, this.#documentWait);
    await this.repo.flush();
    const enrollment: Enrollment = {
      rootUrl, team: refs.team, catalog: refs.catalog, registry: refs.registry, status: refs.status,
      ...(this.#opts.publicKeyPem ? { publicKeyPem: this.#opts.publicKeyPem } : {}),
    };
    await saveRecord(this.#opts.platform.storage, "enrollment", enrollment);
    return enrollment;
  }

  #watch(handle: DocHandle<unknown> | DocHandle<SegmentRegistryDoc> | DocHandle<CatalogDoc>, fn: () => void): void {
    const listener = (): void => {
      if (!this.#closed) fn();
    };
    (handle as DocHandle<unknown>).on("change", listener);
    this.#unsubscribe.push(() => (handle as DocHandle<unknown>).off("change", listener));
  }

  /**
   * automerge-repo gives up waiting for a document after 60 s, but a relay busy with a large team
   * can take longer to send it (measured: a new device asking for 200 documents of a
   * 100,000-entry team at once), and it still sends it when it can. Until then, and while this
   * device is open, keep waiting: a document given up on here would never be held.
   */
  readonly #documentWait: DocumentWait = {
    closed: () => this.#closed,
    untilReady: (handle, ms) => this.#untilReady(handle, ms),
  };

  async #whenReadyWhileOpen(handle: DocHandle<unknown> | DocHandle<LedgerSegmentDoc>): Promise<boolean> {
    while (!this.#closed && !handle.isReady()) {
      if (handle.isDeleted()) return false;
      await this.#untilReady(handle).catch(() => sleep(1000));
    }
    return !this.#closed;
  }

  /**
   * Until the handle is ready, `ms` have passed, or the device closes; rejects when automerge-repo
   * gives up (its own timeout). Each wait has its own signal, aborted when the wait ends: a wait
   * that lost a race to the timer would otherwise keep its listener (on a signal shared by every
   * wait) for automerge-repo's two minutes, and they piled up (MaxListenersExceededWarning).
   */
  async #untilReady(handle: DocHandle<unknown> | DocHandle<LedgerSegmentDoc>, ms?: number): Promise<void> {
    if (this.#closed) return;
    const wait = new AbortController();
    this.#openWaits.add(wait);
    let timer: NodeJS.Timeout | undefined;
    try {
      const ready = handle.whenReady(["ready"], { signal: wait.signal });
      ready.catch(() => undefined); // ends with the abort below when the timer or the close comes first
      await (ms === undefined ? ready : Promise.race([ready, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]));
    } finally {
      clearTimeout(timer);
      this.#openWaits.delete(wait);
      wait.abort();
    }
  }

  get #segments(): SegmentSet {
    if (!this.#segmentSet) throw new ClientError("closed", "device not started");
    return this.#segmentSet;
  }

  // ---- verdicts and statements ----

  get #serverDocs(): ServerDocuments {
    if (!this.#server) throw new ClientError("closed", "device not started");
    return this.#server;
  }

  #statusView(): StatusView {
    return this.#serverDocs.status(this.#status);
  }

  #onStatus(): void {
    this.#provisional = undefined;
    const kept = keepCheckpoint(this.#checkpoints, this.#status.doc());
    if (kept !== this.#checkpoints) {
      this.#checkpoints = kept;
      void saveRecord(this.#opts.platform.storage, "checkpoints", kept).catch(() => undefined);
    }
    // The status moves the working set: invoices settled, days passed, segments decided.
    this.#segments.refresh();
    this.#followVerdicts();
  }

  /** Verdicts of the held segments only: history's verdicts stay on the relay with it. */
  #followVerdicts(): void {
    const segments: Array<{ url: string; own: boolean }> = [];
    for (const seg of this.#segments.segments()) segments.push({ url: seg.url, own: seg.own });
    this.#serverDocs.follow(this.#statusView(), segments);
  }

  #verdictOf(entryId: string): PublishedVerdict | undefined {
    return this.#serverDocs.verdictOf(entryId);
  }

  // ---- connectivity and progress ----

  #onRelayStatus(s: LinkStatus): void {
    // A lost session is when a reply can have been lost mid-update: look right away, but after
    // the adapter's callback returns (a recovery reconnects the adapter, which must not re-enter).
    if (this.#registry) setTimeout(() => this.#recoverWedged(), 0);
    if (s.state === "online") {
      // Peer links work offline on a certificate got while online: get or renew it now.
      this.#links.renewIfDue();
      this.emit("online", { remotePeerId: s.remotePeerId, url: s.url });
    }
    else this.emit("offline", { reason: s.reason, retryInMs: s.retryInMs });
    this.#relay.scheduleProgress();
  }

  get online(): boolean {
    return this.#relay.online;
  }

  goOffline(): void {
    this.#relay.pause();
  }

  goOnline(): void {
    this.#relay.resume();
  }

  /** The relay's sync address in use now (or dialled next, while offline). */
  get relayUrl(): string {
    return this.#relay.url;
  }

  #scheduleRefresh(): void {
    if (this.#refreshTimer || this.#closed) return;
    this.#refreshTimer = setTimeout(() => {
      this.#refreshTimer = undefined;
      if (!this.#closed) this.#segmentSet?.refresh();
    }, REFRESH_THROTTLE_MS);
  }

  /** Own entries the relay has not acknowledged (relay-connection.ts). */
  pendingCount(): number {
    return this.#relay.pendingCount();
  }

  /** Resolves when the relay has acknowledged every own entry (or rejects at the deadline). */
  whenSynced(timeoutMs = 60_000): Promise<void> {
    return this.#relay.whenSynced(timeoutMs);
  }

  *#ownSegmentSlots(): Iterable<{ url: AutomergeUrl; handle?: DocHandle<LedgerSegmentDoc> }> {
    for (const seg of this.#segmentSet?.segments() ?? []) if (seg.own) yield seg;
  }

  // ---- peer to peer (client/peer/) ----

  /** This device's peer-link key and certificate (certify, pairingCode, certificate, lastReason). */
  get peers(): PeerAccess {
    return this.#links;
  }

  /** Accepts proven devices of this team on `host:port` (the shop network's address for tablets); returns the port. */
  async listen(port = 0, host = "127.0.0.1"): Promise<number> {
    return (await this.#links.listen(port, host)).port;
  }

  /** Keeps a link to ws://host:port/ (with `#code=` or `code`: to that device only), reconnecting. */
  connectPeer(address: string, code?: string): void {
    this.#links.connect(address, code);
  }

  disconnectPeer(address: string): void {
    this.#links.disconnect(address);
  }

  peerOnline(address: string): boolean {
    return this.#links.online(address);
  }

  // ---- ledger writes ----

  #serialize<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#writeQueue.then(fn, fn);
    this.#writeQueue = run.catch(() => undefined);
    return run;
  }

  #checkContext(now: string): CheckContext {
    const prov = this.#ensureProvisional(now);
    const catalog = this.catalog();
    return {
      state: prov.state,
      settings: this.#refs.settings,
      now,
      knownInvoice: (id) => this.#findEntry(id)?.kind === "sale",
      catalogPrice: (item) => catalog.items.find((i) => i.id === item)?.price,
    };
  }

  async #write(build: (id: string, at: string, ctx: CheckContext) => CheckedEntry): Promise<LedgerEntry> {
    if (this.#closed) throw new ClientError("closed", "device closed");
    return this.#serialize(async () => {
      const at = (this.#opts.now?.() ?? new Date()).toISOString();
      const id = globalThis.crypto.randomUUID();
      const checked = build(id, at, this.#checkContext(at));
      const seg = await this.#segments.segmentFor(at);
      this.#segments.writing(() =>
        changeSafely(seg.handle, (d) => {
          d.entries[id] = toDocValue(checked.entry);
        }, this.#recovery),
      );
      seg.size += 1;
      // On disk before the caller hears "recorded": a sale must survive a crash right after.
      await this.repo.flush([seg.handle.documentId]);
      const prov = this.#provisional;
      if (prov) {
        prov.state = checked.state;
        prov.projection = foldEffects(prov.projection, checked.verdict.effects);
        prov.tentative.set(id, checked.verdict);
      }
      this.#relay.scheduleProgress(true);
      return checked.entry;
    });
  }

  #actor(): { device: string; user: string } {
    return { device: this.deviceId, user: this.claims.sub };
  }

  /**
   * Lines on items under the allowance policy take units of this device's offline allowance
   * while it lasts (`claim`): those are accepted whatever other devices sell. Lines beyond it
   * are at risk (saleAtRisk), or refused here under the team's `atRisk: "refuse"`.
   */
  recordSale(input: SaleInput): Promise<SaleEntry> {
    return this.#write((id, at, ctx) => {
      const checked = buildSale(id, at, this.#actor(), this.#allowances.plan(input).input, ctx);
      // Inside the serialized write: the next sale's claims start after these, even if this write then fails.
      this.#allowances.recorded(checked.entry);
      return checked;
    }) as Promise<SaleEntry>;
  }

  /**
   * Gives back what is left of allowances unused for `idleMs` (no own sale of the item), so the
   * server can hand the units to other tills; returns the items given back. Runs by itself every
   * minute while online with the default idle time (client/allowances.ts IDLE_RETURN_MS).
   */
  async returnIdleAllowances(idleMs = IDLE_RETURN_MS): Promise<string[]> {
    const items = this.#allowances.idle(idleMs, (this.#opts.now?.() ?? new Date()).getTime());
    for (const item of items) {
      await this.#write((id, at, ctx) => {
        const checked = this.#allowances.returnEntry(id, at, this.#actor(), item, ctx);
        this.#allowances.recorded(checked.entry);
        return checked;
      });
    }
    return items;
  }

  /** Per item under the allowance policy: allowance left, stock known, units at risk (known offline). */
  allowances(): AllowanceView[] {
    return this.#allowances.list();
  }

  /** The lines of one of this device's sales that its allowance did not cover: they may be rejected. */
  saleAtRisk(sale: SaleEntry): AtRiskLine[] {
    return this.#allowances.atRisk(sale);
  }

  recordPayment(input: PaymentInput): Promise<PaymentEntry> {
    return this.#write((id, at, ctx) => buildPayment(id, at, this.#actor(), input, ctx)) as Promise<PaymentEntry>;
  }

  recordStock(input: StockInput): Promise<LedgerEntry> {
    return this.#write((id, at, ctx) => buildStock(id, at, this.#actor(), input, ctx));
  }

  voidSale(input: VoidInput): Promise<LedgerEntry> {
    return this.#write((id, at, ctx) => buildVoid(id, at, this.#actor(), input, ctx));
  }

  // ---- catalog ----

  get catalogEditor(): CatalogEditor {
    return this.#catalogEditor;
  }

  catalog(): CatalogView {
    return readCatalog(this.#catalog.doc());
  }

  /** Catalog fields edited concurrently: the competing values and who made each. */
  conflicts(): CatalogConflict[] {
    return catalogConflicts(this.#catalog.doc());
  }

  // ---- reads ----

  /**
   * Every parsed entry of the segments this device holds: its working set of the team's ledger
   * (client/working-set.ts; `fetchHistory()` adds the rest).
   */
  entries(): LedgerEntry[] {
    return this.#segments.entries();
  }

  /**
   * How many entries this device holds, counted without parsing them: a cheap progress figure
   * while a new device pulls a large team (entries() parses every one).
   */
  heldEntryCount(): number {
    return this.#segments.entryCount();
  }

  /** Segments held here (and still loading) against those the team's registry lists: the working set's size. */
  heldSegments(): { held: number; loading: number; registered: number } {
    return this.#segments.counts();
  }

  /**
   * Older history on demand (an auditor's or a search's question): holds every segment of the
   * team, or those of the registry `keys` given, until the device closes; resolves with how many
   * are held once they are loaded, or after `timeoutMs`.
   */
  fetchHistory(opts: { keys?: readonly string[]; timeoutMs?: number } = {}): Promise<number> {
    return this.#segments.pin(opts);
  }

  ownEntries(): Array<{ entry: LedgerEntry; status: EntryStatus; reason?: string }> {
    return this.entries()
      .filter((e) => e.device === this.deviceId)
      .map((entry) => {
        const v = this.#verdictOf(entry.id);
        return v ? { entry, status: v.status, ...(v.reason ? { reason: v.reason } : {}) } : { entry, status: "undecided" as const };
      });
  }

  #findEntry(id: string): LedgerEntry | undefined {
    return this.#segments.findEntry(id);
  }

  /**
   * The server's signed journal checkpoints this device has seen, oldest first: its witness of
   * the authoritative journal, for an auditor's `verify-journal --checkpoint` (docs/AUDIT.md).
   */
  checkpoints(): Checkpoint[] {
    return this.#checkpoints.map((c) => ({ ...c }));
  }

  entryStatus(entryId: string): { status: EntryStatus; reason?: string } {
    const v = this.#verdictOf(entryId);
    if (!v) return { status: "undecided" };
    return v.reason ? { status: v.status, reason: v.reason } : { status: v.status };
  }

  #ensureProvisional(now = new Date().toISOString()): Provisional {
    if (this.#provisional) return this.#provisional;
    const status = this.#statusView();
    this.#provisional = provisionalOf({
      // A segment whose verdicts are not read yet would count its decided entries twice.
      entries: this.#segments.entries((url) => this.#serverDocs.verdictsKnown(status, url)),
      verdictOf: (id) => this.#verdictOf(id),
      status,
      items: this.catalog().items,
      settings: this.#refs.settings,
      now,
    });
    return this.#provisional;
  }

  /** Provisional figures: authoritative stock and balances plus every undecided entry held here. */
  provisional(): Projection {
    return this.#ensureProvisional().projection;
  }

  invoices(): InvoiceView[] {
    const status = this.#statusView();
    const prov = this.#ensureProvisional().projection;
    return this.entries()
      .filter((e): e is SaleEntry => e.kind === "sale")
      .map((sale) => {
        const view: InvoiceView = { id: sale.id, sale };
        const v = this.#verdictOf(sale.id);
        if (v) view.verdict = v;
        const a = status.invoices.get(sale.id);
        if (a) view.authoritative = a;
        const p = prov.invoices[sale.id];
        if (p) view.provisional = p;
        return view;
      });
  }

  payments(): PaymentEntry[] {
    return this.entries().filter((e): e is PaymentEntry => e.kind === "payment");
  }

  /** Test and diagnostics hook: the current segment number and its size. */
  currentSegment(): { n: number; size: number; url: AutomergeUrl } | undefined {
    const c = this.#segmentSet?.current();
    return c ? { n: c.n, size: c.size, url: c.handle.url } : undefined;
  }

  get rootUrl(): AutomergeUrl {
    return this.#enrollment.rootUrl;
  }

  get team(): string {
    return this.claims.team;
  }

  /** Items of the catalog, parsed. */
  items(): Item[] {
    return this.catalog().items;
  }

  // ---- shutdown ----

  /** Flushes and stops everything this device started. Safe to call twice. */
  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#writeQueue.catch(() => undefined);
    this.#closed = true;
    // Waits still open end quietly (automerge-repo prints "error waiting for ..." for any other end).
    for (const wait of this.#openWaits) wait.abort();
    if (this.#refreshTimer) clearTimeout(this.#refreshTimer);
    if (this.#wedgeTimer) clearInterval(this.#wedgeTimer);
    if (this.#allowanceTimer) clearInterval(this.#allowanceTimer);
    for (const off of this.#unsubscribe.splice(0)) off();
    this.#segmentSet?.close();
    this.#server?.close();
    await this.#relay.close();
    await this.#links.close();
    // Repo.flush (in shutdown) saves every cached handle but rejects at the first one not ready
    // (a document asked for and not found) without waiting for the others: a command line
    // process exiting next could lose what it had received (a catalog item, its allowance), seen
    // as a tablet that showed its allowance online and not offline. The ready documents are
    // saved first, to the end.
    const ready = Object.values(this.repo.handles).filter((h) => h.isReady()).map((h) => h.documentId);
    await this.repo.flush(ready).catch(() => undefined);
    try {
      await this.repo.shutdown();
    } catch {
      // A repo shutting down mid-reconnect can complain; the data is flushed per write anyway.
    }
  }
}

function isEnrollment(v: unknown): v is Enrollment {
  if (typeof v !== "object" || v === null) return false;
  const r = v as Record<string, unknown>;
  return ["rootUrl", "team", "catalog", "registry", "status"].every((k) => typeof r[k] === "string");
}
