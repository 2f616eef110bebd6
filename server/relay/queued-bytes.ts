/**
 * Bytes of received messages the relay holds while it looks up their document's registration,
 * counted per session, per token identity and in total. Over any bound the session is no longer
 * read (ws pause: TCP backpressure on that peer alone) until its own messages have been checked,
 * so a burst costs the peer time, never the relay memory, and no well-behaved device is refused.
 */
import type { Session } from "./session.js";

export interface QueuedByteBounds {
  perConnection: number;
  perToken: number;
  total: number;
}

export class QueuedBytes {
  readonly #bounds: QueuedByteBounds;
  readonly #byPrincipal = new Map<string, number>();
  #total = 0;

  constructor(bounds: QueuedByteBounds) {
    this.#bounds = bounds;
  }

  get total(): number {
    return this.#total;
  }

  /** Counts `n` bytes queued by `session`; true when a bound is now exceeded. */
  add(session: Session, n: number): boolean {
    session.queuedBytes += n;
    this.#byPrincipal.set(session.principal, (this.#byPrincipal.get(session.principal) ?? 0) + n);
    this.#total += n;
    return this.over(session);
  }

  release(session: Session, n: number): void {
    session.queuedBytes -= n;
    const left = (this.#byPrincipal.get(session.principal) ?? 0) - n;
    if (left > 0) this.#byPrincipal.set(session.principal, left);
    else this.#byPrincipal.delete(session.principal);
    this.#total -= n;
  }

  /**
   * Whether `session` must wait. A session with nothing queued never waits: the total is then over
   * because of others, whose own queues drain, and one message more is the most it can add.
   */
  over(session: Session): boolean {
    if (session.queuedBytes <= 0) return false;
    return (
      session.queuedBytes > this.#bounds.perConnection ||
      (this.#byPrincipal.get(session.principal) ?? 0) > this.#bounds.perToken ||
      this.#total > this.#bounds.total
    );
  }
}
