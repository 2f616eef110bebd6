/**
 * The device's own P-256 key pair, through WebCrypto (`globalThis.crypto.subtle`) so the same code
 * runs in a browser. The private key signs peer handshakes and never leaves the device; the
 * public key is what the service certifies.
 */
import { parseDevicePublicJwk, type DevicePublicJwk } from "../../shared/auth/certificate.js";

const ALGORITHM = { name: "ECDSA", namedCurve: "P-256" } as const;
const SIGNATURE = { name: "ECDSA", hash: "SHA-256" } as const;

export interface DeviceKey {
  privateKey: CryptoKey;
  publicJwk: DevicePublicJwk;
}

/** What a platform keeps for the device (a file in Node, IndexedDB in a browser). */
export interface StoredDeviceKey {
  /** The private JWK (with `d`): stored only where the device's data is, never sent. */
  privateJwk: JsonWebKey;
}

export async function generateDeviceKey(): Promise<{ key: DeviceKey; stored: StoredDeviceKey }> {
  const pair = (await globalThis.crypto.subtle.generateKey(ALGORITHM, true, ["sign", "verify"])) as CryptoKeyPair;
  const privateJwk = await globalThis.crypto.subtle.exportKey("jwk", pair.privateKey);
  return { key: await importDeviceKey({ privateJwk }), stored: { privateJwk } };
}

export async function importDeviceKey(stored: StoredDeviceKey): Promise<DeviceKey> {
  const jwk = stored.privateJwk;
  if (typeof jwk !== "object" || jwk === null || typeof jwk.d !== "string") throw new Error("stored device key has no private part");
  const publicJwk = parseDevicePublicJwk({ kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y });
  // Not extractable once loaded: only the stored file holds the private bytes.
  const privateKey = await globalThis.crypto.subtle.importKey("jwk", { ...jwk, key_ops: ["sign"], ext: false }, ALGORITHM, false, ["sign"]);
  return { privateKey, publicJwk };
}

export async function sign(key: DeviceKey, data: Uint8Array): Promise<string> {
  const sig = await globalThis.crypto.subtle.sign(SIGNATURE, key.privateKey, own(data));
  return base64Url(new Uint8Array(sig));
}

/** False for any malformed key or signature: a peer's bytes decide nothing but this boolean. */
export async function verifySignature(publicJwk: DevicePublicJwk, signature: string, data: Uint8Array): Promise<boolean> {
  try {
    const key = await globalThis.crypto.subtle.importKey("jwk", { ...publicJwk, ext: true }, ALGORITHM, false, ["verify"]);
    const sig = fromBase64Url(signature);
    if (sig.byteLength !== 64) return false;
    return await globalThis.crypto.subtle.verify(SIGNATURE, key, own(sig), own(data));
  } catch {
    return false;
  }
}

/** WebCrypto's types want bytes on a plain ArrayBuffer: copy when they are not. */
function own(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes.buffer instanceof ArrayBuffer ? (bytes as Uint8Array<ArrayBuffer>) : new Uint8Array(bytes);
}

export async function sha256(data: Uint8Array | string): Promise<Uint8Array> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  return new Uint8Array(await globalThis.crypto.subtle.digest("SHA-256", own(bytes)));
}

/** RFC 7638 thumbprint of a P-256 public key: members in lexical order, no spaces. */
export async function thumbprint(jwk: DevicePublicJwk): Promise<Uint8Array> {
  return sha256(`{"crv":"P-256","kty":"EC","x":"${jwk.x}","y":"${jwk.y}"}`);
}

const CODE_ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ23456789"; // no I/L/O/U/0/1: read aloud or typed from a screen

/**
 * A short code naming one device key: 8 characters from the key's thumbprint, shown by a listener
 * and typed on the tablet that connects, which then accepts only that key. 39 bits: enough to
 * tell the shop's tablets apart and to make a wrong or swapped address fail, not a secret.
 */
export async function pairingCode(jwk: DevicePublicJwk): Promise<string> {
  const t = await thumbprint(jwk);
  let n = 0n;
  for (const b of t.subarray(0, 8)) n = (n << 8n) | BigInt(b);
  let code = "";
  for (let i = 0; i < 8; i++) {
    code += CODE_ALPHABET[Number(n % BigInt(CODE_ALPHABET.length))];
    n /= BigInt(CODE_ALPHABET.length);
  }
  return `${code.slice(0, 4)}-${code.slice(4)}`;
}

/** Case, spaces and the dash do not matter when a person types a code. */
export function normalizePairingCode(input: string): string | undefined {
  const c = input.toUpperCase().replace(/[\s-]/g, "");
  if (c.length !== 8 || [...c].some((ch) => !CODE_ALPHABET.includes(ch))) return undefined;
  return `${c.slice(0, 4)}-${c.slice(4)}`;
}

/**
 * The tag in discovery beacons: the same for every device of one team under one service,
 * meaningless to anyone who does not know both.
 */
export async function teamTag(team: string, servicePublicKeyPem: string): Promise<string> {
  return base64Url(await sha256(`ledger-sync peer discovery\n${team}\n${servicePublicKeyPem.trim()}`)).slice(0, 22);
}

export function base64Url(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function fromBase64Url(text: string): Uint8Array {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) throw new Error("not base64url");
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(text.length / 4) * 4, "=");
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}
