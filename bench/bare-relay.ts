/**
 * The baseline: a bare automerge-repo relay, the shape of the public sync server (Repo +
 * WebSocket server adapter on a ws server + file storage), no auth, no checks. Run as a process
 * of its own so the bench measures it the way it measures ours (own event loop, own memory).
 *
 *   DATA_DIR=... tsx bench/bare-relay.ts   → logs {"msg":"listening","port":N}
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { Repo, type PeerId } from "@automerge/automerge-repo";
import { NodeWSServerAdapter } from "@automerge/automerge-repo-network-websocket";
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs";
import { WebSocketServer } from "ws";

const dataDir = process.env.DATA_DIR ?? "bare-relay-data";
const server = http.createServer((_req, res) => res.writeHead(404).end());
const wss = new WebSocketServer({ noServer: true });
server.on("upgrade", (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => wss.emit("connection", ws, req)));
const repo = new Repo({
  network: [new NodeWSServerAdapter(wss as never)],
  storage: new NodeFSStorageAdapter(path.join(dataDir, "automerge")),
  peerId: `bare-relay-${process.pid}` as PeerId,
  // The public sync server's policy: share nothing unasked, answer every request.
  sharePolicy: async () => false,
});

server.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => {
  const port = (server.address() as AddressInfo).port;
  process.stdout.write(`${JSON.stringify({ msg: "listening", port })}\n`);
});

const stop = async (): Promise<void> => {
  for (const ws of wss.clients) ws.terminate();
  wss.close();
  await repo.shutdown().catch(() => undefined);
  server.close();
  process.exit(0);
};
process.on("SIGTERM", () => void stop());
process.on("SIGINT", () => void stop());
