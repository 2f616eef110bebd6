/**
 * Device certificates: the service's signature binding a device's own public key to its user,
 * team and role, so two devices can prove who they are to each other offline without handing
 * out a bearer token. A certificate is a JWT signed with the token key, but for another audience
 * (`<audience>#peer-cert`): the relay and the API verify tokens for `<audience>` only, so a
 * certificate, which any peer gets to see, is never accepted as a token.
 */
import jwt from "jsonwebtoken";
import { isId, isTeamId, ROLES, type Role } from "./claims.js";
import { TOKEN_ALGORITHM } from "./verify.js";

export const CERT_PURPOSE = "peer-cert";

/** The audience of certificates for a token audience: never equal to it. */
export function certificateAudience(tokenAudience: string): string {
  return `${tokenAudience}#${CERT_PURPOSE}`;
}

/** A P-256 public key as a JWK, exactly the members that identify it (RFC 7638 order). */
export interface DevicePublicJwk {
  crv: "P-256";
  kty: "EC";
  x: string;
  y: string;
}

export interface CertificateClaims {
  sub: string;
  team: string;
  role: Exclude<Role, "service">;
  device: string;
  /** RFC 7800 confirmation: the key the device proves possession of. */
  cnf: { jwk: DevicePublicJwk };
  purpose: typeof CERT_PURPOSE;
  exp: number;
}

export class CertificateError extends Error {
  constructor(readonly reason: string) {
    super(`certificate refused: ${reason}`);
    this.name = "CertificateError";
  }
}

/** 32 bytes of a P-256 coordinate, base64url without padding. */
const COORDINATE = /^[A-Za-z0-9_-]{43}$/;

/** Accepts exactly a public P-256 JWK (no private part) and returns its identifying members. */
export function parseDevicePublicJwk(value: unknown): DevicePublicJwk {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new CertificateError("public key is not a JWK object");
  const k = value as Record<string, unknown>;
  if (k.kty !== "EC" || k.crv !== "P-256") throw new CertificateError("public key must be an EC P-256 JWK");
  if ("d" in k) throw new CertificateError("a private key was given where a public key belongs");
  if (typeof k.x !== "string" || !COORDINATE.test(k.x) || typeof k.y !== "string" || !COORDINATE.test(k.y)) {
    throw new CertificateError("public key coordinates malformed");
  }
  return { crv: "P-256", kty: "EC", x: k.x, y: k.y };
}

export function parseCertificateClaims(payload: unknown): CertificateClaims {
  if (typeof payload !== "object" || payload === null || Array.isArray(payload)) throw new CertificateError("payload is not an object");
  const p = payload as Record<string, unknown>;
  if (p.purpose !== CERT_PURPOSE) throw new CertificateError("not a peer certificate");
  if (!isId(p.sub)) throw new CertificateError("sub missing or malformed");
  if (!isTeamId(p.team)) throw new CertificateError("team missing or malformed");
  if (typeof p.role !== "string" || p.role === "service" || !(ROLES as readonly string[]).includes(p.role)) {
    throw new CertificateError("role missing or not a user role");
  }
  if (!isId(p.device)) throw new CertificateError("device missing or malformed");
  if (typeof p.exp !== "number" || !Number.isInteger(p.exp)) throw new CertificateError("exp missing");
  const cnf = p.cnf as { jwk?: unknown } | undefined;
  if (typeof cnf !== "object" || cnf === null) throw new CertificateError("cnf missing");
  return {
    sub: p.sub, team: p.team, role: p.role as CertificateClaims["role"], device: p.device,
    cnf: { jwk: parseDevicePublicJwk(cnf.jwk) }, purpose: CERT_PURPOSE, exp: p.exp,
  };
}

export interface CertificateTrust {
  /** PEM public key of the service that signs tokens and certificates. */
  publicKeyPem: string;
  issuer: string;
  /** The token audience; certificates are checked for `certificateAudience(audience)`. */
  audience: string;
  nowSeconds?: number;
}

/** Signature, algorithm, issuer, audience, expiry and shape; team and role are the caller's check. */
export function verifyCertificate(certificate: string, trust: CertificateTrust): CertificateClaims {
  if (typeof certificate !== "string" || certificate.length === 0 || certificate.length > 8192) {
    throw new CertificateError("missing or oversized");
  }
  let payload: unknown;
  try {
    payload = jwt.verify(certificate, trust.publicKeyPem, {
      algorithms: [TOKEN_ALGORITHM],
      issuer: trust.issuer,
      audience: certificateAudience(trust.audience),
      clockTimestamp: trust.nowSeconds,
    });
  } catch (err) {
    // jsonwebtoken names the failed check ("jwt expired", "invalid signature"), never the token.
    throw new CertificateError(err instanceof Error ? err.message : "unverifiable");
  }
  return parseCertificateClaims(payload);
}
