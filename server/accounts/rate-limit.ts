/**
 * A fixed-window counter per key, in memory: enough to slow password guessing against one
 * account from one address. Bounded: the oldest keys are dropped past `maxKeys`.
 */
export interface RateLimiterOptions {
  /** Attempts allowed per window. */
  limit: number;
  windowMs: number;
  /** Most keys remembered at once. */
  maxKeys?: number;
}

export const DEFAULT_LOGIN_LIMIT: RateLimiterOptions = { limit: 10, windowMs: 60_000, maxKeys: 50_000 };

export class RateLimiter {
  readonly #windows = new Map<string, { start: number; count: number }>();
  constructor(private readonly opts: RateLimiterOptions) {}

  /** Seconds until `key` may try again (0: now), without counting an attempt. */
  blocked(key: string, now = Date.now()): number {
    const w = this.#windows.get(key);
    if (!w || now - w.start >= this.opts.windowMs || w.count < this.opts.limit) return 0;
    return Math.max(1, Math.ceil((w.start + this.opts.windowMs - now) / 1000));
  }

  /** Counts an attempt; returns 0 when allowed, else the seconds until the window resets. */
  hit(key: string, now = Date.now()): number {
    let w = this.#windows.get(key);
    if (!w || now - w.start >= this.opts.windowMs) {
      this.#windows.delete(key);
      w = { start: now, count: 0 };
      this.#windows.set(key, w);
      const max = this.opts.maxKeys ?? 50_000;
      if (this.#windows.size > max) {
        const oldest = this.#windows.keys().next().value;
        if (oldest !== undefined) this.#windows.delete(oldest);
      }
    }
    w.count += 1;
    if (w.count <= this.opts.limit) return 0;
    return Math.max(1, Math.ceil((w.start + this.opts.windowMs - now) / 1000));
  }
}
