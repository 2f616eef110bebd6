/** What one peer may make the relay hold: bytes awaiting checks, connections and documents per team. */
import { describe, expect, it } from "vitest";
import { ConnectionCounts } from "../../../server/relay/connections.js";
import { QueuedBytes } from "../../../server/relay/queued-bytes.js";
import type { Session } from "../../../server/relay/session.js";
import { TeamDocumentQuota } from "../../../server/relay/team-quota.js";

const session = (principal: string): Session => ({ principal, queuedBytes: 0 }) as Session;

describe("QueuedBytes", () => {
  it("says a session must wait when it, its token or the total is over, and never when it holds nothing", () => {
    const q = new QueuedBytes({ perConnection: 100, perToken: 150, total: 200 });
    const a1 = session("a");
    const a2 = session("a");
    const b = session("b");
    expect(q.add(a1, 100)).toBe(false);
    expect(q.add(a1, 1)).toBe(true); // its own bound
    q.release(a1, 1);
    expect(q.add(a2, 60)).toBe(true); // token a: 160 > 150
    expect(q.over(a1)).toBe(true);
    expect(q.over(b)).toBe(false); // holds nothing
    expect(q.add(b, 50)).toBe(true); // total 210 > 200
    q.release(a2, 60);
    expect(q.over(b)).toBe(false);
    expect(q.over(a1)).toBe(false);
    q.release(a1, 100);
    q.release(b, 50);
    expect(q.total).toBe(0);
  });
});

describe("ConnectionCounts", () => {
  it("refuses the connection past the bound per token identity, and counts closes", () => {
    const c = new ConnectionCounts(2);
    c.opened("t/u/d");
    c.opened("t/u/d");
    expect(c.refusal("t/u/d")).toBe("too many connections for this token (at most 2)");
    expect(c.refusal("t/u/other")).toBeUndefined();
    c.closed("t/u/d");
    expect(c.refusal("t/u/d")).toBeUndefined();
  });
});

describe("TeamDocumentQuota", () => {
  it("counts each team once from the database, then follows its reservations, and re-reads when stale", async () => {
    let now = 0;
    const counted: string[] = [];
    const db: Record<string, number> = { shop: 8, other: 0 };
    const quota = new TeamDocumentQuota({
      max: 10,
      refreshMs: 1000,
      now: () => now,
      countDocuments: async (team) => {
        counted.push(team);
        return db[team] ?? 0;
      },
    });
    expect(await quota.reserve("shop")).toBe(true);
    expect(await quota.reserve("shop")).toBe(true);
    expect(await quota.reserve("shop")).toBe(false);
    quota.release("shop");
    expect(await quota.reserve("shop")).toBe(true);
    expect(await quota.reserve("other")).toBe(true);
    expect(counted).toEqual(["shop", "other"]);
    db.shop = 3; // documents deleted by an operator
    now = 2000;
    expect(await quota.reserve("shop")).toBe(false); // the stale count answers, the re-read runs beside it
    await new Promise((r) => setTimeout(r, 0));
    expect(await quota.reserve("shop")).toBe(true);
    expect(counted).toEqual(["shop", "other", "shop"]);
  });
});
