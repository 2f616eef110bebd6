/**
 * One device of the churn harness, as a process of its own: opens a device through
 * `openDevice`, records one sale per interval once told to, and reports every write and every
 * connectivity event to the harness over IPC. It installs no `uncaughtException` handler on
 * purpose: an error that escapes the client must kill this process, so the harness counts it.
 */
import type { AutomergeUrl } from "@automerge/automerge-repo";
import { openDevice } from "../../client/node.js";
import { isRunnerCommand, type RunnerConfig, type RunnerReport } from "./protocol.js";

function report(message: RunnerReport): void {
  process.send?.(message);
}

async function main(): Promise<void> {
  const raw = process.env.CHURN_DEVICE_CONFIG;
  if (!raw) throw new Error("CHURN_DEVICE_CONFIG is required");
  const cfg = JSON.parse(raw) as RunnerConfig;
  const device = await openDevice({
    serverUrl: cfg.serverUrl,
    token: cfg.token,
    rootUrl: cfg.rootUrl as AutomergeUrl,
    deviceId: cfg.deviceId,
    dataDir: cfg.dataDir,
    enrollTimeoutMs: 60_000,
  });
  device.on("online", () => report({ type: "online" }));
  device.on("offline", (e) => report({ type: "offline", reason: e.reason }));
  device.on("recovered", (e) => report({ type: "recovered", documentId: e.documentId }));

  let attempted = 0;
  let failed = 0;
  const inFlight = new Set<Promise<void>>();
  let timer: ReturnType<typeof setInterval> | undefined;

  const writeOne = (): void => {
    attempted += 1;
    const n = attempted;
    const p = device
      .recordSale({ lines: [{ item: `churn-${cfg.deviceId}`, quantity: 1, price: 100 + (n % 7), name: "Churn item" }] })
      .then(
        (sale) => report({ type: "write", ok: true, id: sale.id }),
        (err: unknown) => {
          failed += 1;
          report({ type: "write", ok: false, error: err instanceof Error ? err.message : String(err) });
        },
      )
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
  };

  const stopWriting = async (): Promise<void> => {
    if (timer) clearInterval(timer);
    timer = undefined;
    await Promise.all([...inFlight]);
  };

  process.on("message", (msg: unknown) => {
    if (!isRunnerCommand(msg)) return;
    if (msg.type === "start-writing") {
      // One sale per interval by the wall clock, whatever the link does, like a till: a tick
      // delayed by a busy machine (twenty devices on two cores) writes the sales that were due.
      if (!timer) {
        const start = Date.now();
        const tick = (): void => {
          const due = Math.floor((Date.now() - start) / cfg.intervalMs) + 1;
          while (attempted < due) writeOne();
        };
        tick();
        timer = setInterval(tick, Math.max(50, Math.floor(cfg.intervalMs / 4)));
      }
    } else if (msg.type === "stop-writing") {
      void stopWriting().then(() => report({ type: "stopped-writing", attempted, failed, pending: device.pendingCount() }));
    } else {
      void (async () => {
        await stopWriting();
        const pending = device.pendingCount();
        await device.close();
        report({ type: "closed", attempted, failed, pending });
        // Let the IPC message leave before exiting.
        process.disconnect?.();
      })();
    }
  });
  // The harness going away (its process killed) must not leave this one behind.
  process.on("disconnect", () => setTimeout(() => process.exit(0), 100).unref());
  report({ type: "ready" });
}

main().catch((err: unknown) => {
  process.stderr.write(`device runner failed to start: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(2);
});
