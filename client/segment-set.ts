/**
 * The ledger segments a device holds: its own (the current one it writes, rotated when full or a
 * month old) and the others of its working set (working-set.ts), loaded as the registry and the
 * status name them, and let go of when they leave it. Older history stays on the relay and comes
 * when asked for (`pin`).
 */
import type { AutomergeUrl, DocHandle, Repo, StorageAdapterInterface } from "@automerge/automerge-repo";
import type { LedgerSegmentDoc, SegmentRegistryDoc } from "../shared/docs.js";
import { SEGMENT_MAX_ENTRIES, segmentKey } from "../shared/docs.js";
import { parseEntry, type LedgerEntry } from "../shared/domain/index.js";
import { loadRecord, saveRecord } from "./local-records.js";
import { ownSegments, readSegments, segmentCreatedAt, segmentEntries, segmentSize, type StatusView } from "./read-docs.js";
import { changeSafely, type WedgeRecovery } from "./safe-change.js";
import { documentIdOf } from "./server-docs.js";
import { workingSet } from "./working-set.js";

export interface CurrentSegment {
  n: number;
  handle: DocHandle<LedgerSegmentDoc>;
  size: number;
  month: string;
}

export interface HeldSegment {
  key: string;
  url: AutomergeUrl;
  own: boolean;
  handle?: DocHandle<LedgerSegmentDoc>;
}

export interface SegmentSetOptions {
  repo: Repo;
  storage: StorageAdapterInterface;
  deviceId: string;
  team: string;
  registry: DocHandle<SegmentRegistryDoc>;
  recovery: WedgeRecovery;
  /** Entries per segment before rotating; defaults to SEGMENT_MAX_ENTRIES. */
  segmentMaxEntries?: number;
  /** Days of others' entries held (working-set.ts). */
  historyDays: number;
  today(): string;
  /** The status as far as it can be believed. */
  status(): StatusView;
  /** Every registered segment is a member document (the peer filter carries it unchecked). */
  addMember(documentId: string): void;
  /** Resolves true once the handle is ready, false if the device closed first. */
  whenReady(handle: DocHandle<LedgerSegmentDoc>): Promise<boolean>;
  /**
   * Whether this own segment is done with: the relay acknowledged every entry of it, and the
   * device read every entry's final verdict (its clerk heard how each sale went).
   */
  settled(url: AutomergeUrl, entryIds: readonly string[]): boolean;
  /** Held segments changed (one came or went): figures and followed verdicts are stale. */
  onHeld(): void;
  /** A held segment changed by someone else's entries. */
  onChange(): void;
  /** The relay's heads of a held segment moved. */
  onRemoteHeads(): void;
  /** A segment was let go of. */
  onEvicted(url: AutomergeUrl): void;
}

function monthOf(iso: string): string {
  return iso.slice(0, 7);
}

const SETTLED_RECORD = "settled-segments";
/**
 * Others' segments load this many at a time: applying a segment's changes holds the device's
 * event loop (about a second for 1,000 entries on a busy machine), so a sale made while a new
 * device fills its working set waits for one such load, not for all of them at once.
 */
const BACKGROUND_LOADS = 1;
/** A load not done by then (a segment the relay does not have yet) goes on waiting without its slot. */
const BACKGROUND_SLOT_MS = 10_000;

export class SegmentSet {
  readonly #opts: SegmentSetOptions;
  /** Segments held or loading, by registry key. */
  readonly #held = new Map<string, HeldSegment>();
  #current: CurrentSegment | undefined;
  /** True while this device changes its own segment (the change event is its own). */
  #writing = false;
  #settled = new Set<string>();
  readonly #pinned = new Set<string>();
  readonly #offs = new Map<string, () => void>();
  /** Loads of others' segments not started yet (BACKGROUND_LOADS). */
  readonly #queued: Array<() => Promise<void>> = [];
  #running = 0;
  #closed = false;

  constructor(opts: SegmentSetOptions) {
    this.#opts = opts;
  }

