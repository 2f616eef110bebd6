/**
 * Plain automerge-repo clients for the workloads: the same client code against our relay (token
 * in the URL) and the bare one, so the relays are the only difference.
 */
import { randomUUID } from "node:crypto";
import { Repo, type DocHandle, type PeerId, type StorageAdapterInterface } from "@automerge/automerge-repo";
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket";
import { until } from "./progress.js";

/**
 * The stock adapter rethrows ws errors other than ECONNREFUSED from an event handler, which kills
 * the process when a relay goes away (AUTOMERGE-NOTES.md); a benchmark must survive that.
 */
export class QuietClientAdapter extends WebSocketClientAdapter {
  override onError = (): void => {};
}

export interface Client {
  repo: Repo;
  peerId: PeerId;
  adapter: QuietClientAdapter;
  close(): Promise<void>;
}

export function offlineRepo(name: string, storage?: StorageAdapterInterface): Repo {
  return new Repo({ network: [], peerId: `${name}-${randomUUID().slice(0, 8)}` as PeerId, ...(storage ? { storage } : {}) });
}

/** Connects `repo` (or a new one) to `url` and resolves once the relay answered the join. */
export async function connect(url: string, name: string, repo?: Repo, timeoutMs = 30_000): Promise<Client> {
  const r = repo ?? offlineRepo(name);
  const adapter = new QuietClientAdapter(url, 500);
  const peer = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name}: no answer from the relay in ${timeoutMs} ms`)), timeoutMs);
    r.networkSubsystem.once("peer", () => {
      clearTimeout(timer);
      resolve();
    });
  });
  r.networkSubsystem.addNetworkAdapter(adapter);
  await peer;
  return {
    repo: r,
    peerId: r.peerId,
    adapter,
    async close() {
      // Shutting a Repo down mid-sync can emit a ws `error` with no listener, which would kill
      // the bench (AUTOMERGE-NOTES.md); the socket is going away, its errors are expected.
      adapter.socket?.on("error", () => undefined);
      await r.shutdown().catch(() => undefined);
    },
  };
}

/** True when the relay (the only peer) has told us it holds exactly our heads of `handle`. */
export function relayHolds(repo: Repo, handle: DocHandle<unknown>): boolean {
  const relay = repo.peers[0];
  if (!relay) return false;
  const storageId = repo.getStorageIdOfPeer(relay);
  if (!storageId) return false;
  const info = handle.getSyncInfo(storageId);
  if (!info) return false;
  const heads = handle.heads();
  return info.lastHeads.length === heads.length && info.lastHeads.every((h) => heads.includes(h));
}

export async function waitRelayHolds(repo: Repo, handles: readonly DocHandle<unknown>[], what: string, ms: number): Promise<void> {
  await until(() => handles.every((h) => relayHolds(repo, h)), what, ms, 20);
}
