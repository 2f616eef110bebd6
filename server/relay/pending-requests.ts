/**
 * Requests for documents the relay does not know yet, kept so they can be answered once the
 * document arrives. A device may list a new segment in the team's registry before the segment's
 * first sync reaches the relay (its till dropped offline in between, or that sync is queued behind
 * others): the devices that ask for it in the meantime are told it is unavailable, and
 * automerge-repo does not ask again by itself. When the segment is registered, their requests are
 * handed to the Repo, which then sends it to them.
 *
 * Bounded: past `max` requests the oldest documents' requests are dropped (those devices see the
 * segment after their next reconnect, as before).
 */
export class PendingRequests<T> {
  readonly #byDocument = new Map<string, Map<string, T>>();
  #size = 0;

  constructor(private readonly max = 10_000) {}

  get size(): number {
    return this.#size;
  }

  /** One request per document and requester (the latest kept). */
  add(documentId: string, requester: string, request: T): void {
    let byRequester = this.#byDocument.get(documentId);
    if (!byRequester) this.#byDocument.set(documentId, (byRequester = new Map()));
    if (!byRequester.has(requester)) this.#size++;
    byRequester.set(requester, request);
    for (const [oldest, requests] of this.#byDocument) {
      if (this.#size <= this.max) break;
      this.#byDocument.delete(oldest);
      this.#size -= requests.size;
    }
  }

  /** The requests waiting for `documentId`, removed. */
  take(documentId: string): T[] {
    const byRequester = this.#byDocument.get(documentId);
    if (!byRequester) return [];
    this.#byDocument.delete(documentId);
    this.#size -= byRequester.size;
    return [...byRequester.values()];
  }
}
