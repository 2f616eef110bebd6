/**
 * The peer handshake: two devices of a team prove themselves to each other with their device keys
 * and service-signed certificates before a single document message (or anything secret) moves.
 *
 *   connector → listener  peer-hello {nonce Nc, ephemeral Ec}
 *   listener  → connector peer-auth  {nonce Nl, ephemeral El, certificate Cl, sig_L("listener", Nc, Nl, Ec, El, #Cl)}
 *   connector → listener  peer-auth  {certificate Cc, sig_C("connector", Nc, Nl, Ec, El, #Cl, #Cc)}
 *   listener  → connector peer-ok    {sig_L("accepted", Nc, Nl, Ec, El, #Cl, #Cc)}
 *
 * Ec and El are ephemeral ECDH keys: what follows the handshake is sealed with keys only the two
 * signers can derive (channel.ts), so relaying a handshake gains a machine in the middle nothing.
 * The listener shows its certificate first, so a device that dials a wrong or fake address checks
 * it before revealing anything but a random nonce. Every signature covers both fresh nonces and a
 * fixed context, so no signature recorded from one session verifies in another (no replay) or in
 * another protocol. A refusal closes with a reason that names nothing ("peer refused"); the
 * precise reason stays with the side that refused.
 */
import { verifyCertificate, type CertificateClaims, type CertificateTrust } from "../../shared/auth/certificate.js";
import { EPHEMERAL_PATTERN, ephemeralKey, openChannel, type SealedChannel } from "./channel.js";
import { base64Url, pairingCode, sha256, sign, verifySignature, type DeviceKey } from "./keys.js";

export const HANDSHAKE_CONTEXT = "ledger-sync peer handshake v1";
/** Close code and reason a refused side sees, whatever the cause. */
export const REFUSED_CODE = 4403;
export const REFUSED_REASON = "peer refused";
/** Handshake frames are small JSON texts; anything bigger is not one. */
export const MAX_HANDSHAKE_FRAME = 16 * 1024;
const NONCE_BYTES = 32;
const SYNC_ROLES: ReadonlySet<string> = new Set(["member", "admin"]);

export interface PeerCredentials {
  key: DeviceKey;
  /** This device's certificate from the service (POST /api/devices/certificate). */
  certificate: string;
}

export interface PeerPolicy {
  trust: CertificateTrust;
  /** Only devices of this team are accepted. */
  team: string;
  /** A pairing code (keys.ts): only the device whose key it names is accepted. */
  pin?: string;
}

export interface PeerIdentity {
  user: string;
  team: string;
  role: string;
  device: string;
  /** The pairing code of the peer's key. */
  code: string;
}

/** Why this side refused; the message is for local logs only, the peer sees REFUSED_REASON. */
export class PeerRefusal extends Error {
  constructor(readonly reason: string) {
    super(`peer refused: ${reason}`);
    this.name = "PeerRefusal";
  }
}

/** Text frames in, text frames out; rejects on close, timeout or a frame that is not text. */
export interface HandshakeChannel {
  send(text: string): void;
  receive(): Promise<string>;
}

export function freshNonce(): string {
  return base64Url(globalThis.crypto.getRandomValues(new Uint8Array(NONCE_BYTES)));
}

export interface TranscriptParts {
  nc: string;
  nl: string;
  ec: string;
  el: string;
  hl: string;
  hc?: string;
}

/** The bytes a side signs: context, its role, both nonces, both ephemeral keys, the certificate hashes. */
export function transcript(role: "listener" | "connector" | "accepted", p: TranscriptParts): Uint8Array {
  const fields = [HANDSHAKE_CONTEXT, role, p.nc, p.nl, p.ec, p.el, p.hl, p.hc ?? ""];
  return new TextEncoder().encode(fields.join("\n"));
}

export interface Authenticated {
  peer: PeerIdentity;
  /** Seals and opens every frame after the handshake. */
  channel: SealedChannel;
}

export async function certificateHash(certificate: string): Promise<string> {
  return base64Url(await sha256(certificate));
}

/** Signed by the service, unexpired, this team, a role that syncs ledgers, the pinned key if any. */
export async function checkPeerCertificate(certificate: string, policy: PeerPolicy): Promise<CertificateClaims & { code: string }> {
  let claims: CertificateClaims;
  try {
    claims = verifyCertificate(certificate, policy.trust);
  } catch (err) {
    throw new PeerRefusal(err instanceof Error ? err.message : "certificate unverifiable");
  }
  if (claims.team !== policy.team) throw new PeerRefusal(`certificate is for team ${claims.team}, not ${policy.team}`);
  if (!SYNC_ROLES.has(claims.role)) throw new PeerRefusal(`role ${claims.role} may not sync ledgers`);
  const code = await pairingCode(claims.cnf.jwk);
  if (policy.pin !== undefined && code !== policy.pin) throw new PeerRefusal(`device ${claims.device} has key ${code}, not the paired ${policy.pin}`);
  return { ...claims, code };
}

type Frame = Record<string, unknown>;

