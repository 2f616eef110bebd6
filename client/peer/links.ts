/**
 * A device's peer-to-peer links: its key and certificate, the listeners it opened and the peers it
 * dials. The Device owns one of these and forwards listen/connectPeer to it; nothing here touches
 * the team's documents except through the Repo's network adapters.
 */
import type { NetworkAdapterInterface, Repo, StorageAdapterInterface } from "@automerge/automerge-repo";
import { verifyCertificate, type CertificateClaims } from "../../shared/auth/certificate.js";
import type { BackoffOptions } from "../backoff.js";
import { ClientError } from "../errors.js";
import { loadRecord, saveRecord } from "../local-records.js";
import { ReconnectingClientAdapter, type LinkStatus } from "../ws-client-adapter.js";
import type { PeerCredentials, PeerIdentity, PeerPolicy } from "./handshake.js";
import { generateDeviceKey, importDeviceKey, normalizePairingCode, pairingCode, teamTag, type DeviceKey } from "./keys.js";
import { authenticatedPeerSocket } from "./socket.js";
import type { DiscoveryOptions, FoundPeer, PeerListener, PeerPlatform } from "./types.js";

const CERT_RECORD = "peer-certificate";
/** After a failed background renewal, the next one waits this long (an explicit certify() does not). */
const RENEW_RETRY_MS = 10 * 60_000;

/** What the device keeps of its certificate: the certificate and the key that verifies peers'. */
export interface CertificateRecord {
  certificate: string;
  /** The service's PEM public key, as the service answered it (checked against any pinned one). */
  publicKeyPem: string;
  issuer: string;
  audience: string;
  expiresAt: string;
  /** When this device got it: renewal starts at half its life. */
  certifiedAt?: string;
}

export interface PeerLinkEvents {
  status(address: string, status: LinkStatus): void;
  authenticated(address: string, peer: PeerIdentity): void;
  refused(address: string, reason: string): void;
}

export interface PeerLinksOptions {
  repo: Repo;
  platform: PeerPlatform | undefined;
  storage: StorageAdapterInterface;
  deviceId: string;
  team: string;
  /** The device's own token: sent to the service only (certify), never to a peer. */
  token: () => string;
  /** The service's address, read at each certification (a device failing over moves it). */
  serverUrl: string | (() => string);
  /** A service key the device was given at enrolment: a certificate signed otherwise is refused. */
  pinnedPublicKeyPem: () => string | undefined;
  backoff?: BackoffOptions;
  events: PeerLinkEvents;
  /**
   * Called with every peer adapter before the repo sees it: what a peer sends to server-owned
   * documents must pass the statement check (client/server-docs.ts) first.
   */
  guard: (adapter: NetworkAdapterInterface) => void;
}

/** ws(s)://host/sync or http(s)://host → the API address of the certificate route. */
export function certificateUrl(serverUrl: string): string {
  const u = new URL(serverUrl);
  u.protocol = u.protocol === "wss:" || u.protocol === "https:" ? "https:" : "http:";
  u.pathname = "/api/devices/certificate";
  u.search = "";
  u.hash = "";
  return u.toString();
}

