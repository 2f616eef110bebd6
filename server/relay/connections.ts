/**
 * Open sessions per token identity (team, user and device). Every session may hold an unfinished
 * message of up to maxPayload bytes before the relay sees it, so the count per identity is what
 * bounds those bytes per token.
 */
export class ConnectionCounts {
  readonly #byPrincipal = new Map<string, number>();

  constructor(private readonly maxPerToken: number) {}

  count(principal: string): number {
    return this.#byPrincipal.get(principal) ?? 0;
  }

  /** The refusal reason when `principal` already has its share of sessions, else undefined. */
  refusal(principal: string): string | undefined {
    return this.count(principal) >= this.maxPerToken ? `too many connections for this token (at most ${this.maxPerToken})` : undefined;
  }

  opened(principal: string): void {
    this.#byPrincipal.set(principal, this.count(principal) + 1);
  }

  closed(principal: string): void {
    const left = this.count(principal) - 1;
    if (left > 0) this.#byPrincipal.set(principal, left);
    else this.#byPrincipal.delete(principal);
  }
}