  async loadSettled(): Promise<void> {
    const raw = await loadRecord(this.#opts.storage, SETTLED_RECORD);
    if (Array.isArray(raw)) this.#settled = new Set(raw.filter((u): u is string => typeof u === "string"));
  }

  // ---- own segments ----

  async openCurrent(): Promise<void> {
    const own = ownSegments(readSegments(this.#opts.registry.doc()), this.#opts.deviceId);
    if (own.size === 0) return;
    const n = Math.max(...own.keys());
    const url = own.get(n) as AutomergeUrl;
    // Own segments were written here, so they are in local storage: no network needed.
    const handle = await this.#opts.repo.find<LedgerSegmentDoc>(url);
    const doc = handle.doc();
    this.#current = { n, handle, size: segmentSize(doc), month: monthOf(segmentCreatedAt(doc) ?? "") };
    // A segment written again after it settled (restored storage) is not settled any more.
    this.#settled.delete(url);
  }

  current(): CurrentSegment | undefined {
    return this.#current;
  }

  /** The segment the next entry goes to, rotating (and registering) first when it is full or old. */
  async segmentFor(at: string): Promise<CurrentSegment> {
    const max = this.#opts.segmentMaxEntries ?? SEGMENT_MAX_ENTRIES;
    const cur = this.#current;
    if (cur && cur.size < max && cur.month === monthOf(at)) return cur;
    const { repo, registry, deviceId } = this.#opts;
    const n = cur ? cur.n + 1 : this.#nextFreeNumber();
    const handle = repo.create<LedgerSegmentDoc>({
      type: "ledger-segment", team: this.#opts.team, device: deviceId, n, createdAt: at, entries: {},
    });
    // Segment on disk before the registry names it, registry on disk before entries go in: a crash
    // in between leaves at worst an empty, unregistered segment, never an entry nobody can find.
    await repo.flush([handle.documentId]);
    changeSafely(registry, (d) => {
      d.segments[segmentKey(deviceId, n)] = handle.url;
    }, this.#opts.recovery);
    await repo.flush([registry.documentId]);
    const slot: HeldSegment = { key: segmentKey(deviceId, n), url: handle.url, own: true };
    this.#held.set(slot.key, slot);
    this.#opts.addMember(handle.documentId);
    this.#hold(slot, handle);
    this.#current = { n, handle, size: 0, month: monthOf(at) };
    return this.#current;
  }

  /** Runs an own write: its change event is not someone else's entry. */
  writing<T>(fn: () => T): T {
    this.#writing = true;
    try {
      return fn();
    } finally {
      this.#writing = false;
    }
  }

  #nextFreeNumber(): number {
    const own = ownSegments(readSegments(this.#opts.registry.doc()), this.#opts.deviceId);
    return own.size === 0 ? 0 : Math.max(...own.keys()) + 1;
  }

  // ---- the working set ----

  /**
   * Holds every segment of the working set not held yet and lets go of those that left it.
   * Returns the loads of own segments (the device has them all before its first read or write).
   */
  refresh(): Array<Promise<void>> {
    if (this.#closed) return [];
    const registered = readSegments(this.#opts.registry.doc());
    for (const url of registered.values()) this.#opts.addMember(documentIdOf(url));
    const settled = new Set(this.#settled);
    for (const slot of this.#held.values()) if (slot.own && this.#evictable(slot)) settled.add(slot.url);
    const wanted = workingSet({
      segments: registered,
      deviceId: this.#opts.deviceId,
      status: this.#opts.status(),
      today: this.#opts.today(),
      historyDays: this.#opts.historyDays,
      settled,
      pinned: this.#pinned,
    });
    const loading: Array<Promise<void>> = [];
    let changed = false;
    for (const [key, url] of wanted) {
      if (this.#held.has(key)) continue;
      const own = key.startsWith(`${this.#opts.deviceId}/`);
      const slot: HeldSegment = { key, url, own };
      this.#held.set(key, slot);
      changed = true;
      const load = (): Promise<void> =>
        this.#opts.repo
          .find<LedgerSegmentDoc>(url, { allowableStates: ["ready", "unavailable", "requesting"] })
          .then(async (handle) => {
            if ((await this.#opts.whenReady(handle)) && this.#held.get(key) === slot) this.#hold(slot, handle);
          })
          .catch(() => undefined);
      if (own) loading.push(load());
      else this.#queued.push(load);
    }
    for (const slot of [...this.#held.values()]) {
      if (wanted.has(slot.key) || !this.#evictable(slot)) continue;
      this.#evict(slot);
      changed = true;
    }
    if (changed) this.#opts.onHeld();
    this.#pump();
    return loading;
  }

  #pump(): void {
    while (!this.#closed && this.#running < BACKGROUND_LOADS && this.#queued.length > 0) {
      const load = this.#queued.shift()!;
      this.#running++;
      let timer: ReturnType<typeof setTimeout> | undefined;
      void Promise.race([load(), new Promise<void>((resolve) => (timer = setTimeout(resolve, BACKGROUND_SLOT_MS)))]).finally(() => {
        clearTimeout(timer);
        this.#running--;
        this.#pump();
      });
    }
  }

  /**
   * Nothing a device wrote goes before the relay acknowledged it: an own segment is let go of only
   * when it is not the one written to, every entry of it is on the relay, and decided.
   */
  #evictable(slot: HeldSegment): boolean {
    if (!slot.handle) return false;
    if (!slot.own) return true;
    if (this.#current && slot.url === this.#current.handle.url) return false;
    return this.#opts.settled(slot.url, segmentEntries(slot.handle.doc()).map(([id]) => id));
  }

  #evict(slot: HeldSegment): void {
    this.#held.delete(slot.key);
    this.#offs.get(slot.key)?.();
    this.#offs.delete(slot.key);
    if (slot.own) {
      this.#settled.add(slot.url);
      void saveRecord(this.#opts.storage, SETTLED_RECORD, [...this.#settled]).catch(() => undefined);
    }
    try {
      // Out of memory and off the disk; the relay keeps it. Nothing is sent to peers.
      this.#opts.repo.delete(slot.url);
    } catch {
      // Already gone.
    }
    this.#opts.onEvicted(slot.url);
  }

  #hold(slot: HeldSegment, handle: DocHandle<LedgerSegmentDoc>): void {
    if (slot.handle) return;
    slot.handle = handle;
    const onChange = (): void => {
      // Own writes keep the provisional view up to date themselves; others' entries invalidate it.
      if (!this.#writing) this.#opts.onChange();
    };
    const onRemoteHeads = (): void => this.#opts.onRemoteHeads();
    handle.on("change", onChange);
    handle.on("remote-heads", onRemoteHeads);
    this.#offs.set(slot.key, () => {
      handle.off("change", onChange);
      handle.off("remote-heads", onRemoteHeads);
    });
    this.#opts.onHeld();
  }

  /**
   * History on demand: holds every registered segment (or those of `keys`) until the device
   * closes, and resolves once they are loaded or `timeoutMs` passed. Returns how many are held.
   */
  async pin(opts: { keys?: readonly string[]; timeoutMs?: number } = {}): Promise<number> {
    const registered = readSegments(this.#opts.registry.doc());
    for (const [key, url] of registered) if (!opts.keys || opts.keys.includes(key)) this.#pinned.add(url);
    this.refresh();
    const deadline = Date.now() + (opts.timeoutMs ?? 120_000);
    const pinnedHeld = (): number => [...this.#held.values()].filter((s) => s.handle && this.#pinned.has(s.url)).length;
    while (!this.#closed && pinnedHeld() < this.#pinned.size && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    return pinnedHeld();
  }

  // ---- reads ----

  /** Held segments (loaded or still loading). */
  segments(): IterableIterator<HeldSegment> {
    return this.#held.values();
  }

  /** How many segments are loaded here, still loading, and listed in the registry. */
  counts(): { held: number; loading: number; registered: number } {
    let held = 0;
    for (const s of this.#held.values()) if (s.handle) held++;
    return { held, loading: this.#held.size - held, registered: readSegments(this.#opts.registry.doc()).size };
  }

  /** Every parsed entry of the held segments that `include` accepts (all by default). */
  entries(include: (segmentUrl: string) => boolean = () => true): LedgerEntry[] {
    const out: LedgerEntry[] = [];
    for (const seg of this.#held.values()) {
      if (!seg.handle || !include(seg.url)) continue;
      for (const [key, raw] of segmentEntries(seg.handle.doc())) {
        const parsed = parseEntry(key, raw);
        if (parsed.ok) out.push(parsed.entry);
      }
    }
    return out;
  }

  /** Entries held, counted without parsing them. */
  entryCount(): number {
    let n = 0;
    for (const seg of this.#held.values()) if (seg.handle) n += segmentSize(seg.handle.doc());
    return n;
  }

  findEntry(id: string): LedgerEntry | undefined {
    for (const seg of this.#held.values()) {
      if (!seg.handle) continue;
      const entries = (seg.handle.doc() as { entries?: Record<string, unknown> }).entries;
      if (!entries || !Object.hasOwn(entries, id)) continue;
      const parsed = parseEntry(id, entries[id]);
      if (parsed.ok) return parsed.entry;
    }
    return undefined;
  }

  close(): void {
    this.#closed = true;
    this.#queued.length = 0;
    for (const off of this.#offs.values()) off();
    this.#offs.clear();
  }
}
