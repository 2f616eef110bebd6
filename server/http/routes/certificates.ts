/**
 * Device certificates for peer-to-peer links: a device sends its own public key with its own
 * token and gets back the service's signature over (user, team, role, device, key). Peers check
 * that signature offline; no token ever travels to a peer (client/peer/handshake.ts).
 */
import { createPublicKey } from "node:crypto";
import { CertificateError, parseDevicePublicJwk, type DevicePublicJwk } from "../../../shared/auth/certificate.js";
import type { ApiDeps } from "../deps.js";
import { ApiError, type Route } from "../route.js";
import { errors } from "../schemas.js";

/** A JWK object or an SPKI PEM string, reduced to the P-256 public JWK or refused with the reason. */
export function readPublicKey(value: unknown): DevicePublicJwk {
  try {
    if (typeof value === "string") {
      if (value.length > 4096 || !value.includes("-----BEGIN PUBLIC KEY-----")) throw new CertificateError("expected an SPKI PEM public key or a JWK");
      let jwk: unknown;
      try {
        jwk = createPublicKey({ key: value, format: "pem" }).export({ format: "jwk" });
      } catch {
        throw new CertificateError("public key PEM does not parse");
      }
      return parseDevicePublicJwk(jwk);
    }
    return parseDevicePublicJwk(value);
  } catch (err) {
    throw new ApiError(400, "invalid-public-key", `body.publicKey: ${err instanceof CertificateError ? err.reason : "unreadable"}`);
  }
}

export function certificateRoutes({ accounts, tokens }: ApiDeps): Route[] {
  return [
    {
      method: "post",
      path: "/devices/certificate",
      summary: "Certify this device's own public key for peer-to-peer links (the device's token, with a device claim)",
      tag: "accounts",
      body: { type: "object", required: ["publicKey"], properties: { publicKey: { oneOf: [{ type: "string" }, { type: "object" }] } } },
      authorize: (c) => c.role !== "service" && c.device !== undefined,
      responses: {
        201: {
          description: "certified",
          schema: {
            type: "object",
            required: ["certificate", "expiresAt", "team", "device", "publicKey", "issuer", "audience"],
            properties: {
              certificate: { type: "string" }, expiresAt: { type: "string" }, team: { type: "string" }, device: { type: "string" },
              publicKey: { type: "string" }, issuer: { type: "string" }, audience: { type: "string" },
            },
          },
        },
        ...errors(400, 401, 403),
      },
      async handle({ body, claims }) {
        const c = claims!;
        const role = c.role;
        if (role === "service" || c.device === undefined) throw new ApiError(403, "forbidden", "a device token is required");
        const jwk = readPublicKey(body.publicKey);
        // The token names the device; the enrolment record says it is still this user's device.
        const enrolled = await accounts.findDevice(c.team, c.device);
        if (!enrolled || enrolled.user !== c.sub) {
          throw new ApiError(403, "not-enrolled", `device ${c.device} is not enrolled for user ${c.sub} in team ${c.team}`);
        }
        const { certificate, exp } = tokens.certify({ sub: c.sub, team: c.team, role, device: c.device }, jwk);
        return {
          status: 201,
          body: {
            certificate, expiresAt: new Date(exp * 1000).toISOString(), team: c.team, device: c.device,
            publicKey: tokens.publicKeyPem, issuer: tokens.issuer, audience: tokens.audience,
          },
        };
      },
    },
  ];
}
