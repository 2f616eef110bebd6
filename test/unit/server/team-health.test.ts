import { describe, expect, it } from "vitest";
import { retryDelayMs } from "../../../server/health/team-health.js";

describe("retryDelayMs", () => {
  it("doubles from 1 s and stops at the cap, so a broken team costs a log line a minute at most", () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8].map((n) => retryDelayMs(n))).toEqual([1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000]);
    expect(retryDelayMs(10_000)).toBe(60_000);
    expect(retryDelayMs(3, 2500)).toBe(2500);
  });
});
