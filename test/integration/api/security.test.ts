/**
 * Refusals: another team's token, an auditor writing, an expired token, a 20 MB body, invalid
 * JSON, wrong types; login failures and its rate limit; security headers on every answer.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startApiShop, type ApiShop } from "./harness.js";

let shop: ApiShop;
let otherAdmin: string;
const err = (b: unknown): string => (b as { error: { message: string } }).error.message;

beforeAll(async () => {
  shop = await startApiShop();
  await shop.relay.service.teams.createTeam(`other${shop.team.team.slice(4)}`);
  otherAdmin = shop.relay.token({ sub: "mallory", team: `other${shop.team.team.slice(4)}`, role: "admin" });
});
afterAll(async () => {
  await shop?.close();
});

describe("refusals", () => {
  it("another team's token reads nothing of this team", async () => {
    const team = shop.team.team;
    const cross = await shop.call("GET", `/journal?team=${team}`, { token: otherAdmin });
    expect(cross.status).toBe(403);
    expect(err(cross.body)).toBe(`a token of team ${team.replace(/^shop/, "other")} may not read team ${team}`);
    const users = await shop.call("POST", `/teams/${team}/users`, { token: otherAdmin, body: { username: "eve", password: "long-password", role: "admin" } });
    expect(users.status).toBe(403);
    const root = await shop.call("GET", `/teams/${team}`, { token: otherAdmin });
    expect(root.status).toBe(403);
    // Its own reads see only its own (empty) team, never this team's rows.
    await shop.call("POST", "/sync", { token: shop.member, body: { item: { create: [{ name: "Secret", price: 1 }] } } });
    const own = await shop.call<{ rows: unknown[] }>("GET", "/items", { token: otherAdmin });
    expect(own.status).toBe(200);
    expect(own.body.rows).toEqual([]);
  });

  it("an auditor may read but not write", async () => {
    const w = await shop.call("POST", "/sync", { token: shop.auditor, body: { item: { create: [{ name: "x", price: 1 }] } } });
    expect(w.status).toBe(403);
    expect(err(w.body)).toBe(`role auditor of team ${shop.team.team} may not POST /api/sync`);
    expect((await shop.call("GET", "/invoices", { token: shop.auditor })).status).toBe(200);
  });

  it("an expired token is refused with 401", async () => {
    const expired = shop.relay.token({ sub: "bob", team: shop.team.team, role: "member", exp: Math.floor(Date.now() / 1000) - 60 });
    const r = await shop.call("POST", "/sync", { token: expired, body: {} });
    expect(r.status).toBe(401);
    expect(err(r.body)).toBe("token refused: jwt expired");
    const none = await shop.call("GET", "/items");
    expect(none.status).toBe(401);
    expect(err(none.body)).toBe("Bearer token required");
  });

  it("a 20 MB body answers 413, invalid JSON 400, a non-object body 400", async () => {
    const big = JSON.stringify({ item: { create: [{ name: "x".repeat(20 * 1024 * 1024), price: 1 }] } });
    const r = await shop.call("POST", "/sync", { token: shop.member, raw: big });
    expect(r.status).toBe(413);
    expect(err(r.body)).toBe("request body exceeds the 1 MB limit");
    const bad = await shop.call("POST", "/sync", { token: shop.member, raw: '{"item": {"create": [' });
    expect(bad.status).toBe(400);
    expect(err(bad.body)).toBe("request body is not valid JSON");
    expect(bad.raw).not.toMatch(/at .*\.js|SyntaxError/);
    const arr = await shop.call("POST", "/sync", { token: shop.member, raw: "[1,2]" });
    expect(arr.status).toBe(400);
    expect(err(arr.body)).toBe("request body must be a JSON object");
  });

  it("the classic gateway's refusals all carry success: false and the message, as its other answers do", async () => {
    const expired = shop.relay.token({ sub: "bob", team: shop.team.team, role: "member", exp: Math.floor(Date.now() / 1000) - 60 });
    const key = `k-${Date.now()}`;
    const first = await shop.call("POST", "/sync", { token: shop.member, body: {}, headers: { "x-idempotency-key": key } });
    expect(first.status, first.raw).toBe(200);
    const answers = {
      "401 sync": await shop.call("POST", "/sync", { token: expired, body: {} }),
      "401 readytosync": await shop.call("POST", "/readytosync"),
      "403": await shop.call("POST", "/sync", { token: shop.auditor, body: {} }),
      "413": await shop.call("POST", "/sync", { token: shop.member, raw: JSON.stringify({ item: { create: [{ name: "x".repeat(2 * 1024 * 1024), price: 1 }] } }) }),
      "400 malformed": await shop.call("POST", "/sync", { token: shop.member, raw: '{"item": {"create": [' }),
      "422": await shop.call("POST", "/sync", { token: shop.member, body: { item: { delete: [] } }, headers: { "x-idempotency-key": key } }),
    };
    for (const [what, a] of Object.entries(answers)) {
      expect(a.status, what).toBe(Number(what.slice(0, 3)));
      const body = a.body as { success?: unknown; message?: unknown; error: { message: string } };
      expect(body.success, `${what}: ${a.raw}`).toBe(false);
      expect(body.message, what).toBe(body.error.message);
    }
    // Other routes keep the API's own shape.
    const other = await shop.call("GET", "/items");
    expect(other.body).toEqual({ error: { code: "unauthorized", message: "Bearer token required" } });
  });

  it("login: wrong password 401, unknown device 400, then 429 after 10 attempts", async () => {
    const team = shop.team.team;
    const ok = await shop.call<{ token: string; role: string }>("POST", "/auth/login", { body: { team, username: "bob", password: "pw-bob-12345", device: "till-1" } });
    expect(ok.status).toBe(200);
    expect(shop.relay.service.tokens.verify(ok.body.token)).toMatchObject({ sub: "bob", team, role: "member", device: "till-1" });
    const dev = await shop.call("POST", "/auth/login", { body: { team, username: "bob", password: "pw-bob-12345", device: "ghost" } });
    expect(dev.status).toBe(400);
    expect(err(dev.body)).toBe(`device ghost is not enrolled in team ${team}`);
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) statuses.push((await shop.call("POST", "/auth/login", { body: { team, username: "carol", password: "wrong-password" } })).status);
    expect(statuses.every((s) => s === 401)).toBe(true);
    const limited = await shop.call("POST", "/auth/login", { body: { team, username: "carol", password: "pw-carol-12345" } });
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThan(0);
    // Another account from the same address is not affected.
    expect((await shop.call("POST", "/auth/login", { body: { team, username: "alice", password: "pw-alice-12345" } })).status).toBe(200);
    // Passwords never reach a log line.
    expect(JSON.stringify(shop.relay.logs)).not.toContain("pw-carol-12345");
    expect(JSON.stringify(shop.relay.logs)).not.toContain("wrong-password");
  });

  it("login: a user cannot name a device enrolled to another user", async () => {
    const team = shop.team.team;
    const made = await shop.call("POST", `/teams/${team}/users`, { token: shop.adminToken, body: { username: "dave", password: "pw-dave-12345", role: "member" } });
    expect(made.status, made.raw).toBe(201);
    for (const [username, password] of [["dave", "pw-dave-12345"], ["alice", "pw-alice-12345"]] as const) {
      const r = await shop.call<{ token?: string }>("POST", "/auth/login", { body: { team, username, password, device: "till-1" } });
      expect(r.status, r.raw).toBe(403);
      expect(err(r.body)).toBe(`device till-1 of team ${team} is enrolled to another user, not ${username}`);
      expect(r.body.token).toBeUndefined();
    }
    // Its own user still can.
    const bob = await shop.call<{ token: string }>("POST", "/auth/login", { body: { team, username: "bob", password: "pw-bob-12345", device: "till-1" } });
    expect(bob.status, bob.raw).toBe(200);
  });

  it("login: someone else's wrong passwords do not lock out a client that logged in before (its ticket), but still stop the guesser", async () => {
    const team = shop.team.team;
    const made = await shop.call("POST", `/teams/${team}/users`, { token: shop.adminToken, body: { username: "erin", password: "pw-erin-12345", role: "member" } });
    expect(made.status, made.raw).toBe(201);
    const first = await shop.call<{ clientTicket: string }>("POST", "/auth/login", { body: { team, username: "erin", password: "pw-erin-12345" } });
    expect(first.status, first.raw).toBe(200);
    const ticket = first.body.clientTicket;
    expect(typeof ticket).toBe("string");
    // A guesser from the same address (no ticket, or a forged one) runs into the limit.
    for (let i = 0; i < 10; i++) {
      const guess = await shop.call("POST", "/auth/login", { body: { team, username: "erin", password: `guess-${i}`, ...(i % 2 ? { clientTicket: `x${i}.${ticket.split(".")[1]}` } : {}) } });
      expect(guess.status).toBe(401);
    }
    expect((await shop.call("POST", "/auth/login", { body: { team, username: "erin", password: "guess-10" } })).status).toBe(429);
    expect((await shop.call("POST", "/auth/login", { body: { team, username: "erin", password: "pw-erin-12345" } })).status).toBe(429);
    // Erin's own client still logs in.
    const again = await shop.call<{ clientTicket: string }>("POST", "/auth/login", { body: { team, username: "erin", password: "pw-erin-12345", clientTicket: ticket } });
    expect(again.status, again.raw).toBe(200);
    expect(again.body.clientTicket).toBe(ticket);
    // The ticket holder's own guesses are limited too.
    const own: number[] = [];
    for (let i = 0; i < 11; i++) own.push((await shop.call("POST", "/auth/login", { body: { team, username: "erin", password: `typo-${i}`, clientTicket: ticket } })).status);
    expect(own.slice(0, 10).every((s) => s === 401)).toBe(true);
    expect(own[10]).toBe(429);
  });

  it("users are unique per team, and answers carry security headers and no stack", async () => {
    const dup = await shop.call("POST", `/teams/${shop.team.team}/users`, { token: shop.adminToken, body: { username: "bob", password: "another-one", role: "member" } });
    expect(dup.status).toBe(409);
    const r = await shop.call("GET", "/no/such/route", { token: shop.member });
    expect(r.status).toBe(404);
    for (const h of ["x-content-type-options", "x-frame-options", "content-security-policy", "referrer-policy", "strict-transport-security"]) {
      expect(r.headers.get(h), h).toBeTruthy();
    }
    expect(r.headers.get("x-powered-by")).toBeNull();
    expect(r.headers.get("cache-control")).toBe("no-store");
  });
});
