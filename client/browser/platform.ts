/**
 * The browser platform of the device client: documents in IndexedDB, the browser's WebSocket to
 * the relay (the token goes in the query, the one place a browser socket can carry it), and no
 * peer links (a browser can neither listen nor open raw sockets).
 */
import { IndexedDBStorageAdapter } from "@automerge/automerge-repo-storage-indexeddb";
import type { Platform } from "../device.js";
import { browserSocketFactory, type SocketLike } from "../socket.js";

/** One IndexedDB database per signed-in device, so two sign-ins on one browser never mix. */
export function browserPlatform(databaseName: string): Platform {
  return {
    storage: new IndexedDBStorageAdapter(databaseName, "documents"),
    relaySocket: browserSocketFactory(globalThis.WebSocket as unknown as new (url: string) => SocketLike),
  };
}
