/**
 * automerge-repo's DocSynchronizer awaits `handle.whenReady()` (60 s timeout) without a catch
 * when a peer syncs a document that is still loading. On a relay busy with a large team that
 * wait can run out, and Node then ends the process on the unhandled rejection: measured at
 * 100,000 entries pushed by 20 devices, the relay died mid-push. That timeout only means one
 * sync round for one document was skipped (the next message starts another), so it is logged;
 * any other unhandled rejection still ends the process, as Node would.
 */
import type { Logger } from "./log.js";

export function exitOnUnhandledExceptSyncTimeouts(logger: Logger): void {
  process.on("unhandledRejection", (reason) => {
    if (reason instanceof Error && reason.name === "TimeoutError" && reason.message.startsWith("withTimeout:")) {
      logger.warn({ err: reason.message }, "automerge-repo sync wait timed out; the document syncs on its next message");
      return;
    }
    logger.fatal({ err: reason }, "unhandled rejection");
    process.exit(1);
  });
}
