/**
 * The server's verdicts on the team's entries: one verdicts document per segment, found through
 * the status document, read only as far as its server statement lets them be believed
 * (client/statements.ts). `verdict` events are for own entries only.
 */
import type { AutomergeUrl, DocHandle, Repo } from "@automerge/automerge-repo";
import type { KeyObject } from "node:crypto";
import type { PublishedVerdict } from "../shared/docs.js";
import { readVerdicts, type StatusView } from "./read-docs.js";
import { StatementReader } from "./statements.js";

export interface VerdictTrackerOptions {
  repo: Repo;
  /** The service's public key; without it verdicts are read as they are (no peers then). */
  key: KeyObject | undefined;
  /** Whether an unsigned verdicts document may be believed (the team's status is unsigned too). */
  unsignedAllowed(): boolean;
  /** Resolves true once the handle is ready, false if the device closed first. */
  whenReady(handle: DocHandle<unknown>): Promise<boolean>;
  onVerdict(entryId: string, verdict: PublishedVerdict): void;
  /** Verdicts changed: figures computed from them are stale. */
  onChange(): void;
}

interface Tracked {
  handle: DocHandle<unknown>;
  own: boolean;
  reader: StatementReader<Map<string, PublishedVerdict>>;
  verdicts: Map<string, PublishedVerdict>;
}

export class VerdictTracker {
  readonly #opts: VerdictTrackerOptions;
  /** Own segment URL → its verdicts document. */
  readonly #tracked = new Map<string, Tracked>();
  readonly #opening = new Set<string>();
  readonly #offs = new Map<string, () => void>();

  constructor(opts: VerdictTrackerOptions) {
    this.#opts = opts;
  }

  /** Follows the verdicts document the status lists for each segment not followed yet. */
  follow(status: StatusView, segments: Iterable<{ url: string; own: boolean }>): void {
    for (const { url: segUrl, own } of segments) {
      const vUrl = status.verdicts.get(segUrl);
      if (!vUrl || this.#tracked.has(segUrl) || this.#opening.has(segUrl)) continue;
      this.#opening.add(segUrl);
      void this.#open(segUrl, vUrl, own).finally(() => this.#opening.delete(segUrl));
    }
  }

  async #open(segUrl: string, vUrl: AutomergeUrl, own: boolean): Promise<void> {
    try {
      const handle = await this.#opts.repo.find<unknown>(vUrl, { allowableStates: ["ready", "unavailable", "requesting"] });
      if (!(await this.#opts.whenReady(handle)) || this.#tracked.has(segUrl)) return;
      const tracked: Tracked = { handle, own, reader: new StatementReader(this.#opts.key, readVerdicts, new Map()), verdicts: new Map() };
      this.#tracked.set(segUrl, tracked);
      const read = (): void => this.#read(tracked);
      handle.on("change", read);
      this.#offs.set(segUrl, () => handle.off("change", read));
      read();
    } catch {
      // A document deleted or a repo shut down meanwhile: the next status change looks again.
    }
  }

  /**
   * Whether the verdicts on `segUrl` are read here: a segment without a verdicts document in the
   * status has none yet. Until then its entries cannot be told decided from undecided.
   */
  known(status: StatusView, segUrl: string): boolean {
    return !status.verdicts.has(segUrl) || this.#tracked.has(segUrl);
  }

  /** Stops following the verdicts of a segment no longer held, and lets its document go. */
  unfollow(segUrl: string): void {
    const t = this.#tracked.get(segUrl);
    this.#offs.get(segUrl)?.();
    this.#offs.delete(segUrl);
    this.#tracked.delete(segUrl);
    if (!t) return;
    try {
      this.#opts.repo.delete(t.handle.documentId);
    } catch {
      // Already gone.
    }
  }

  /** Reads again, e.g. after the status turned out signed (unsigned verdicts are no longer believed). */
  refresh(): void {
    for (const t of this.#tracked.values()) this.#read(t);
  }

  #read(t: Tracked): void {
    const next = t.reader.view(t.handle.documentId, t.handle.doc(), t.handle.heads(), this.#opts.unsignedAllowed());
    const prev = t.verdicts;
    if (next === prev) return;
    t.verdicts = next;
    this.#opts.onChange();
    if (!t.own) return;
    for (const [entryId, v] of next) {
      const old = prev.get(entryId);
      if (!old || old.status !== v.status || old.reason !== v.reason) this.#opts.onVerdict(entryId, v);
    }
  }

  verdictOf(entryId: string): PublishedVerdict | undefined {
    for (const t of this.#tracked.values()) {
      const v = t.verdicts.get(entryId);
      if (v) return v;
    }
    return undefined;
  }

  handles(): Array<DocHandle<unknown>> {
    return [...this.#tracked.values()].map((t) => t.handle);
  }

  close(): void {
    for (const off of this.#offs.values()) off();
    this.#offs.clear();
  }
}
