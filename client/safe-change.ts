/**
 * Changes that survive a wedged handle. automerge-repo 2.5.6 can leave a handle holding an
 * outdated document when sending a sync reply throws inside `DocHandle.update` (AUTOMERGE-NOTES.md):
 * every later `change()` then throws "Attempting to change an outdated document". Our own
 * network adapter no longer throws on send (ws-client-adapter.ts), but any adapter that does
 * (a third-party one, a future regression) must not stop a till from recording sales.
 *
 * Recovery: replace the handle's document with a fork at the heads it still has. Nothing written
 * locally is lost (our changes are in those heads); changes received in the failed update are
 * dropped from memory and arrive again through the sync protocol, which asks for what it lacks.
 */
import { next as A } from "@automerge/automerge";
import type { DocHandle } from "@automerge/automerge-repo";

export interface WedgeRecovery {
  onRecovered(documentId: string): void;
}

export function isOutdatedDocumentError(err: unknown): boolean {
  return err instanceof Error && err.message.includes("Attempting to change an outdated document");
}

/** Runs `fn` as a change; on a wedged handle, recovers it once and retries. */
export function changeSafely<T>(handle: DocHandle<T>, fn: (doc: T) => void, recovery?: WedgeRecovery): void {
  try {
    handle.change(fn);
    return;
  } catch (err) {
    if (!isOutdatedDocumentError(err)) throw err;
  }
  recoverHandle(handle);
  recovery?.onRecovered(handle.documentId);
  handle.change(fn);
}

export function recoverHandle<T>(handle: DocHandle<T>): void {
  handle.update((doc) => A.clone(doc));
}
