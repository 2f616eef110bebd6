import { describe, expect, it } from "vitest";
import { DEFAULT_SETTINGS, canonicalJson, entryHash, parseSettings } from "../../../shared/domain/index.js";

describe("canonicalJson and entryHash", () => {
  it("sorts keys at every depth and skips undefined properties", () => {
    expect(canonicalJson({ b: 1, a: [{ d: null, c: "x" }], e: undefined })).toBe('{"a":[{"c":"x","d":null}],"b":1}');
  });

  it("is independent of key insertion order", () => {
    expect(entryHash({ a: 1, b: 2 })).toBe(entryHash({ b: 2, a: 1 }));
    expect(entryHash({ a: 1 })).not.toBe(entryHash({ a: 2 }));
  });

  it("is the hex sha256 of the canonical JSON", () => {
    // sha256('{"a":1}')
    expect(entryHash({ a: 1 })).toBe("015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862");
  });

  it("refuses values JSON cannot represent", () => {
    expect(() => canonicalJson(Number.NaN)).toThrow("non-finite");
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => canonicalJson(cyclic)).toThrow("cycle");
    expect(() => canonicalJson(() => 1)).toThrow("cannot serialize function");
  });
});

describe("parseSettings", () => {
  it("defaults to reject, a 7-day wait and no automatic close", () => {
    expect(DEFAULT_SETTINGS).toEqual({ oversell: "reject", deferWaitSeconds: 604800, closeAfterHours: null });
    expect(parseSettings(undefined)).toEqual({ ok: true, settings: DEFAULT_SETTINGS });
    expect(parseSettings({})).toEqual({ ok: true, settings: DEFAULT_SETTINGS });
  });

  it("accepts valid overrides", () => {
    expect(parseSettings({ oversell: "allow-negative", deferWaitSeconds: 60 })).toEqual({ ok: true, settings: { oversell: "allow-negative", deferWaitSeconds: 60, closeAfterHours: null } });
    expect(parseSettings({ closeAfterHours: 6 })).toEqual({ ok: true, settings: { ...DEFAULT_SETTINGS, closeAfterHours: 6 } });
    expect(parseSettings({ closeAfterHours: -1 })).toEqual({ ok: false, reason: "settings: closeAfterHours must be null or an integer between 0 and 8760" });
    expect(parseSettings({ closeAfterHours: "6" })).toEqual({ ok: false, reason: "settings: closeAfterHours must be null or an integer between 0 and 8760" });
  });

  it("rejects bad values and unknown fields", () => {
    expect(parseSettings({ oversell: "yes" })).toEqual({ ok: false, reason: "settings: oversell must be 'reject' or 'allow-negative'" });
    expect(parseSettings({ deferWaitSeconds: -1 })).toEqual({ ok: false, reason: "settings: deferWaitSeconds must be an integer between 0 and 31536000" });
    expect(parseSettings({ deferWaitSeconds: Number.NaN })).toEqual({ ok: false, reason: "settings: deferWaitSeconds must be an integer between 0 and 31536000" });
    expect(parseSettings({ debug: true })).toEqual({ ok: false, reason: 'settings: unknown field "debug"' });
    expect(parseSettings([])).toEqual({ ok: false, reason: "settings must be an object" });
    const { proxy, revoke } = Proxy.revocable({}, {});
    revoke();
    expect(parseSettings(proxy)).toEqual({ ok: false, reason: "settings: could not be read" });
  });
});