/** A pairing code given in the address (`ws://host:port/#code=ABCD-EFGH`, QR-friendly) or apart. */
export function parsePeerAddress(address: string, code?: string): { url: string; pin?: string } {
  let u: URL;
  try {
    u = new URL(address);
  } catch {
    throw new ClientError("invalid-input", `peer address ${JSON.stringify(address.slice(0, 200))} is not a URL (ws://host:port/)`);
  }
  if (u.protocol !== "ws:" && u.protocol !== "wss:") throw new ClientError("invalid-input", `peer address must be ws:// or wss://, not ${u.protocol}`);
  const fromHash = new URLSearchParams(u.hash.replace(/^#/, "")).get("code") ?? undefined;
  const given = code ?? fromHash;
  u.hash = "";
  if (given === undefined) return { url: u.toString() };
  const pin = normalizePairingCode(given);
  if (!pin) throw new ClientError("invalid-input", `pairing code ${JSON.stringify(given.slice(0, 40))} is not 8 letters and digits like ABCD-EFGH`);
  return { url: u.toString(), pin };
}

function isCertificateRecord(v: unknown): v is CertificateRecord {
  if (typeof v !== "object" || v === null) return false;
  const r = v as Record<string, unknown>;
  return ["certificate", "publicKeyPem", "issuer", "audience", "expiresAt"].every((k) => typeof r[k] === "string");
}

/** What a device's user sees of its peer links (the rest is the Device's wiring). */
export type PeerAccess = Pick<PeerLinks, "certify" | "pairingCode" | "certificate" | "lastReason" | "announce" | "discover">;

export class PeerLinks {
  readonly #o: PeerLinksOptions;
  #key: DeviceKey | undefined;
  #record: CertificateRecord | undefined;
  #claims: CertificateClaims | undefined;
  #certifying: Promise<CertificateRecord> | undefined;
  #loaded = false;
  #retryAfterMs = 0;
  readonly #outgoing = new Map<string, ReconnectingClientAdapter>();
  readonly #listeners: PeerListener[] = [];
  readonly #stops: Array<() => void> = [];

  constructor(opts: PeerLinksOptions) {
    this.#o = opts;
  }

  /** Loads the stored key and certificate (no network). */
  async load(): Promise<void> {
    try {
      const stored = await this.#o.platform?.keyStore.load();
      if (stored) this.#key = await importDeviceKey(stored);
    } catch {
      // An unreadable key file costs the peer links (certify() then says why), never the ledger.
    }
    const record = await loadRecord(this.#o.storage, CERT_RECORD);
    if (isCertificateRecord(record)) {
      try {
        this.#adopt(record);
      } catch {
        // A stored certificate that no longer fits (another key, another pin) is as good as none.
      }
    }
    this.#loaded = true;
  }

  /** True when the device has no certificate or it is past half its life: time to ask again. */
  needsCertificate(nowMs = Date.now()): boolean {
    const c = this.#claims;
    const record = this.#record;
    if (!c || !record) return true;
    const expMs = c.exp * 1000;
    const fromMs = record.certifiedAt ? Date.parse(record.certifiedAt) : expMs - 24 * 3600_000;
    return nowMs > fromMs + (expMs - fromMs) / 2;
  }

  /**
   * Called when the service is reachable: asks for a certificate when there is none or it is half
   * used. A refusal (a device not enrolled for peer links) is not asked again for a while.
   */
  renewIfDue(nowMs = Date.now()): void {
    if (!this.#loaded || !this.#o.platform || this.#certifying || nowMs < this.#retryAfterMs || !this.needsCertificate(nowMs)) return;
    void this.certify().catch(() => {
      this.#retryAfterMs = Date.now() + RENEW_RETRY_MS;
    });
  }

  /** This device's certificate, once it has one. */
  get certificate(): CertificateRecord | undefined {
    return this.#record;
  }

  /** The pairing code of this device's key, which a team mate types to link to this device. */
  async pairingCode(): Promise<string> {
    return pairingCode((await this.#ensureKey()).publicJwk);
  }

  /**
   * Asks the service to certify this device's key (creating the key the first time), with the
   * device's own token. Needs the service; afterwards peers link offline until the certificate
   * expires.
   */
  certify(): Promise<CertificateRecord> {
    this.#certifying ??= this.#certify().finally(() => (this.#certifying = undefined));
    return this.#certifying;
  }

  async #ensureKey(): Promise<DeviceKey> {
    if (this.#key) return this.#key;
    const store = this.#o.platform?.keyStore;
    if (!store) throw new ClientError("invalid-input", "this platform keeps no device key: peer links are not available");
    const fresh = await generateDeviceKey();
    this.#key = await importDeviceKey(await store.create(fresh.stored));
    return this.#key;
  }

  async #certify(): Promise<CertificateRecord> {
    const key = await this.#ensureKey();
    const url = certificateUrl(typeof this.#o.serverUrl === "string" ? this.#o.serverUrl : this.#o.serverUrl());
    let res: Response;
    try {
      res = await fetch(url, {
        method: "POST",
        headers: { authorization: `Bearer ${this.#o.token()}`, "content-type": "application/json" },
        body: JSON.stringify({ publicKey: key.publicJwk }),
        signal: AbortSignal.timeout(15_000),
      });
    } catch (err) {
      throw new ClientError("not-certified", `cannot reach ${url} to certify this device's key: ${err instanceof Error ? err.message : String(err)}`);
    }
    const body = (await res.json().catch(() => undefined)) as Record<string, unknown> | undefined;
    if (res.status !== 201 || !body) {
      const msg = (body?.error as { message?: unknown } | undefined)?.message;
      throw new ClientError("not-certified", `the service refused to certify device ${this.#o.deviceId}: ${res.status} ${typeof msg === "string" ? msg.slice(0, 200) : ""}`.trim());
    }
    const record = {
      certificate: body.certificate, publicKeyPem: body.publicKey, issuer: body.issuer, audience: body.audience, expiresAt: body.expiresAt,
      certifiedAt: new Date().toISOString(),
    };
    if (!isCertificateRecord(record)) throw new ClientError("not-certified", "the service's certificate answer is malformed");
    this.#adopt(record);
    await saveRecord(this.#o.storage, CERT_RECORD, record);
    return record;
  }

  /** Takes a certificate only if it is for this device, this team, this key and the pinned service key. */
  #adopt(record: CertificateRecord): void {
    const pinned = this.#o.pinnedPublicKeyPem();
    if (pinned !== undefined && pinned.trim() !== record.publicKeyPem.trim()) {
      throw new ClientError("not-certified", "the certificate is signed by another key than the team's public key this device was enrolled with");
    }
    let claims: CertificateClaims;
    try {
      // Expiry is checked at each handshake; an expired stored one still tells us what to renew.
      claims = verifyCertificate(record.certificate, { publicKeyPem: record.publicKeyPem, issuer: record.issuer, audience: record.audience, nowSeconds: 0 });
    } catch (err) {
      throw new ClientError("not-certified", err instanceof Error ? err.message : "certificate unverifiable");
    }
    const key = this.#key;
    if (claims.device !== this.#o.deviceId || claims.team !== this.#o.team) {
      throw new ClientError("not-certified", `certificate is for device ${claims.device} of team ${claims.team}`);
    }
    if (!key || key.publicJwk.x !== claims.cnf.jwk.x || key.publicJwk.y !== claims.cnf.jwk.y) {
      throw new ClientError("not-certified", "certificate is for another key than this device's");
    }
    this.#record = record;
    this.#claims = claims;
  }

  #credentials(): PeerCredentials {
    const key = this.#key;
    const record = this.#record;
    if (!key || !record) throw new ClientError("not-certified", "this device has no peer certificate yet: reach the service once (device enroll) to get one");
    return { key, certificate: record.certificate };
  }

  #policy(pin?: string): PeerPolicy {
    const record = this.#record;
    if (!record) throw new ClientError("not-certified", "this device has no peer certificate yet");
    return {
      trust: { publicKeyPem: record.publicKeyPem, issuer: record.issuer, audience: record.audience },
      team: this.#o.team,
      ...(pin ? { pin } : {}),
    };
  }

  /** Accepts proven devices of the team on `host:port`; returns the bound port. */
  async listen(port: number, host: string): Promise<PeerListener> {
    const listen = this.#o.platform?.listen;
    if (!listen) throw new ClientError("invalid-input", "this platform cannot accept connections");
    if (this.#certifying) await this.#certifying.catch(() => undefined);
    this.#credentials();
    const listener = await listen({
      port, host,
      credentials: () => this.#credentials(),
      policy: () => this.#policy(),
      onAuthenticated: (remote, peer) => this.#o.events.authenticated(remote, peer),
      onRefused: (remote, reason) => this.#o.events.refused(remote, reason),
    });
    this.#o.guard(listener.adapter);
    this.#listeners.push(listener);
    this.#o.repo.networkSubsystem.addNetworkAdapter(listener.adapter);
    return listener;
  }

  #discovery(): NonNullable<PeerPlatform["discovery"]> {
    const d = this.#o.platform?.discovery;
    if (!d) throw new ClientError("invalid-input", "this platform cannot discover peers on the local network");
    return d;
  }

  async #tag(): Promise<string> {
    const record = this.#record;
    if (!record) throw new ClientError("not-certified", "this device has no peer certificate yet: reach the service once to get one");
    return teamTag(this.#o.team, record.publicKeyPem);
  }

  /** Tells team mates on the local network where this device listens (until close). */
  async announce(listeningPort: number, opts: DiscoveryOptions = {}): Promise<void> {
    const a = await this.#discovery().announce({
      ...opts, tag: await this.#tag(), device: this.#o.deviceId, code: await this.pairingCode(), listenPort: listeningPort,
    });
    this.#stops.push(() => a.stop());
  }

  /** Reports team mates announcing on the local network (not this device), until close. */
  async discover(onFound: (peer: FoundPeer) => void, opts: DiscoveryOptions = {}): Promise<void> {
    const b = await this.#discovery().browse({
      ...opts, tag: await this.#tag(),
      onFound: (peer) => {
        if (peer.device !== this.#o.deviceId) onFound(peer);
      },
    });
    this.#stops.push(() => b.stop());
  }

  /**
   * Keeps a link to another device, reconnecting like the relay link. `address` may carry the
   * listener's pairing code (`#code=`), or `code` gives it: then only that device is accepted.
   */
  connect(address: string, code?: string): void {
    const platform = this.#o.platform;
    if (!platform) throw new ClientError("invalid-input", "this platform cannot connect to peers");
    const { url, pin } = parsePeerAddress(address, code);
    if (this.#outgoing.has(address)) return;
    const adapter = new ReconnectingClientAdapter({
      url,
      // The factory ignores it: no token ever goes to a peer.
      token: () => "",
      createSocket: authenticatedPeerSocket(platform.rawSocket, {
        credentials: () => this.#credentials(),
        policy: () => this.#policy(pin),
        onAuthenticated: (peer) => this.#o.events.authenticated(address, peer),
        onRefused: (reason) => this.#o.events.refused(address, reason),
      }),
      ...(this.#o.backoff ? { backoff: this.#o.backoff } : {}),
      onStatus: (status) => this.#o.events.status(address, status),
    });
    this.#o.guard(adapter);
    this.#outgoing.set(address, adapter);
    this.#o.repo.networkSubsystem.addNetworkAdapter(adapter);
  }

  disconnect(address: string): void {
    const adapter = this.#outgoing.get(address);
    if (!adapter) return;
    this.#outgoing.delete(address);
    this.#o.repo.networkSubsystem.removeNetworkAdapter(adapter);
  }

  online(address: string): boolean {
    return this.#outgoing.get(address)?.online ?? false;
  }

  lastReason(address: string): string | undefined {
    return this.#outgoing.get(address)?.lastReason;
  }

  /** After a wedge recovery: every outgoing session starts afresh so peers resend what was dropped. */
  reconnectAll(): void {
    for (const a of this.#outgoing.values()) a.reconnectNow();
  }

  async close(): Promise<void> {
    for (const stop of this.#stops.splice(0)) stop();
    for (const l of this.#listeners.splice(0)) await l.close().catch(() => undefined);
  }
}
