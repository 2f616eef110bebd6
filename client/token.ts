/**
 * Reading the device's own token. The device does not verify its own token (the relay does);
 * it only needs the claims to name itself in entries and to check the token fits the device.
 * Peers never see it: they check each other's certificates (client/peer/handshake.ts).
 */
import { parseClaims, type Claims } from "../shared/auth/claims.js";
import { ClientError } from "./errors.js";

function base64UrlDecode(part: string): string {
  const b64 = part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "=");
  return new TextDecoder().decode(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)));
}

export function readOwnClaims(token: string): Claims {
  const parts = token.split(".");
  if (parts.length !== 3 || parts[1] === undefined) throw new ClientError("bad-token", "token is not a JWT");
  try {
    return parseClaims(JSON.parse(base64UrlDecode(parts[1])) as unknown);
  } catch (err) {
    throw new ClientError("bad-token", err instanceof Error ? err.message : "unreadable token claims");
  }
}
