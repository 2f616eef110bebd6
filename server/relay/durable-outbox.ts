/**
 * Holds the relay's outgoing sync messages for a document until the document is on disk.
 * A sync message tells the peer which changes the relay has; once sent, the peer never sends
 * them again, so a relay killed before its (throttled) save would lose them for good.
 */
export type Deliver = (durable: boolean) => void;

interface DocQueue {
  running: boolean;
  /** Messages the running flush covers. */
  current: Deliver[];
  /** Messages generated after the running flush read the document: they wait for the next one. */
  next: Deliver[];
}

export class DurableOutbox {
  readonly #docs = new Map<string, DocQueue>();

  constructor(
    private readonly flush: (documentId: string) => Promise<void>,
    private readonly onError: (documentId: string, err: unknown) => void,
  ) {}

  enqueue(documentId: string, deliver: Deliver): void {
    let q = this.#docs.get(documentId);
    if (!q) {
      q = { running: false, current: [], next: [] };
      this.#docs.set(documentId, q);
    }
    q.next.push(deliver);
    if (!q.running) this.#run(documentId, q);
  }

  #run(documentId: string, q: DocQueue): void {
    q.running = true;
    q.current = q.next;
    q.next = [];
    // Messages are generated inside DocHandle.update, before the handle holds the new document:
    // flushing in this same tick would save the state from before the change.
    setImmediate(() => {
      this.flush(documentId).then(
        () => this.#settle(documentId, q, true),
        (err: unknown) => {
          this.onError(documentId, err);
          this.#settle(documentId, q, false);
        },
      );
    });
  }

  #settle(documentId: string, q: DocQueue, durable: boolean): void {
    const batch = q.current;
    q.current = [];
    for (const deliver of batch) deliver(durable);
    if (q.next.length > 0) this.#run(documentId, q);
    else {
      q.running = false;
      this.#docs.delete(documentId);
    }
  }
}
