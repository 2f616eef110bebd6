/**
 * The sealed channel a handshake leaves behind: both devices mixed ephemeral ECDH keys into the
 * signed transcript, so only they hold the session keys. Every sync frame after the handshake is
 * AES-GCM under a per-direction key with a counter nonce: a machine in the middle that relayed the
 * handshake can neither read the team's documents nor insert, drop, reorder or replay a frame
 * (the next frame fails to open and the link is dropped). WebCrypto only, so it runs in a browser.
 */
import { base64Url, fromBase64Url, sha256 } from "./keys.js";

const ECDH = { name: "ECDH", namedCurve: "P-256" } as const;

export interface Ephemeral {
  privateKey: CryptoKey;
  /** Uncompressed P-256 point, base64url: what goes in the hello. */
  publicRaw: string;
}

export async function ephemeralKey(): Promise<Ephemeral> {
  const pair = (await globalThis.crypto.subtle.generateKey(ECDH, false, ["deriveBits"])) as CryptoKeyPair;
  const raw = new Uint8Array(await globalThis.crypto.subtle.exportKey("raw", pair.publicKey));
  return { privateKey: pair.privateKey, publicRaw: base64Url(raw) };
}

/** 65 bytes, uncompressed point: base64url of 87 characters. */
export const EPHEMERAL_PATTERN = /^[A-Za-z0-9_-]{87}$/;

type Direction = "connector-to-listener" | "listener-to-connector";

async function directionKey(secret: CryptoKey, salt: Uint8Array<ArrayBuffer>, direction: Direction, usage: "encrypt" | "decrypt"): Promise<CryptoKey> {
  return globalThis.crypto.subtle.deriveKey(
    { name: "HKDF", hash: "SHA-256", salt, info: new TextEncoder().encode(`ledger-sync peer ${direction}`) },
    secret,
    { name: "AES-GCM", length: 256 },
    false,
    [usage],
  );
}

function counterIv(n: number): Uint8Array<ArrayBuffer> {
  const iv = new Uint8Array(12);
  new DataView(iv.buffer).setBigUint64(4, BigInt(n));
  return iv;
}

/**
 * Frames sealed and opened strictly in call order (WebCrypto may finish out of order): callers
 * chain their `send` on the returned promise and frames go out as they were given.
 */
export class SealedChannel {
  readonly #sendKey: CryptoKey;
  readonly #receiveKey: CryptoKey;
  #sent = 0;
  #received = 0;
  #sendTail: Promise<unknown> = Promise.resolve();
  #receiveTail: Promise<unknown> = Promise.resolve();
  #broken = false;

  constructor(sendKey: CryptoKey, receiveKey: CryptoKey) {
    this.#sendKey = sendKey;
    this.#receiveKey = receiveKey;
  }

  seal(plain: Uint8Array): Promise<Uint8Array> {
    const iv = counterIv(this.#sent++);
    const data = new Uint8Array(plain);
    const next = this.#sendTail.then(async () => new Uint8Array(await globalThis.crypto.subtle.encrypt({ name: "AES-GCM", iv }, this.#sendKey, data)));
    this.#sendTail = next.catch(() => undefined);
    return next;
  }

  /** Rejects for a frame not sealed by the other end of this session as the next one; then every later one too. */
  open(sealed: Uint8Array): Promise<Uint8Array> {
    const iv = counterIv(this.#received++);
    const data = new Uint8Array(sealed);
    const next = this.#receiveTail.then(async () => {
      if (this.#broken) throw new Error("channel broken by an earlier frame");
      try {
        return new Uint8Array(await globalThis.crypto.subtle.decrypt({ name: "AES-GCM", iv }, this.#receiveKey, data));
      } catch {
        this.#broken = true;
        throw new Error("a frame failed its integrity check (altered, replayed, or not from the authenticated peer)");
      }
    });
    this.#receiveTail = next.catch(() => undefined);
    return next;
  }
}

/** Both session keys from our ephemeral private key, their public one, and the signed transcript. */
export async function openChannel(own: Ephemeral, theirsRaw: string, transcriptBytes: Uint8Array, role: "connector" | "listener"): Promise<SealedChannel> {
  const theirs = await globalThis.crypto.subtle.importKey("raw", new Uint8Array(fromBase64Url(theirsRaw)), ECDH, false, []);
  const bits = await globalThis.crypto.subtle.deriveBits({ name: "ECDH", public: theirs }, own.privateKey, 256);
  const secret = await globalThis.crypto.subtle.importKey("raw", bits, "HKDF", false, ["deriveKey"]);
  const salt = new Uint8Array(await sha256(transcriptBytes));
  const out: Direction = role === "connector" ? "connector-to-listener" : "listener-to-connector";
  const back: Direction = role === "connector" ? "listener-to-connector" : "connector-to-listener";
  return new SealedChannel(await directionKey(secret, salt, out, "encrypt"), await directionKey(secret, salt, back, "decrypt"));
}
