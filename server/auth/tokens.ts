/** Issues and verifies the service's tokens (ES256, issuer and audience from configuration). */
import jwt from "jsonwebtoken";
import { parseClaims, type Claims } from "../../shared/auth/claims.js";
import { TOKEN_ALGORITHM, verifyToken } from "../../shared/auth/verify.js";
import type { KeyPair } from "./keys.js";

export type IssueClaims = Omit<Claims, "exp"> & { exp?: number };

export interface TokenService {
  /** Signs a token; claims are validated with the same rules the verifier applies. */
  issue(claims: IssueClaims, ttlSeconds?: number): string;
  verify(token: string): Claims;
  readonly publicKeyPem: string;
}

export interface TokenSettings {
  issuer: string;
  audience: string;
  ttlSeconds: number;
}

export function createTokenService(keys: KeyPair, settings: TokenSettings): TokenService {
  return {
    publicKeyPem: keys.publicKeyPem,
    issue(claims, ttlSeconds = settings.ttlSeconds) {
      const exp = claims.exp ?? Math.floor(Date.now() / 1000) + ttlSeconds;
      const valid = parseClaims({ ...claims, exp });
      return jwt.sign({ ...valid }, keys.privateKeyPem, {
        algorithm: TOKEN_ALGORITHM,
        issuer: settings.issuer,
        audience: settings.audience,
      });
    },
    verify(token) {
      return verifyToken(token, { publicKeyPem: keys.publicKeyPem, issuer: settings.issuer, audience: settings.audience });
    },
  };
}
