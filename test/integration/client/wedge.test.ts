/**
 * The failed-send wedge of automerge-repo 2.5.6 (AUTOMERGE-NOTES.md, issue 9), provoked directly:
 * an adapter whose send throws while the repo answers a sync message leaves the handle holding
 * an outdated document. Plain change() then fails; changeSafely() recovers and keeps writing,
 * and the document still syncs once sending works again.
 *
 * Each workaround has a test here that fails without it:
 * - ReconnectingClientAdapter.send swallows a throwing socket send (the prevention);
 * - Device writes go through changeSafely (recovery on write);
 * - Device probes the documents it never writes and recovers them (recovery without a write).
 */
import { afterAll, expect, it } from "vitest";
import { NetworkAdapter, Repo, type Message, type PeerId } from "@automerge/automerge-repo";
import type { CatalogDoc } from "../../../shared/docs.js";
import { nodePlatform, nodeRelaySocket } from "../../../client/node.js";
import { Device } from "../../../client/device.js";
import { changeSafely, isOutdatedDocumentError, isWedged } from "../../../client/safe-change.js";
import type { SocketFactory, SocketLike } from "../../../client/socket.js";
import { ReconnectingClientAdapter } from "../../../client/ws-client-adapter.js";
import { createTeam, eventually, relayEntries, removeTmpDirs, startTestRelay, tmpDir, type TestRelay } from "./helpers.js";

const relays: TestRelay[] = [];
afterAll(async () => {
  for (const r of relays.splice(0)) await r.close();
  await removeTmpDirs();
});

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

/** Node sockets to the relay whose send can be made to throw while still reporting OPEN. */
function failingSockets(): { factory: SocketFactory; failSends: boolean; thrown: number } {
  const ctl = {
    failSends: false,
    thrown: 0,
    factory: ((url, token) => {
      const real = nodeRelaySocket(url, token);
      const wrapped: SocketLike = {
        get binaryType() {
          return real.binaryType;
        },
        set binaryType(v: string) {
          real.binaryType = v;
        },
        get readyState() {
          return real.readyState;
        },
        send(data: Uint8Array) {
          if (ctl.failSends) {
            ctl.thrown += 1;
            throw new Error("Websocket not ready");
          }
          real.send(data);
        },
        close: (code?: number, reason?: string) => real.close(code, reason),
        addEventListener: ((type: "open", listener: () => void) => real.addEventListener(type, listener)) as SocketLike["addEventListener"],
      };
      return wrapped;
    }) as SocketFactory,
  };
  return ctl;
}

it("our adapter: a socket send that throws while a sync reply goes out does not wedge the document", async () => {
  const relay = await startTestRelay();
  relays.push(relay);
  const team = await createTeam(relay, "shop-wedge-adapter");
  const sockets = failingSockets();
  const adapter = new ReconnectingClientAdapter({
    url: relay.service.syncUrl,
    token: () => team.token("till-a"),
    createSocket: sockets.factory,
    backoff: { baseMs: 50, maxMs: 200 },
  });
  const repo = new Repo({ network: [adapter], peerId: "device-till-a" as PeerId });
  try {
    await eventually(() => adapter.online, "device online", 10_000, 20);
    const handle = await repo.find<CatalogDoc>(team.catalogUrl);
    const server = await relay.service.repo.find<CatalogDoc>(team.catalogUrl);

    // A change arrives while every send on the socket throws: the device applies it and its
    // reply (the one that wedges the stock stack) fails inside DocHandle.update.
    sockets.failSends = true;
    server.change((d) => {
      d.items.remote = { name: "from the server" } as CatalogDoc["items"][string];
    });
    await eventually(() => sockets.thrown > 0 && handle.doc().items.remote !== undefined, "remote change applied while sends throw", 10_000, 20);

    // Plain change(), no recovery: the handle was never wedged.
    expect(isWedged(handle)).toBe(false);
    handle.change((d) => {
      d.items.local = { name: "after the failed send" } as CatalogDoc["items"][string];
    });
    sockets.failSends = false;
    await eventually(() => server.doc().items.local !== undefined, "local change reaches the relay after reconnecting", 15_000, 50);
  } finally {
    await repo.shutdown().catch(() => undefined);
  }
});

it("device: a wedged own segment keeps recording sales, a wedged read-only document recovers without a write, nothing is lost", async () => {
  const relay = await startTestRelay();
  relays.push(relay);
  const team = await createTeam(relay, "shop-wedge-device");
  const device = await Device.open({
    serverUrl: relay.service.url,
    token: team.token("till-d"),
    rootUrl: team.rootUrl,
    deviceId: "till-d",
    platform: nodePlatform(await tmpDir("wedge-device")),
  });
  // A second path to the device through an adapter that throws on send, like the stock one.
  const a = new LinkedAdapter();
  const b = new LinkedAdapter();
  a.other = b;
  b.other = a;
  const intruder = new Repo({ network: [b], peerId: "other" as PeerId });
  const recovered: string[] = [];
  device.on("recovered", (e) => recovered.push(e.documentId));
  try {
    const sales: string[] = [];
    for (let i = 0; i < 3; i++) sales.push((await device.recordSale({ lines: [{ item: "w-1", quantity: 1, price: 100, name: "Tea" }] })).id);
    const segUrl = device.currentSegment()!.url;
    device.repo.networkSubsystem.addNetworkAdapter(a);
    // The intruder announced itself before `a` joined the device's repo: announce it again.
    a.emit("peer-candidate", { peerId: "other" as PeerId, peerMetadata: {} });
    await eventually(() => intruder.peers.length === 1 && device.repo.peers.includes("other" as PeerId), "linked peer connected", 5_000, 10);
    const otherSeg = await intruder.find<Record<string, unknown>>(segUrl);
    const otherStatus = await intruder.find<Record<string, unknown>>(team.statusUrl);

    a.failSends = true;
    otherSeg.change((d) => {
      d.note = "poke";
    });
    otherStatus.change((d) => {
      d.note = "poke";
    });
    const seg = await device.repo.find<unknown>(segUrl);
    const status = await device.repo.find<unknown>(team.statusUrl);
    await eventually(() => isWedged(seg) && isWedged(status), "segment and status wedged by the failed sends", 5_000, 10);

    // Recovery on write: the sale is recorded, the earlier ones are still there.
    sales.push((await device.recordSale({ lines: [{ item: "w-1", quantity: 1, price: 100, name: "Tea" }] })).id);
    expect(recovered).toContain(seg.documentId);
    const own = new Set(device.ownEntries().map((e) => e.entry.id));
    for (const id of sales) expect(own.has(id), `entry ${id} kept`).toBe(true);

    // Recovery without a write: nobody writes the status document here.
    await eventually(() => recovered.includes(status.documentId) && !isWedged(status), "status document recovered by the probe", 15_000, 50);

    // Every sale, before and after the wedge, reaches the relay.
    device.repo.networkSubsystem.removeNetworkAdapter(a);
    await device.whenSynced(30_000);
    const held = await relayEntries(relay, team.registryUrl);
    for (const id of sales) expect(held.entries.has(id), `relay holds ${id}`).toBe(true);
  } finally {
    await device.close();
    await intruder.shutdown().catch(() => undefined);
  }
});
