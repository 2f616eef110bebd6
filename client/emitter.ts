/** A minimal typed event emitter (no Node `events`, so the core runs in a browser). */
export class Emitter<Events extends { [K in keyof Events]: (payload: never) => void }> {
  readonly #listeners = new Map<keyof Events, Set<(payload: never) => void>>();

  on<K extends keyof Events>(event: K, listener: Events[K]): () => void {
    let set = this.#listeners.get(event);
    if (!set) this.#listeners.set(event, (set = new Set()));
    set.add(listener);
    return () => this.off(event, listener);
  }

  off<K extends keyof Events>(event: K, listener: Events[K]): void {
    this.#listeners.get(event)?.delete(listener);
  }

  protected emit<K extends keyof Events>(event: K, payload: Parameters<Events[K]>[0]): void {
    for (const listener of [...(this.#listeners.get(event) ?? [])]) {
      try {
        (listener as (p: Parameters<Events[K]>[0]) => void)(payload);
      } catch {
        // A failing listener of the app must not break syncing or the next listener.
      }
    }
  }
}
