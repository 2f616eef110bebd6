/**
 * Links between relays that share one database (issue 17, `RELAY_PEERS`): this relay dials the
 * listed relays as an automerge-repo peer with a service token, and relays announce every
 * document they hold to each other, so a change a device writes through one relay reaches
 * devices on the others (and each relay saves it to the shared storage). Access rules stay
 * per relay: a device's message is checked by the relay it is connected to before it is
 * merged, and only then forwarded.
 */
import type { PeerId, Repo } from "@automerge/automerge-repo";
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket";
import type { Claims } from "../../shared/auth/claims.js";
import type { Logger } from "../log.js";

/** Relays name themselves `relay-...` (relay.ts); only a service token may connect as one. */
export const RELAY_PEER_PREFIX = "relay-";

/**
 * The stock adapter throws socket errors out of an event handler (AUTOMERGE-NOTES.md); a relay
 * that is down (or refuses our token: different JWT keys) is retried, and said once per outage.
 */
class QuietLink extends WebSocketClientAdapter {
  #reported = false;
  constructor(
    url: string,
    retryMs: number,
    private readonly onFirstError: () => void,
  ) {
    super(url, retryMs);
    this.on("peer-candidate", () => void (this.#reported = false));
  }
  override onError = (): void => {
    if (this.#reported) return;
    this.#reported = true;
    this.onFirstError();
  };
}

export interface RelayLinks {
  /** A peer that is another relay: reached through a link, or connected to us with a service token. */
  isRelay(peerId: PeerId): boolean;
  count(): number;
}

export function startRelayLinks(opts: {
  repo: Repo;
  urls: readonly string[];
  token: () => string;
  claimsOf: (peerId: PeerId) => Claims | undefined;
  logger: Logger;
}): RelayLinks {
  const outbound = new Set<PeerId>();
  for (const url of opts.urls) {
    const link = new QuietLink(`${url}${url.includes("?") ? "&" : "?"}token=${encodeURIComponent(opts.token())}`, 1000, () =>
      opts.logger.warn({ url }, "cannot reach relay (down, or it refuses our token: every relay needs the same JWT keys); retrying every second"),
    );
    link.on("peer-candidate", ({ peerId }) => {
      outbound.add(peerId);
      opts.logger.info({ url, peer: peerId }, "linked to relay");
    });
    link.on("peer-disconnected", ({ peerId }) => {
      outbound.delete(peerId);
      opts.logger.warn({ url, peer: peerId }, "relay link lost; retrying");
    });
    opts.repo.networkSubsystem.addNetworkAdapter(link);
  }
  return {
    isRelay: (peerId) => outbound.has(peerId) || (peerId.startsWith(RELAY_PEER_PREFIX) && opts.claimsOf(peerId)?.role === "service"),
    count: () => outbound.size,
  };
}
