/**
 * What the web till accepts from an enrolment link (a URL anyone can send a clerk): every field
 * checked, a damaged or hostile link refused with a reason, never half-used.
 */
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { enrolmentLink, readEnrolmentFragment } from "../../../shared/enrolment-link.js";
import { sessionFromLink } from "../../../client/web/till/signin.js";

const b64u = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString("base64url");
const token = (claims: Record<string, unknown>): string => `${b64u({ alg: "ES256" })}.${b64u({ exp: 2_000_000_000, ...claims })}.c2ln`;
const PEM = "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----";
const good = { team: "corner-shop", device: "tab-1", user: "ana", token: token({ sub: "ana", team: "corner-shop", role: "member", device: "tab-1" }), rootUrl: "automerge:4NMNnkMhL8jXrdJ9jamS58PAVdXu", publicKey: PEM };
const hashOf = (fields: Record<string, unknown>): string => new URL(enrolmentLink("http://127.0.0.1:8080", fields)).hash;

describe("enrolment links", () => {
  it("round-trip what enroll-device answers into a till session", () => {
    const link = enrolmentLink("https://shop.example/anything?x=1", good);
    expect(link.startsWith("https://shop.example/app/#enroll=")).toBe(true);
    expect(sessionFromLink(new URL(link).hash)).toEqual({ team: "corner-shop", deviceId: "tab-1", user: "ana", token: good.token, rootUrl: good.rootUrl, publicKey: PEM });
    expect(sessionFromLink("")).toBeUndefined();
    expect(sessionFromLink("#something-else")).toBeUndefined();
  });

  it("refuses links whose token does not fit them", () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ ...good, token: token({ sub: "ana", team: "other-shop", role: "member" }) }, /token is for team other-shop, not corner-shop/],
      [{ ...good, token: token({ sub: "ana", team: "corner-shop", role: "member", device: "tab-2" }) }, /token is for device tab-2, not tab-1/],
      [{ ...good, token: token({ sub: "carol", team: "corner-shop", role: "auditor", device: "tab-1" }) }, /needs a member or admin, not auditor/],
      [{ ...good, token: "not-a-jwt" }, /token is not a JWT/],
      [{ ...good, rootUrl: "https://evil.example/" }, /rootUrl is not an automerge URL/],
      [{ ...good, publicKey: "ssh-rsa AAAA" }, /publicKey is not a PEM/],
      [{ ...good, device: undefined }, /deviceId is missing/],
      [{ ...good, team: 42 }, /team is missing/],
    ];
    for (const [fields, reason] of cases) expect(sessionFromLink(hashOf(fields)), JSON.stringify(fields)).toMatch(reason);
  });

  it("refuses damaged links and odd JSON with a message, whatever the bytes", () => {
    expect(sessionFromLink("#enroll=%%%")).toMatch(/damaged/);
    expect(sessionFromLink(`#enroll=${Buffer.from("{not json").toString("base64url")}`)).toMatch(/damaged/);
    expect(sessionFromLink(`#enroll=${"A".repeat(20_000)}`)).toMatch(/damaged/);
    expect(sessionFromLink(`#enroll=${b64u([1, 2])}`)).toMatch(/not usable/);
    expect(sessionFromLink(`#enroll=${b64u(null)}`)).toMatch(/not usable/);
    const polluted = JSON.parse(`{"__proto__": {"team": "corner-shop"}, "constructor": 1}`) as unknown;
    expect(sessionFromLink(`#enroll=${b64u(polluted)}`)).toMatch(/not usable/);
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (junk) => {
        const r = sessionFromLink(`#enroll=${junk}`);
        expect(r === undefined || typeof r === "string").toBe(true);
        expect(readEnrolmentFragment(`#enroll=${junk}`)).not.toBeUndefined();
      }),
      { numRuns: 300 },
    );
  });
});
