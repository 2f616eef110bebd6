/**
 * Login tickets: what keeps the password-guessing guard from being a lever to lock a user out.
 * A successful login answers a ticket bound to its team and username; a later login that
 * presents it is counted in a bucket of its own, so failures from anyone else (who cannot mint
 * a ticket without the password) never block it. Tickets are self-verifying (an HMAC under a key
 * derived from the service's JWT signing key), so nothing is stored and restarts keep them valid.
 * A ticket grants no access by itself: the password is still checked.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";

const MAX_TICKET_LENGTH = 200;

/** Domain-separated from the JWT signing itself: the same secret, never the same use. */
export function loginTicketKey(privateKeyPem: string): Buffer {
  return createHash("sha256").update("ledger-sync login tickets\n").update(privateKeyPem).digest();
}

function mac(key: Buffer, team: string, username: string, nonce: string): Buffer {
  return createHmac("sha256", key).update(`${team}\n${username}\n${nonce}`).digest();
}

export function issueLoginTicket(key: Buffer, team: string, username: string): string {
  const nonce = randomBytes(16).toString("base64url");
  return `${nonce}.${mac(key, team, username, nonce).toString("base64url")}`;
}

/** The ticket's id when it was issued for this team and username, else null (absent, malformed, forged, another account's). */
export function loginTicketId(key: Buffer, team: string, username: string, ticket: unknown): string | null {
  if (typeof ticket !== "string" || ticket.length > MAX_TICKET_LENGTH) return null;
  const dot = ticket.indexOf(".");
  if (dot <= 0) return null;
  const nonce = ticket.slice(0, dot);
  const given = Buffer.from(ticket.slice(dot + 1), "base64url");
  const want = mac(key, team, username, nonce);
  return given.length === want.length && timingSafeEqual(given, want) ? nonce : null;
}
