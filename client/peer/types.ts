/** What a platform provides for peer-to-peer links, and what a listener gives back. */
import type { NetworkAdapterInterface } from "@automerge/automerge-repo";
import type { SocketLike } from "../socket.js";
import type { PeerCredentials, PeerIdentity, PeerPolicy } from "./handshake.js";
import type { StoredDeviceKey } from "./keys.js";

export interface ListenArgs {
  port: number;
  /** The address to bind: 127.0.0.1 (this machine only) or the shop network's (0.0.0.0, an interface's). */
  host: string;
  credentials(): PeerCredentials;
  policy(): PeerPolicy;
  onAuthenticated?(remote: string, peer: PeerIdentity): void;
  onRefused?(remote: string, reason: string): void;
}

export interface PeerListener {
  port: number;
  host: string;
  adapter: NetworkAdapterInterface;
  close(): Promise<void>;
}

/** Where the device's private key lives (a 0600 file in Node, IndexedDB in a browser). */
export interface DeviceKeyStore {
  load(): Promise<StoredDeviceKey | undefined>;
  /** Keeps a new key unless one exists already; returns the one kept. */
  create(key: StoredDeviceKey): Promise<StoredDeviceKey>;
}

/** A team mate's listener heard on the local network (a hint: the handshake still decides). */
export interface FoundPeer {
  device: string;
  code: string;
  /** ws://host:port/#code=CODE, ready for connectPeer. */
  address: string;
}

export interface DiscoveryOptions {
  /** Multicast group and UDP port of the beacons (defaults in discovery.ts; tests use their own port). */
  group?: string;
  port?: number;
}

/** Local-network discovery (Node: UDP multicast beacons, discovery.ts). */
export interface PeerDiscovery {
  /** `listenPort`: where the announced listener accepts; `port` (DiscoveryOptions): the UDP port beacons go to. */
  announce(args: { tag: string; device: string; code: string; listenPort: number } & DiscoveryOptions): Promise<{ stop(): void }>;
  browse(args: { tag: string; onFound(found: FoundPeer): void } & DiscoveryOptions): Promise<{ stop(): void }>;
}

export interface PeerPlatform {
  /** A plain socket to another device; the handshake runs on it before sync does. */
  rawSocket: (url: string) => SocketLike;
  /** Accepts devices of the team on a local address (Node only). */
  listen?: (args: ListenArgs) => Promise<PeerListener>;
  keyStore: DeviceKeyStore;
  discovery?: PeerDiscovery;
}
