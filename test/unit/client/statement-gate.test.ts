/**
 * The peer message filter on its own: real Automerge sync messages from a "server" copy and from
 * a team mate's fork, checked against a device Repo that holds the signed document.
 */
import { generateKeyPairSync } from "node:crypto";
import * as A from "@automerge/automerge";
import { Repo, type DocumentId, type Message, type PeerId } from "@automerge/automerge-repo";
import { afterEach, describe, expect, it } from "vitest";
import { StatementGate, type DroppedMessage } from "../../../client/statements.js";
import { canonicalJson, signCanonical, STATEMENT_FIELD } from "../../../shared/statement.js";

const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
const publicKeyPem = publicKey.export({ type: "spki", format: "pem" }).toString();

type Status = { type: string; stock: Record<string, number>; [STATEMENT_FIELD]?: unknown };

/** The server's way of writing: change, then sign the result with the next version, in one change. */
function serverChange(doc: A.Doc<Status>, docId: string, fn: (d: Status) => void): A.Doc<Status> {
  return A.change(doc, (d) => {
    fn(d);
    const prev = (d[STATEMENT_FIELD] as { version?: number } | undefined)?.version ?? 0;
    const version = prev + 1;
    d[STATEMENT_FIELD] = { version, signature: signCanonical(privateKey, docId, version, canonicalJson(d, STATEMENT_FIELD)) };
  });
}

/** What a peer holding `from` sends to a peer holding `to`: a sync message with the changes `to` lacks. */
function syncMessage(from: A.Doc<unknown>, to: A.Doc<unknown>, documentId: string): Message {
  // Every change the receiver lacks, stated outright. The sync protocol's own answer skips what
  // its Bloom filter says the receiver has, and a false positive (about 1 in 100) would leave this
  // test a message with nothing to check.
  const data = A.encodeSyncMessage({ heads: A.getHeads(from), need: [], have: [], changes: A.getChanges(to, from) });
  return { type: "sync", senderId: "peer-x" as PeerId, targetId: "me" as PeerId, documentId: documentId as DocumentId, data };
}

const repos: Repo[] = [];
afterEach(async () => {
  for (const r of repos.splice(0)) await r.shutdown();
});

function setUp(held: A.Doc<Status>, docId: DocumentId, opts: { server?: string[]; member?: string[] } = {}) {
  const repo = new Repo({ network: [] });
  repos.push(repo);
  repo.import(A.save(held), { docId });
  const drops: DroppedMessage[] = [];
  const gate = new StatementGate({
    repo,
    publicKeyPem,
    serverDocuments: () => new Set(opts.server ?? [docId]),
    memberDocuments: () => new Set(opts.member ?? []),
    onDrop: (d) => drops.push(d),
  });
  return { gate, drops };
}

const DOC = "4NMNnkMhL8jXrdJ9jamS58PAVdXu" as DocumentId;

describe("StatementGate.filterPeerMessage", () => {
  const v1 = serverChange(A.from<Status>({ type: "status", stock: {} }), DOC, (d) => (d.stock.tea = 10));
  const v2 = serverChange(A.clone(v1), DOC, (d) => (d.stock.tea = 8));

  it("passes signed server changes a peer carries", () => {
    const { gate, drops } = setUp(v1, DOC);
    expect(gate.filterPeerMessage(syncMessage(v2, v1, DOC))).toBe(true);
    expect(drops).toEqual([]);
  });

  it("drops a team mate's edit, an old signed state replayed over a newer one, and a statement moved from another document", () => {
    const forged = A.change(A.clone(v2), (d) => (d.stock.tea = 500));
    const { gate, drops } = setUp(v2, DOC);
    expect(gate.filterPeerMessage(syncMessage(forged, v2, DOC))).toBe(false);

    // The v1 content and statement written again on top of v2.
    const replay = A.change(A.clone(v2), (d) => {
      d.stock.tea = 10;
      d[STATEMENT_FIELD] = JSON.parse(JSON.stringify(v1[STATEMENT_FIELD])) as unknown;
    });
    expect(gate.filterPeerMessage(syncMessage(replay, v2, DOC))).toBe(false);

    const OTHER = "2k5f3vW9ZzKJrBnXKxQ9JHRZPbmG";
    const elsewhere = serverChange(A.from<Status>({ type: "status", stock: {} }), OTHER, (d) => (d.stock.tea = 3));
    const moved = A.change(A.clone(v2), (d) => {
      d.stock.tea = 3;
      d[STATEMENT_FIELD] = JSON.parse(JSON.stringify(elsewhere[STATEMENT_FIELD])) as unknown;
    });
    expect(gate.filterPeerMessage(syncMessage(moved, v2, DOC))).toBe(false);
    expect(drops.map((d) => d.reason)).toEqual([
      expect.stringMatching(/without a valid server statement \(bad-signature\)/),
      expect.stringMatching(/version 1 is older than the held 2/),
      expect.stringMatching(/without a valid server statement \(bad-signature\)/),
    ]);
  });

  it("drops a forged change sent without the genuine one it builds on (it would wait, then apply unchecked)", () => {
    const forged = A.change(A.clone(v2), (d) => (d.stock.tea = 500));
    const full = syncMessage(forged, v1, DOC);
    const decoded = A.decodeSyncMessage(full.data!);
    const message = { ...full, data: A.encodeSyncMessage({ ...decoded, changes: [A.getLastLocalChange(forged)!] }) };
    const { gate, drops } = setUp(v1, DOC);
    expect(gate.filterPeerMessage(message)).toBe(false);
    expect(drops[0]?.reason).toMatch(/missing dependencies/);
  });

  it("checks a server document even when the member-writable registry lists it", () => {
    const forged = A.change(A.clone(v2), (d) => (d.stock.tea = 500));
    const { gate } = setUp(v2, DOC, { member: [DOC] });
    expect(gate.filterPeerMessage(syncMessage(forged, v2, DOC))).toBe(false);
  });

  it("checks a document it does not know yet when its content claims to be the server's", () => {
    const UNKNOWN = "3Q1UMp5kUoSbSdfhzG6p5mzFjyXS" as DocumentId;
    const { gate } = setUp(v2, DOC);
    const fake = A.from<Status>({ type: "verdicts", stock: {} });
    expect(gate.filterPeerMessage(syncMessage(fake, A.init(), UNKNOWN))).toBe(false);
    const segment = A.from<Record<string, unknown>>({ type: "ledger-segment", entries: {} });
    expect(gate.filterPeerMessage(syncMessage(segment, A.init(), UNKNOWN))).toBe(true);
  });
});
