/**
 * Server statements on the device (shared/statement.ts): what a peer may bring into a
 * server-owned document, and which content of those documents the device believes.
 *
 * Two layers, because each alone fails:
 * - **At the door** (`filterPeerMessage`): a sync message from a peer for a server-owned document
 *   is applied to a scratch copy first and passed on only if the outcome carries a valid
 *   statement no older than what the device holds. A forged change that got in would merge with
 *   every later genuine one, and no later state would verify again.
 * - **At reading** (`StatementReader`): the relay and peers can still bring a document the device
 *   did not yet know to be server-owned (a verdicts document announced before the status listing
 *   it arrived). Readers show a signed document only when it verifies, and an unsigned one only
 *   for a team whose status document is unsigned too (documents written before statements).
 *
 * Messages from the relay are not filtered: it already refuses device changes to these
 * documents (server/relay/access.ts), and it is how unsigned documents of old teams still arrive.
 */
import * as A from "@automerge/automerge";
import type { DocumentId, Message, NetworkAdapterInterface, Repo } from "@automerge/automerge-repo";
import { createPublicKey, type KeyObject } from "node:crypto";
import { checkStatement, STATEMENT_FIELD, type StatementCheck } from "../shared/statement.js";

const SERVER_KINDS = new Set(["team-root", "status", "verdicts"]);

export interface DroppedMessage {
  documentId: string;
  /** The peer the message came from. */
  peerId: string;
  reason: string;
}

export interface GateOptions {
  repo: Repo;
  publicKeyPem: string;
  /** Documents known to be server-owned: root, status, the verdicts documents the status lists. */
  serverDocuments(): ReadonlySet<string>;
  /** Documents known to be member-writable (registry, catalog, segments): carried unchecked. */
  memberDocuments(): ReadonlySet<string>;
  onDrop(drop: DroppedMessage): void;
}

function own(raw: unknown, key: string): unknown {
  if (typeof raw !== "object" || raw === null) return undefined;
  const desc = Object.getOwnPropertyDescriptor(raw, key);
  return desc && "value" in desc ? desc.value : undefined;
}

function looksServerOwned(doc: unknown): boolean {
  const type = own(doc, "type");
  return (typeof type === "string" && SERVER_KINDS.has(type)) || own(doc, STATEMENT_FIELD) !== undefined;
}

function sameHeads(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((h) => b.includes(h));
}

/** Makes every incoming message of a peer adapter pass `accept` first (a refused one is dropped). */
export function guardIncoming(adapter: NetworkAdapterInterface, accept: (message: Message) => boolean): void {
  const emit = adapter.emit.bind(adapter) as (event: string, ...args: unknown[]) => boolean;
  (adapter as unknown as { emit: typeof emit }).emit = (event, ...args) => {
    if (event === "message" && !accept(args[0] as Message)) return false;
    return emit(event, ...args);
  };
}

export class StatementGate {
  readonly #opts: GateOptions;
  readonly #key: KeyObject;
  readonly #held = new Map<string, { heads: string; version: number }>();

  constructor(opts: GateOptions) {
    this.#opts = opts;
    this.#key = createPublicKey(opts.publicKeyPem);
  }

  get key(): KeyObject {
    return this.#key;
  }

  /** True when the message may reach the repo; false (and reported) when it is dropped. */
  filterPeerMessage = (message: Message): boolean => {
    if ((message.type !== "sync" && message.type !== "request") || !message.data || !message.documentId) return true;
    const id = message.documentId;
    // Server-owned first: a member can list any document in the (member-writable) registry.
    const known = this.#opts.serverDocuments().has(id);
    if (!known && this.#opts.memberDocuments().has(id)) return true;
    const handle = this.#opts.repo.handles[id as DocumentId];
    const base: A.Doc<unknown> | undefined = handle?.isReady() ? (handle.doc() as A.Doc<unknown>) : undefined;
    let next: A.Doc<unknown>;
    try {
      [next] = A.receiveSyncMessage(base ? A.clone(base) : A.init<unknown>(), A.initSyncState(), message.data);
    } catch (err) {
      return this.#drop(message, `unreadable sync message: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (!known && !looksServerOwned(next)) return true;
    // Changes waiting for ones the device lacks would be applied later, unchecked, when the
    // missing ones arrive from the relay (and leave the heads as they were until then).
    const missingBefore = new Set(base ? A.getMissingDeps(base, []) : []);
    if (A.getMissingDeps(next, []).some((h) => !missingBefore.has(h))) {
      return this.#drop(message, "changes to a server-owned document with missing dependencies");
    }
    if (base && sameHeads(A.getHeads(next), A.getHeads(base))) return true;
    const check = checkStatement(this.#key, id, next);
    if (!check.ok) return this.#drop(message, `server-owned document changed without a valid server statement (${check.reason})`);
    const held = base ? this.#heldVersion(id, base) : 0;
    if (check.version < held) return this.#drop(message, `server statement version ${check.version} is older than the held ${held}`);
    return true;
  };

  /** The verified version of what the device holds (0: none), remembered per document and heads. */
  #heldVersion(id: string, doc: A.Doc<unknown>): number {
    const heads = A.getHeads(doc).join(",");
    const cached = this.#held.get(id);
    if (cached?.heads === heads) return cached.version;
    const check = checkStatement(this.#key, id, doc);
    const version = check.ok ? check.version : 0;
    this.#held.set(id, { heads, version });
    return version;
  }

  #drop(message: Message, reason: string): false {
    this.#opts.onDrop({ documentId: message.documentId ?? "", peerId: message.senderId, reason });
    return false;
  }
}

/**
 * Verified reads of server-owned documents. `read` parses a document into a view; the view of
 * the last content that verified is kept, so a document that stops verifying shows what it
 * showed before instead of what was forged.
 */
export class StatementReader<V> {
  readonly #key: KeyObject | undefined;
  readonly #read: (doc: unknown) => V;
  readonly #empty: V;
  #heads: string | undefined;
  #view: V;
  #lastGood: V | undefined;
  #check: StatementCheck = { ok: false, reason: "unsigned" };

  /** Without a key nothing can be verified: the device has no peers then, and reads as before. */
  constructor(key: KeyObject | undefined, read: (doc: unknown) => V, empty: V) {
    this.#key = key;
    this.#read = read;
    this.#empty = empty;
    this.#view = empty;
  }

  /**
   * The view of `doc` (document `documentId`, at `heads`) as far as it can be believed.
   * `unsignedAllowed`: whether an unsigned document is taken as an old one (see the top).
   */
  view(documentId: string, doc: unknown, heads: readonly string[], unsignedAllowed: boolean): V {
    const at = `${unsignedAllowed ? "u" : "s"}:${heads.join(",")}`;
    if (at === this.#heads) return this.#view;
    this.#heads = at;
    if (!this.#key) {
      this.#check = { ok: false, reason: "unsigned" };
      return (this.#view = this.#read(doc));
    }
    this.#check = checkStatement(this.#key, documentId, doc);
    if (this.#check.ok) this.#view = this.#lastGood = this.#read(doc);
    else if (this.#check.reason === "unsigned" && unsignedAllowed) this.#view = this.#read(doc);
    else this.#view = this.#lastGood ?? this.#empty;
    return this.#view;
  }

  /** Whether the document last read carried a statement that verified. */
  get signed(): boolean {
    return this.#check.ok;
  }

  /** Whether the document last read carried any statement, valid or not. */
  get claimsSigned(): boolean {
    return this.#check.ok || this.#check.reason !== "unsigned";
  }
}
