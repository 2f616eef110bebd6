/**
 * Which relay a device dials next (client/failover.ts), and the device CLI's `--relay` list: a
 * device stays on a relay that works, moves on when it fails, and backs off only per full round.
 */
import { describe, expect, it } from "vitest";
import { backoffDelay } from "../../../client/backoff.js";
import { relayList } from "../../../client/cli/args.js";
import { RelayRotation } from "../../../client/failover.js";

const top = (): number => 1;
const backoff = { baseMs: 100, maxMs: 10_000 };

describe("relay rotation", () => {
  it("moves to the next relay on each failure, wraps, and stays where a session succeeded", () => {
    const r = new RelayRotation(["ws://a/sync", "ws://b/sync", "ws://c/sync"], 1);
    expect(r.url).toBe("ws://b/sync");
    r.failed(backoff, top);
    expect(r.url).toBe("ws://c/sync");
    r.failed(backoff, top);
    expect(r.url).toBe("ws://a/sync");
    r.succeeded();
    expect(r.url).toBe("ws://a/sync");
    r.failed(backoff, top);
    expect(r.url).toBe("ws://b/sync");
  });

  it("grows the delay once per full round of failures; one relay backs off as before", () => {
    const three = new RelayRotation(["ws://a", "ws://b", "ws://c"]);
    const delays = Array.from({ length: 7 }, () => three.failed(backoff, top));
    expect(delays).toEqual([100, 100, 100, 200, 200, 200, 400]);
    three.succeeded();
    expect(three.failed(backoff, top)).toBe(100);

    const one = new RelayRotation(["ws://a"]);
    expect(Array.from({ length: 4 }, () => one.failed(backoff, top))).toEqual([0, 1, 2, 3].map((n) => backoffDelay(n, backoff, top)));
    expect(one.url).toBe("ws://a");
  });

  it("refuses an empty list and a relay listed twice", () => {
    expect(() => new RelayRotation([])).toThrow(/no relay address/);
    expect(() => new RelayRotation(["ws://a", "ws://a"])).toThrow(/ws:\/\/a is listed twice/);
  });
});

describe("--relay", () => {
  it("takes comma-separated and repeated addresses, in order", () => {
    expect(relayList({ relay: ["ws://a:1/sync,ws://b:2/sync", " ws://c:3/sync "] })).toEqual(["ws://a:1/sync", "ws://b:2/sync", "ws://c:3/sync"]);
    expect(relayList({})).toEqual([]);
  });

  it("names a malformed, foreign-scheme or repeated address", () => {
    expect(() => relayList({ relay: ["relay1:8080"] })).toThrow(/expected a ws:\/\/, wss:\/\/, http:\/\/ or https:\/\/ address/);
    expect(() => relayList({ relay: ["not a url"] })).toThrow(/--relay "not a url" is not a URL/);
    expect(() => relayList({ relay: ["ws://a/sync,ws://a/sync"] })).toThrow(/given twice/);
  });
});
