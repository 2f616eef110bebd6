/**
 * Requests for documents the relay does not know yet, kept so they can be answered once the
 * document arrives. A device may list a new segment in the team's registry before the segment's
 * first sync reaches the relay (its till dropped offline in between, or that sync is queued behind
 * others): the devices that ask for it in the meantime are told it is unavailable, and
 * automerge-repo does not ask again by itself. When the segment is registered, the Repo is handed
 * a fresh request for each of them and sends the document.
 *
 * Only the request's identity is kept (document, session, token identity), never the peer's
 * payload: a request can carry megabytes, and any token could otherwise pin them in relay memory.
 * Bounded per session, per token identity and in total (the oldest of that scope is forgotten:
 * that device sees the document after its next reconnect); a closed session's requests go with it.
 */

/** Rough bytes one remembered request costs (ids, map entries, the object): for metrics and docs. */
export const PENDING_REQUEST_BYTES = 200;

export interface PendingRequest {
  documentId: string;
  session: string;
  principal: string;
}

export interface PendingRequestBounds {
  perConnection: number;
  perToken: number;
  total: number;
}

const keyOf = (documentId: string, session: string): string => `${documentId} ${session}`;

export class PendingRequests {
  readonly #bounds: PendingRequestBounds;
  /** Every request, oldest first (Map keeps insertion order). */
  readonly #all = new Map<string, PendingRequest>();
  readonly #byDocument = new Map<string, Set<string>>();
  readonly #bySession = new Map<string, Set<string>>();
  readonly #byPrincipal = new Map<string, Set<string>>();
  /** Requests forgotten to stay within a bound, for metrics. */
  dropped = 0;

  constructor(bounds: PendingRequestBounds) {
    this.#bounds = bounds;
  }

  get size(): number {
    return this.#all.size;
  }

  get bytes(): number {
    return this.#all.size * PENDING_REQUEST_BYTES;
  }

  /** One request per document and session (a repeated one moves to the newest place). */
  add(request: PendingRequest): void {
    const key = keyOf(request.documentId, request.session);
    this.#remove(key);
    this.#all.set(key, request);
    index(this.#byDocument, request.documentId, key);
    const bySession = index(this.#bySession, request.session, key);
    const byPrincipal = index(this.#byPrincipal, request.principal, key);
    this.#trim(bySession, this.#bounds.perConnection);
    this.#trim(byPrincipal, this.#bounds.perToken);
    this.#trim(this.#all.keys(), this.#bounds.total, this.#all.size);
  }

  /** The requests waiting for `documentId`, removed. */
  take(documentId: string): PendingRequest[] {
    const keys = this.#byDocument.get(documentId);
    if (!keys) return [];
    const out: PendingRequest[] = [];
    for (const key of [...keys]) {
      const request = this.#all.get(key);
      if (request) out.push(request);
      this.#remove(key);
    }
    return out;
  }

  /** Forgets every request of a closed session. */
  dropSession(session: string): void {
    const keys = this.#bySession.get(session);
    if (!keys) return;
    for (const key of [...keys]) this.#remove(key);
  }

  /** Removes the oldest keys of `scope` (of `size` keys) until it holds at most `max`; removing while iterating is safe for Map and Set. */
  #trim(scope: Iterable<string> & { size?: number }, max: number, size = scope.size ?? 0): void {
    let excess = size - max;
    if (excess <= 0) return;
    for (const key of scope) {
      if (excess-- <= 0) break;
      this.#remove(key);
      this.dropped++;
    }
  }

  #remove(key: string): void {
    const request = this.#all.get(key);
    if (!request) return;
    this.#all.delete(key);
    unindex(this.#byDocument, request.documentId, key);
    unindex(this.#bySession, request.session, key);
    unindex(this.#byPrincipal, request.principal, key);
  }
}

function index(map: Map<string, Set<string>>, by: string, key: string): Set<string> {
  let keys = map.get(by);
  if (!keys) map.set(by, (keys = new Set()));
  keys.add(key);
  return keys;
}

function unindex(map: Map<string, Set<string>>, by: string, key: string): void {
  const keys = map.get(by);
  if (!keys) return;
  keys.delete(key);
  if (keys.size === 0) map.delete(by);
}
