/**
 * Which peer a session is to the relay's Repo. A peer announces its own peer id in `join`, and
 * any token can announce any string, so the announced id alone names nobody: the relay's Repo
 * knows each session by a *peer key*, the announced id scoped to the token's team, user and
 * device. Two sessions collide only when the same device of the same team reconnects (the newer
 * one replaces the older); a token of another identity announcing a device's peer id gets a key
 * of its own, so it can neither take over nor lock out that device's session.
 */
import type { PeerId } from "@automerge/automerge-repo";
import { identityOf, type Claims } from "../../shared/auth/claims.js";
import { sanitizeMetadata, type DecodedFrame } from "./frames.js";
import type { PeerMetadata } from "@automerge/automerge-repo";

const PROTOCOL_V1 = "1";
/** Teams, users and devices never contain this (shared/auth/claims.ts), so a key splits in one place. */
const SEPARATOR = "|";

/**
 * One token identity: team, user and device. Limits per token count per principal, so logging in
 * again for a fresh token does not reset them.
 */
export function principalOf(claims: Pick<Claims, "team" | "sub" | "device">): string {
  return `${claims.team}/${identityOf(claims)}`;
}

/** The Repo-facing peer id of a session: unique per principal and announced id. */
export function peerKey(principal: string, announced: PeerId): PeerId {
  return `${principal}${SEPARATOR}${announced}` as PeerId;
}

/** The id a peer announced, for messages leaving the relay (peers never see each other's keys). */
export function announcedOf(id: PeerId): PeerId {
  const at = id.indexOf(SEPARATOR);
  return (at === -1 ? id : id.slice(at + 1)) as PeerId;
}

export type JoinCheck =
  | { ok: true; peerId: PeerId; metadata: PeerMetadata }
  | { ok: false; reason: string; /** Tell the peer in an `error` message before closing. */ tell?: string; peerId?: PeerId };

/** Validates a `join` message. */
export function checkJoin(msg: DecodedFrame, alreadyJoined: boolean): JoinCheck {
  const peerId = msg.senderId;
  if (typeof peerId !== "string" || peerId.length === 0 || peerId.length > 200) {
    return { ok: false, reason: "join without a valid senderId" };
  }
  if (alreadyJoined) return { ok: false, reason: "second join on one connection" };
  const versions = msg.supportedProtocolVersions;
  if (versions !== undefined && !(Array.isArray(versions) && versions.includes(PROTOCOL_V1))) {
    return { ok: false, reason: "unsupported protocol version", tell: "unsupported protocol version", peerId: peerId as PeerId };
  }
  return { ok: true, peerId: peerId as PeerId, metadata: sanitizeMetadata(msg.peerMetadata) };
}

export { PROTOCOL_V1 };
