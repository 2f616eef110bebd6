/**
 * Small JSON records the device keeps beside its documents, in the same storage adapter (files
 * in Node, IndexedDB in a browser), under a key prefix automerge-repo never uses.
 */
import type { StorageAdapterInterface } from "@automerge/automerge-repo";

const PREFIX = "ledger-device";

export async function loadRecord(storage: StorageAdapterInterface, name: string): Promise<unknown> {
  const bytes = await storage.load([PREFIX, name]);
  if (!bytes) return undefined;
  try {
    return JSON.parse(new TextDecoder().decode(bytes)) as unknown;
  } catch {
    // A torn write of a record is treated as absent; every record can be rebuilt.
    return undefined;
  }
}

export async function saveRecord(storage: StorageAdapterInterface, name: string, value: unknown): Promise<void> {
  await storage.save([PREFIX, name], new TextEncoder().encode(JSON.stringify(value)));
}
