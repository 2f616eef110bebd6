/**
 * The part of `node:crypto` the client's statement checks use (shared/statement.ts), for the
 * browser build: the bundler maps `node:crypto` here (tools/build-web.mjs). Verification has to
 * stay synchronous, as it is in Node (a sync message is accepted or dropped before the repo sees
 * it), which rules out WebCrypto's promise-based `verify`; @noble/curves verifies P-256 inline.
 * Signing is the server's job and is not available here.
 */
import { p256 } from "@noble/curves/nist";
import { sha256 } from "@noble/hashes/sha256";

/** A P-256 public key: the uncompressed point of an SPKI PEM, and the SPKI's DER (key ids hash it). */
export interface KeyObject {
  readonly type: "public";
  readonly point: Uint8Array;
  readonly spki: Uint8Array;
}

/** DER prefix of an SPKI for an uncompressed P-256 point (id-ecPublicKey, prime256v1). */
const P256_SPKI_PREFIX = Uint8Array.from([
  0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03,
  0x42, 0x00,
]);

function isKeyObject(v: unknown): v is KeyObject {
  return typeof v === "object" && v !== null && (v as KeyObject).type === "public" && (v as KeyObject).point instanceof Uint8Array;
}

export function createPublicKey(input: string | KeyObject): KeyObject {
  if (isKeyObject(input)) return input;
  const body = input.replace(/-----(BEGIN|END) PUBLIC KEY-----/g, "").replace(/\s+/g, "");
  let der: Uint8Array;
  try {
    der = Uint8Array.from(atob(body), (c) => c.charCodeAt(0));
  } catch {
    throw new Error("public key is not a PEM");
  }
  if (der.length !== P256_SPKI_PREFIX.length + 65 || !P256_SPKI_PREFIX.every((b, i) => der[i] === b)) {
    throw new Error("public key is not a P-256 SPKI key");
  }
  const point = der.slice(P256_SPKI_PREFIX.length);
  // Throws on a point off the curve: a bad key is refused when it is read, not at each check.
  p256.ProjectivePoint.fromHex(point).assertValidity();
  return { type: "public", point, spki: der };
}

/** ES256 verification of an IEEE P1363 (r‖s) signature over `data`, as Node's `verify` does it. */
export function verify(
  algorithm: string,
  data: Uint8Array,
  opts: { key: KeyObject; dsaEncoding?: string },
  signature: Uint8Array,
): boolean {
  if (algorithm !== "sha256" || opts.dsaEncoding !== "ieee-p1363") throw new Error(`unsupported verification ${algorithm}/${String(opts.dsaEncoding)}`);
  if (signature.length !== 64) return false;
  try {
    // Node accepts high-S signatures, and the server signs with Node: so must this.
    return p256.verify(signature, sha256(data), opts.key.point, { lowS: false, prehash: false });
  } catch {
    return false;
  }
}

function serverOnly(): never {
  throw new Error("signing is done by the service, never in the browser");
}

export const createPrivateKey = serverOnly;
export const sign = serverOnly;
