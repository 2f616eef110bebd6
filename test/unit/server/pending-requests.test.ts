/** Requests waiting for a document the relay does not know yet: only their identity, bounded per session, token and in total. */
import { describe, expect, it } from "vitest";
import { PendingRequests, type PendingRequest } from "../../../server/relay/pending-requests.js";

const wide = { perConnection: 1000, perToken: 1000, total: 1000 };
const req = (documentId: string, session: string, principal = `p-${session}`): PendingRequest => ({ documentId, session, principal });
const sessions = (rs: PendingRequest[]): string[] => rs.map((r) => r.session).sort();

describe("PendingRequests", () => {
  it("hands over each session's request once, when the document arrives", () => {
    const p = new PendingRequests(wide);
    p.add(req("doc-a", "tablet"));
    p.add(req("doc-a", "tablet"));
    p.add(req("doc-a", "till"));
    p.add(req("doc-b", "tablet"));
    expect(p.size).toBe(3);
    expect(sessions(p.take("doc-a"))).toEqual(["tablet", "till"]);
    expect(p.take("doc-a")).toEqual([]);
    expect(p.size).toBe(1);
  });

  it("drops the oldest requests past its total bound", () => {
    const p = new PendingRequests({ ...wide, total: 3 });
    for (let i = 0; i < 5; i++) p.add(req(`doc-${i}`, `s${i}`));
    expect(p.size).toBe(3);
    expect(p.dropped).toBe(2);
    expect(p.take("doc-0")).toEqual([]);
    expect(p.take("doc-1")).toEqual([]);
    expect(sessions(p.take("doc-4"))).toEqual(["s4"]);
  });

  it("bounds one session and one token identity without touching the others", () => {
    const p = new PendingRequests({ perConnection: 2, perToken: 3, total: 100 });
    p.add(req("other", "quiet", "q"));
    for (let i = 0; i < 10; i++) p.add(req(`doc-${i}`, "s1", "flooder"));
    expect(p.size).toBe(3); // two of s1's, the quiet one
    for (let i = 0; i < 10; i++) p.add(req(`doc-${i}`, `s${i + 2}`, "flooder"));
    expect(p.size).toBe(4); // three of the flooder's, the quiet one
    expect(sessions(p.take("other"))).toEqual(["quiet"]);
    expect(p.bytes).toBe(3 * 200);
  });

  it("forgets a closed session's requests", () => {
    const p = new PendingRequests(wide);
    p.add(req("doc-a", "gone"));
    p.add(req("doc-b", "gone"));
    p.add(req("doc-a", "stays"));
    p.dropSession("gone");
    expect(p.size).toBe(1);
    expect(sessions(p.take("doc-a"))).toEqual(["stays"]);
    expect(p.take("doc-b")).toEqual([]);
  });
});
