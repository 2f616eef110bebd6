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
export function changeSafely<T>(handle: DocHandle<T>, fn: (doc: T) => void, recovery?: WedgeRecovery, options?: A.ChangeOptions<T>): void {
  try {
    handle.change(fn, options);
    return;
  } catch (err) {
    if (!isOutdatedDocumentError(err)) throw err;
  }
  recoverHandle(handle);
  recovery?.onRecovered(handle.documentId);
  handle.change(fn, options);
}

export function recoverHandle<T>(handle: DocHandle<T>): void {
  handle.update((doc) => A.clone(doc));
}

/**
 * True when the handle holds an outdated document. A document this device only receives (the
 * status document, verdicts, other devices' segments) is never written here, so changeSafely
 * would never notice its wedge, and every sync message for it would fail from then on (the repo
 * logs "error receiving message" and drops it): verdicts would silently stop arriving. A change
 * that makes no operation is the probe: Automerge checks for an outdated document first and
 * commits nothing when the callback does nothing, so on a healthy document it has no effect.
 */
export function isWedged<T>(handle: DocHandle<T>): boolean {
  if (!handle.isReady()) return false;
  try {
    A.change(handle.doc() as A.Doc<T>, () => undefined);
    return false;
  } catch (err) {
    return isOutdatedDocumentError(err);
  }
}

/** Recovers `handle` if it is wedged; true when it was. */
export function recoverIfWedged<T>(handle: DocHandle<T>, recovery?: WedgeRecovery): boolean {
  if (!isWedged(handle)) return false;
  recoverHandle(handle);
  recovery?.onRecovered(handle.documentId);
  return true;
}
