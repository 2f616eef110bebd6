/**
 * Reconnect delays: exponential with "full jitter", so a relay restart does not see every device
 * of a shop (or of every shop) come back in the same millisecond.
 */
export interface BackoffOptions {
  /** First delay ceiling, in ms. */
  baseMs: number;
  /** Largest delay ceiling, in ms. */
  maxMs: number;
}

export const DEFAULT_BACKOFF: Readonly<BackoffOptions> = Object.freeze({ baseMs: 250, maxMs: 15_000 });

/** Delay before attempt `attempt` (0-based): uniform in [ceiling/2, ceiling]. */
export function backoffDelay(attempt: number, opts: BackoffOptions = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  const ceiling = Math.min(opts.maxMs, opts.baseMs * 2 ** Math.min(attempt, 30));
  // Half fixed, half random: never hammering (a floor) and never in lockstep (the spread).
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
