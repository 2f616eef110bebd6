/**
 * How many documents each team has registered, bounded by a setting: devices create ledger
 * segments freely (offline too), so without a bound one member could fill the relay's disk and
 * the team's registry with junk documents under the rate limit alone.
 *
 * The count comes from MongoDB (`documents`) once per team and then follows the registrations
 * the relay makes itself; it is re-read after `refreshMs`, since the server registers documents
 * too (team creation, verdict documents), so it trails those by at most that long.
 */
export interface TeamQuotaOptions {
  max: number;
  /** Counts a team's registered documents in MongoDB. */
  countDocuments(team: string): Promise<number>;
  refreshMs?: number;
  now?: () => number;
}

const DEFAULT_REFRESH_MS = 60_000;

export class TeamDocumentQuota {
  readonly #opts: TeamQuotaOptions;
  readonly #counts = new Map<string, { count: number; at: number }>();
  readonly #loading = new Map<string, Promise<void>>();

  constructor(opts: TeamQuotaOptions) {
    this.#opts = opts;
  }

  get max(): number {
    return this.#opts.max;
  }

  /**
   * Starts loading `team`'s count when it is missing or stale, without waiting: called when a
   * session that may register documents joins, so its registrations find the count loaded.
   */
  prefetch(team: string): void {
    this.#fresh(team).catch(() => undefined);
  }

  /** Reserves room for one more document of `team`; false when the team is at its bound. */
  async reserve(team: string): Promise<boolean> {
    // Only a team never counted waits for its count; a stale one is re-read in the background.
    if (!this.#counts.has(team)) await this.#fresh(team);
    else this.prefetch(team);
    const entry = this.#counts.get(team);
    if (!entry || entry.count >= this.#opts.max) return false;
    entry.count++;
    return true;
  }

  /** Gives back a reservation that did not become a new document (it was registered already). */
  release(team: string): void {
    const entry = this.#counts.get(team);
    if (entry && entry.count > 0) entry.count--;
  }

  async #fresh(team: string): Promise<void> {
    const now = (this.#opts.now ?? Date.now)();
    const entry = this.#counts.get(team);
    if (entry && now - entry.at < (this.#opts.refreshMs ?? DEFAULT_REFRESH_MS)) return;
    let loading = this.#loading.get(team);
    if (!loading) {
      loading = this.#opts
        .countDocuments(team)
        .then((count) => {
          this.#counts.set(team, { count, at: now });
        })
        .finally(() => this.#loading.delete(team));
      this.#loading.set(team, loading);
    }
    await loading;
  }
}
