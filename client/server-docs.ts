/**
 * The device's side of the server-owned documents: which documents are the server's (root,
 * status, the verdicts documents the status lists) and which are members' (registry, catalog,
 * segments), the filter every peer link passes its messages through, and the verified reads of
 * status and verdicts (client/statements.ts says why both).
 */
import { parseAutomergeUrl, type AutomergeUrl, type DocHandle, type NetworkAdapterInterface, type Repo } from "@automerge/automerge-repo";
import type { PublishedVerdict } from "../shared/docs.js";
import { ClientError } from "./errors.js";
import { readStatus, type StatusView } from "./read-docs.js";
import { guardIncoming, StatementGate, StatementReader, type DroppedMessage } from "./statements.js";
import { VerdictTracker } from "./verdicts.js";

export interface ServerDocumentsOptions {
  repo: Repo;
  rootUrl: AutomergeUrl;
  statusUrl: AutomergeUrl;
  /** The service's public key from enrolment; without it nothing is verified and no peer may link. */
  publicKeyPem: string | undefined;
  whenReady(handle: DocHandle<unknown>): Promise<boolean>;
  onDrop(drop: DroppedMessage): void;
  onVerdict(entryId: string, verdict: PublishedVerdict): void;
  /** Status or verdicts changed what the device believes: derived figures are stale. */
  onChange(): void;
}

export function documentIdOf(url: AutomergeUrl): string {
  return parseAutomergeUrl(url).documentId;
}

export class ServerDocuments {
  readonly #gate: StatementGate | undefined;
  readonly #status: StatementReader<StatusView>;
  readonly #verdicts: VerdictTracker;
  readonly #serverIds: Set<string>;
  readonly #memberIds = new Set<string>();

  constructor(opts: ServerDocumentsOptions) {
    this.#serverIds = new Set([documentIdOf(opts.rootUrl), documentIdOf(opts.statusUrl)]);
    this.#gate = opts.publicKeyPem
      ? new StatementGate({
          repo: opts.repo,
          publicKeyPem: opts.publicKeyPem,
          serverDocuments: () => this.#serverIds,
          memberDocuments: () => this.#memberIds,
          onDrop: opts.onDrop,
        })
      : undefined;
    const key = this.#gate?.key;
    this.#status = new StatementReader(key, readStatus, readStatus(undefined));
    this.#verdicts = new VerdictTracker({
      repo: opts.repo,
      key,
      // Unsigned verdicts are believed only in a team whose status is unsigned too (statements.ts).
      unsignedAllowed: () => !this.#status.claimsSigned,
      whenReady: opts.whenReady,
      onVerdict: opts.onVerdict,
      onChange: opts.onChange,
    });
  }

  /** A document members write (registry, catalog, a segment): peers carry it unchecked. */
  addMember(documentId: string): void {
    this.#memberIds.add(documentId);
  }

  /** The status as far as it can be believed. */
  status(handle: DocHandle<unknown>): StatusView {
    const signedBefore = this.#status.claimsSigned;
    const view = this.#status.view(handle.documentId, handle.doc(), handle.heads(), true);
    if (this.#status.claimsSigned !== signedBefore) this.#verdicts.refresh();
    return view;
  }

  /**
   * Follows the verdicts documents `status` lists for `segments`. Every segment's, not only own
   * ones: provisional figures count others' undecided entries and must know which are decided.
   */
  follow(status: StatusView, segments: Iterable<{ url: string; own: boolean }>): void {
    for (const vUrl of status.verdicts.values()) this.#serverIds.add(documentIdOf(vUrl));
    this.#verdicts.follow(status, segments);
  }

  /** Whether the verdicts on the entries of `segUrl` are read here (verdicts.ts `known`). */
  verdictsKnown(status: StatusView, segUrl: string): boolean {
    return this.#verdicts.known(status, segUrl);
  }

  /** The segment is no longer held: neither are its verdicts. */
  unfollow(segUrl: string): void {
    this.#verdicts.unfollow(segUrl);
  }

  verdictOf(entryId: string): PublishedVerdict | undefined {
    return this.#verdicts.verdictOf(entryId);
  }

  verdictHandles(): Array<DocHandle<unknown>> {
    return this.#verdicts.handles();
  }

  /** Every peer link passes its incoming messages through the statement gate. */
  guardPeer(adapter: NetworkAdapterInterface): void {
    const gate = this.#gate;
    if (!gate) throw new ClientError("bad-token", "peer-to-peer needs the team's public key (publicKeyPem at open)");
    guardIncoming(adapter, gate.filterPeerMessage);
  }

  close(): void {
    this.#verdicts.close();
  }
}
