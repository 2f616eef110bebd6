/** Requests waiting for a document the relay does not know yet: kept per requester, bounded. */
import { describe, expect, it } from "vitest";
import { PendingRequests } from "../../../server/relay/pending-requests.js";

describe("PendingRequests", () => {
  it("hands over each requester's latest request once, when the document arrives", () => {
    const p = new PendingRequests<string>();
    p.add("doc-a", "tablet", "request 1");
    p.add("doc-a", "tablet", "request 2");
    p.add("doc-a", "till", "request 3");
    p.add("doc-b", "tablet", "request 4");
    expect(p.size).toBe(3);
    expect(p.take("doc-a").sort()).toEqual(["request 2", "request 3"]);
    expect(p.take("doc-a")).toEqual([]);
    expect(p.size).toBe(1);
  });

  it("drops the oldest documents' requests past its bound", () => {
    const p = new PendingRequests<number>(3);
    for (let i = 0; i < 5; i++) p.add(`doc-${i}`, "tablet", i);
    expect(p.size).toBe(3);
    expect(p.take("doc-0")).toEqual([]);
    expect(p.take("doc-1")).toEqual([]);
    expect(p.take("doc-4")).toEqual([4]);
  });
});
