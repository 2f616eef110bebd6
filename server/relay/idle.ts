/**
 * Unloads documents nobody touched for a while, so the relay's memory follows the working set
 * rather than every document it ever served. Flushes first: an unloaded document is on disk, and
 * comes back whole from there when a peer asks again (test/integration/relay/idle-unload.test.ts).
 */
import type { Repo } from "@automerge/automerge-repo";
import type { DocumentId } from "@automerge/automerge-repo";
import type { Logger } from "../log.js";
import type { DocumentStorage } from "./storage.js";

export interface IdleUnloader {
  touch(documentId: string): void;
  /** One sweep now (tests); resolves with the number of documents unloaded. */
  sweep(): Promise<number>;
  stop(): void;
}

export function startIdleUnloader(repo: Repo, storage: DocumentStorage, idleMs: number, logger: Logger): IdleUnloader {
  const touched = new Map<string, number>();
  let running = false;

  async function sweep(): Promise<number> {
    if (running) return 0;
    running = true;
    let unloaded = 0;
    try {
      const now = Date.now();
      for (const [documentId, handle] of Object.entries(repo.handles)) {
        const last = touched.get(documentId);
        if (last === undefined) {
          touched.set(documentId, now);
          continue;
        }
        if (now - last < idleMs || !handle.isReady()) continue;
        try {
          await repo.flush([documentId as DocumentId]);
          // A message may have arrived during the flush: then it is not idle any more.
          if (touched.get(documentId) !== last) continue;
          // automerge-repo 2.5's unload empties the handle's document and emits heads-changed and
          // change for it: the Repo's save listener then wrote the empty document over the stored
          // one (an empty snapshot, older chunks deleted) and the synchronizer announced it to
          // peers. The handle is discarded here, so nobody needs its events any more.
          handle.removeAllListeners();
          await repo.removeFromCache(documentId as DocumentId);
          storage.evict(documentId);
          touched.delete(documentId);
          unloaded++;
        } catch (err) {
          logger.warn({ err, documentId }, "could not unload idle document");
        }
      }
      if (unloaded > 0) logger.info({ unloaded, loaded: Object.keys(repo.handles).length }, "unloaded idle documents");
    } finally {
      running = false;
    }
    return unloaded;
  }

  const timer = setInterval(() => void sweep(), Math.max(50, Math.floor(idleMs / 2)));
  timer.unref();
  return {
    touch: (documentId) => void touched.set(documentId, Date.now()),
    sweep,
    stop: () => clearInterval(timer),
  };
}
