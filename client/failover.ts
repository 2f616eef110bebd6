/**
 * Which relay a device dials next, when it knows several (issue 17). A device stays on the relay
 * that works; when an attempt fails or its session ends, it moves to the next address, and only
 * once every address has failed in a row does the backoff grow. With one address this is the
 * plain reconnect-with-backoff it always was.
 */
import { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from "./backoff.js";
import { ClientError } from "./errors.js";

export class RelayRotation {
  readonly urls: readonly string[];
  #index: number;
  /** Attempts failed since the last session was established. */
  #failures = 0;

  /** `start`: the index to begin with (spreads the devices of a shop over the relays). */
  constructor(urls: readonly string[], start = 0) {
    if (urls.length === 0) throw new ClientError("invalid-input", "no relay address given");
    const seen = new Set<string>();
    for (const u of urls) {
      if (seen.has(u)) throw new ClientError("invalid-input", `relay address ${u} is listed twice`);
      seen.add(u);
    }
    this.urls = [...urls];
    this.#index = ((start % urls.length) + urls.length) % urls.length;
  }

  /** The address to dial now. */
  get url(): string {
    return this.urls[this.#index] as string;
  }

  /** A session was established on the current address: stay there, forget past failures. */
  succeeded(): void {
    this.#failures = 0;
  }

  /** Start afresh on the current address (going back online on purpose). */
  reset(): void {
    this.#failures = 0;
  }

  /**
   * The current address failed (refused, unreachable, or its session ended): move to the next
   * and return how long to wait before dialling it. Each full round of failures doubles the
   * backoff, so N relays that are all down are not dialled N times as often as one.
   */
  failed(backoff: BackoffOptions = DEFAULT_BACKOFF, random?: () => number): number {
    this.#failures += 1;
    this.#index = (this.#index + 1) % this.urls.length;
    const round = Math.floor((this.#failures - 1) / this.urls.length);
    return backoffDelay(round, backoff, random);
  }
}
