/**
 * Offline token verification with the team's public key: used by the relay on every handshake
 * and request, and by devices to check each other's tokens for peer-to-peer sync. Imports no
 * server state so a client bundle can use it.
 */
import jwt from "jsonwebtoken";
import { parseClaims, type Claims } from "./claims.js";

/** Pinned: an attacker must not pick the algorithm (alg:none, HS256 keyed with the public key). */
export const TOKEN_ALGORITHM = "ES256" as const;

export interface VerifyOptions {
  publicKeyPem: string;
  issuer: string;
  audience: string;
  /** For tests and clock skew; defaults to now. */
  nowSeconds?: number;
}

export class TokenError extends Error {
  constructor(readonly reason: string) {
    super(`token refused: ${reason}`);
    this.name = "TokenError";
  }
}

export function verifyToken(token: string, opts: VerifyOptions): Claims {
  if (typeof token !== "string" || token.length === 0 || token.length > 8192) {
    throw new TokenError("missing or oversized");
  }
  let payload: unknown;
  try {
    payload = jwt.verify(token, opts.publicKeyPem, {
      algorithms: [TOKEN_ALGORITHM],
      issuer: opts.issuer,
      audience: opts.audience,
      clockTimestamp: opts.nowSeconds,
      complete: false,
    });
  } catch (err) {
    // jsonwebtoken's messages name the failed check ("jwt expired", "invalid algorithm"), never the token.
    throw new TokenError(err instanceof Error ? err.message : "unverifiable");
  }
  try {
    return parseClaims(payload);
  } catch (err) {
    throw new TokenError(err instanceof Error ? err.message : "bad claims");
  }
}
