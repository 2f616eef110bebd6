/**
 * The failed-send wedge of automerge-repo 2.5.6 (AUTOMERGE-NOTES.md, issue 9), provoked directly:
 * an adapter whose send throws while the repo answers a sync message leaves the handle holding
 * an outdated document. Plain change() then fails; changeSafely() recovers and keeps writing,
 * and the document still syncs once sending works again.
 */
import { expect, it } from "vitest";
import { NetworkAdapter, Repo, type Message, type PeerId } from "@automerge/automerge-repo";
import { changeSafely, isOutdatedDocumentError } from "../../../client/safe-change.js";
import { eventually } from "./helpers.js";

/** Two in-memory adapters wired to each other; `failSends` makes send throw like a closing socket. */
class LinkedAdapter extends NetworkAdapter {
  other!: LinkedAdapter;
  failSends = false;
  isReady(): boolean {
    return true;
  }
  whenReady(): Promise<void> {
    return Promise.resolve();
  }
  connect(peerId: PeerId): void {
    this.peerId = peerId;
    queueMicrotask(() => this.other.emit("peer-candidate", { peerId, peerMetadata: {} }));
  }
  send(message: Message): void {
    if (this.failSends) throw new Error("Websocket not ready (2)");
    setTimeout(() => this.other.emit("message", message), 0);
  }
  disconnect(): void {}
}

interface Doc {
  entries: Record<string, number>;
}

it("recovers a wedged handle and keeps accepting changes", async () => {
  const a = new LinkedAdapter();
  const b = new LinkedAdapter();
  a.other = b;
  b.other = a;
  const device = new Repo({ network: [a], peerId: "device" as PeerId });
  const other = new Repo({ network: [b], peerId: "other" as PeerId });
  try {
    const source = other.create<Doc>({ entries: {} });
    await eventually(() => device.peers.length === 1 && other.peers.length === 1, "peers connected", 5_000, 10);
    const handle = await device.find<Doc>(source.url);
    handle.change((d) => {
      d.entries.first = 1;
    });
    await eventually(() => source.doc().entries.first === 1, "first change synced", 5_000, 10);

    // The device's replies now fail, as on a closing socket; a remote change arrives meanwhile.
    a.failSends = true;
    source.change((d) => {
      d.entries.remote = 2;
    });
    await new Promise((r) => setTimeout(r, 200));
    const wedged = (() => {
      try {
        handle.change((d) => {
          d.entries.probe = 0;
        });
        return false;
      } catch (err) {
        return isOutdatedDocumentError(err);
      }
    })();
    // Without the workaround this is where every later write fails.
    expect(wedged).toBe(true);

    const recovered: string[] = [];
    changeSafely(handle, (d) => {
      d.entries.afterWedge = 3;
    }, { onRecovered: (id) => recovered.push(id) });
    expect(recovered).toEqual([handle.documentId]);
    for (let i = 0; i < 5; i++) {
      changeSafely(handle, (d) => {
        d.entries[`more${i}`] = i;
      });
    }
    expect(handle.doc().entries.afterWedge).toBe(3);
    expect(handle.doc().entries.first).toBe(1);

    // Sending works again and the link is re-established (the device reconnects its adapters
    // after a recovery, so both sides start from fresh sync states): both sides converge.
    a.failSends = false;
    a.emit("peer-disconnected", { peerId: "other" as PeerId });
    b.emit("peer-disconnected", { peerId: "device" as PeerId });
    a.emit("peer-candidate", { peerId: "other" as PeerId, peerMetadata: {} });
    b.emit("peer-candidate", { peerId: "device" as PeerId, peerMetadata: {} });
    source.change((d) => {
      d.entries.nudge = 4;
    });
    await eventually(() => source.doc().entries.more4 === 4 && handle.doc().entries.remote === 2, `converged after recovery: ${JSON.stringify({ s: source.doc().entries, h: handle.doc().entries })}`, 10_000, 20);
  } finally {
    await device.shutdown().catch(() => undefined);
    await other.shutdown().catch(() => undefined);
  }
});
