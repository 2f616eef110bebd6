/** Issues and verifies the service's tokens (ES256, issuer and audience from configuration). */
import jwt from "jsonwebtoken";
import { certificateAudience, CERT_PURPOSE, parseCertificateClaims, type DevicePublicJwk } from "../../shared/auth/certificate.js";
import { parseClaims, type Claims } from "../../shared/auth/claims.js";
import { TOKEN_ALGORITHM, verifyToken } from "../../shared/auth/verify.js";
import type { KeyPair } from "./keys.js";

export type IssueClaims = Omit<Claims, "exp"> & { exp?: number };

/** Who a device certificate is for; `exp` only to make expired ones in tests. */
export interface CertifyClaims {
  sub: string;
  team: string;
  role: "member" | "auditor" | "admin";
  device: string;
  exp?: number;
}

export interface TokenService {
  /** Signs a token; claims are validated with the same rules the verifier applies. */
  issue(claims: IssueClaims, ttlSeconds?: number): string;
  verify(token: string): Claims;
  /**
   * Signs a device certificate (shared/auth/certificate.ts) binding `publicJwk` to the device.
   * Its audience differs from tokens', so it never opens the relay or the API.
   */
  certify(claims: CertifyClaims, publicJwk: DevicePublicJwk, ttlSeconds?: number): { certificate: string; exp: number };
  readonly publicKeyPem: string;
  readonly issuer: string;
  readonly audience: string;
}

export interface TokenSettings {
  issuer: string;
  audience: string;
  ttlSeconds: number;
  certTtlSeconds?: number;
}

const DEFAULT_CERT_TTL_SECONDS = 7 * 24 * 3600;

export function createTokenService(keys: KeyPair, settings: TokenSettings): TokenService {
  return {
    publicKeyPem: keys.publicKeyPem,
    issuer: settings.issuer,
    audience: settings.audience,
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
    certify(claims, publicJwk, ttlSeconds = settings.certTtlSeconds ?? DEFAULT_CERT_TTL_SECONDS) {
      const exp = claims.exp ?? Math.floor(Date.now() / 1000) + ttlSeconds;
      const valid = parseCertificateClaims({ ...claims, cnf: { jwk: publicJwk }, purpose: CERT_PURPOSE, exp });
      const certificate = jwt.sign({ ...valid }, keys.privateKeyPem, {
        algorithm: TOKEN_ALGORITHM,
        issuer: settings.issuer,
        audience: certificateAudience(settings.audience),
      });
      return { certificate, exp };
    },
  };
}
