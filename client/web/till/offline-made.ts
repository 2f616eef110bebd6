/**
 * Entries recorded while the till was offline, remembered in the browser: when one of them comes
 * back rejected, the clerk gets a notice (an online sale's rejection is seen at once; an offline
 * one may come back hours later, after the customer left). Dismissed notices stay dismissed.
 */
export class OfflineMade {
  readonly #key: string;
  #state: { made: string[]; dismissed: string[] };

  constructor(deviceId: string) {
    this.#key = `ledger-sync.offline-made.${deviceId}`;
    this.#state = { made: [], dismissed: [] };
    try {
      const raw = JSON.parse(localStorage.getItem(this.#key) ?? "null") as { made?: unknown; dismissed?: unknown } | null;
      if (raw && Array.isArray(raw.made) && Array.isArray(raw.dismissed)) {
        this.#state = { made: raw.made.filter((x) => typeof x === "string"), dismissed: raw.dismissed.filter((x) => typeof x === "string") };
      }
    } catch {
      // A damaged record only loses notices, never entries.
    }
  }

  add(entryId: string): void {
    this.#state.made.push(entryId);
    this.#save();
  }

  shouldNotify(entryId: string): boolean {
    return this.#state.made.includes(entryId) && !this.#state.dismissed.includes(entryId);
  }

  dismiss(entryId: string): void {
    this.#state.dismissed.push(entryId);
    this.#save();
  }

  #save(): void {
    localStorage.setItem(this.#key, JSON.stringify(this.#state));
  }
}