function parseFrame(text: string, type: string, fields: readonly string[]): Frame {
  if (text.length > MAX_HANDSHAKE_FRAME) throw new PeerRefusal("handshake frame too large");
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new PeerRefusal("handshake frame is not JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new PeerRefusal("handshake frame is not an object");
  const f = value as Frame;
  if (f.type !== type) throw new PeerRefusal(`expected ${type}, got ${String(f.type).slice(0, 40)}`);
  if (f.v !== 1) throw new PeerRefusal("unsupported handshake version");
  for (const k of fields) {
    if (typeof f[k] !== "string" || (f[k] as string).length === 0) throw new PeerRefusal(`${type}.${k} missing`);
  }
  if (typeof f.nonce === "string" && !/^[A-Za-z0-9_-]{43}$/.test(f.nonce)) throw new PeerRefusal(`${type}.nonce malformed`);
  if (typeof f.ephemeral === "string" && !EPHEMERAL_PATTERN.test(f.ephemeral)) throw new PeerRefusal(`${type}.ephemeral malformed`);
  return f;
}

function identity(c: CertificateClaims & { code: string }): PeerIdentity {
  return { user: c.sub, team: c.team, role: c.role, device: c.device, code: c.code };
}

async function mustVerify(c: CertificateClaims, signature: unknown, data: Uint8Array): Promise<void> {
  if (typeof signature !== "string" || !(await verifySignature(c.cnf.jwk, signature, data))) {
    throw new PeerRefusal(`signature of device ${c.device} does not verify for this session`);
  }
}

/** The side that dialled. Resolves with the listener's identity once both sides are proven. */
export async function connectorHandshake(ch: HandshakeChannel, own: PeerCredentials, policy: PeerPolicy): Promise<Authenticated> {
  const nc = freshNonce();
  const eph = await ephemeralKey();
  const ec = eph.publicRaw;
  ch.send(JSON.stringify({ type: "peer-hello", v: 1, nonce: nc, ephemeral: ec }));
  const auth = parseFrame(await ch.receive(), "peer-auth", ["nonce", "ephemeral", "certificate", "signature"]);
  const nl = auth.nonce as string;
  const el = auth.ephemeral as string;
  if (nl === nc || el === ec) throw new PeerRefusal("listener echoed our nonce or key");
  const theirs = await checkPeerCertificate(auth.certificate as string, policy);
  const hl = await certificateHash(auth.certificate as string);
  await mustVerify(theirs, auth.signature, transcript("listener", { nc, nl, ec, el, hl }));
  // Only now, facing a proven device of our team, do we show who we are.
  const hc = await certificateHash(own.certificate);
  const signature = await sign(own.key, transcript("connector", { nc, nl, ec, el, hl, hc }));
  ch.send(JSON.stringify({ type: "peer-auth", v: 1, certificate: own.certificate, signature }));
  const ok = parseFrame(await ch.receive(), "peer-ok", ["signature"]);
  const accepted = transcript("accepted", { nc, nl, ec, el, hl, hc });
  await mustVerify(theirs, ok.signature, accepted);
  return { peer: identity(theirs), channel: await openChannel(eph, el, accepted, "connector") };
}

/** The side that accepted the socket. Resolves with the connector's identity. */
export async function listenerHandshake(ch: HandshakeChannel, own: PeerCredentials, policy: PeerPolicy): Promise<Authenticated> {
  const hello = parseFrame(await ch.receive(), "peer-hello", ["nonce", "ephemeral"]);
  const nc = hello.nonce as string;
  const ec = hello.ephemeral as string;
  const nl = freshNonce();
  const eph = await ephemeralKey();
  const el = eph.publicRaw;
  const hl = await certificateHash(own.certificate);
  ch.send(JSON.stringify({
    type: "peer-auth", v: 1, nonce: nl, ephemeral: el, certificate: own.certificate,
    signature: await sign(own.key, transcript("listener", { nc, nl, ec, el, hl })),
  }));
  const auth = parseFrame(await ch.receive(), "peer-auth", ["certificate", "signature"]);
  const theirs = await checkPeerCertificate(auth.certificate as string, policy);
  const hc = await certificateHash(auth.certificate as string);
  if (hc === hl) throw new PeerRefusal("peer presented our own certificate");
  await mustVerify(theirs, auth.signature, transcript("connector", { nc, nl, ec, el, hl, hc }));
  const accepted = transcript("accepted", { nc, nl, ec, el, hl, hc });
  const channel = await openChannel(eph, ec, accepted, "listener");
  ch.send(JSON.stringify({ type: "peer-ok", v: 1, signature: await sign(own.key, accepted) }));
  return { peer: identity(theirs), channel };
}

/**
 * A queue of incoming text frames for a handshake: `push` from the socket's message event, `fail`
 * from close/error; `receive` waits for the next one up to the deadline.
 */
export class FrameQueue {
  readonly #frames: string[] = [];
  readonly #waiters: Array<{ resolve: (t: string) => void; reject: (e: Error) => void }> = [];
  #failure: Error | undefined;
  readonly #timer: ReturnType<typeof setTimeout>;

  constructor(timeoutMs: number) {
    this.#timer = setTimeout(() => this.fail(new PeerRefusal(`handshake not finished within ${timeoutMs} ms`)), timeoutMs);
  }

  push(frame: unknown): void {
    if (typeof frame !== "string") {
      this.fail(new PeerRefusal("binary frame during the handshake"));
      return;
    }
    const w = this.#waiters.shift();
    if (w) w.resolve(frame);
    else if (this.#frames.length < 4) this.#frames.push(frame);
    else this.fail(new PeerRefusal("too many handshake frames"));
  }

  fail(err: Error): void {
    if (this.#failure) return;
    this.#failure = err;
    clearTimeout(this.#timer);
    for (const w of this.#waiters.splice(0)) w.reject(err);
  }

  done(): void {
    clearTimeout(this.#timer);
  }

  receive(): Promise<string> {
    const f = this.#frames.shift();
    if (f !== undefined) return Promise.resolve(f);
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }
}
