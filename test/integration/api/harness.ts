/**
 * The API over HTTP against a running service: a shop (relay + in-process materializer), users
 * made through the API, and a small fetch wrapper that keeps the raw body for byte comparisons.
 */
import { startShop, type Shop, type ShopOptions } from "../materializer/harness.js";

export interface Answer<T = Record<string, unknown>> {
  status: number;
  raw: string;
  body: T;
  headers: Headers;
}

export interface ApiShop extends Shop {
  url: string;
  team: Shop["team"];
  /** Tokens of a member (device `till-1`), an auditor and an admin of the team. */
  member: string;
  auditor: string;
  adminToken: string;
  serviceToken: string;
  call<T = Record<string, unknown>>(method: string, path: string, opts?: { token?: string; body?: unknown; raw?: string; headers?: Record<string, string> }): Promise<Answer<T>>;
}

export async function startApiShop(settings: Record<string, unknown> = {}, shopOptions: ShopOptions = {}): Promise<ApiShop> {
  const shop = await startShop(undefined, settings, shopOptions);
  const url = `${shop.relay.service.url}/api`;
  const team = shop.team.team;
  const call: ApiShop["call"] = async (method, path, opts = {}) => {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    let body: string | undefined = opts.raw;
    if (opts.body !== undefined) body = JSON.stringify(opts.body);
    if (body !== undefined) headers["content-type"] ??= "application/json";
    const res = await fetch(url + path, { method, headers, ...(body !== undefined ? { body } : {}) });
    const raw = await res.text();
    let parsed: unknown = null;
    try {
      parsed = JSON.parse(raw);
    } catch {
      parsed = null;
    }
    return { status: res.status, raw, body: parsed as never, headers: res.headers };
  };
  const serviceToken = shop.relay.token({ sub: "ops", team: "*", role: "service" });
  const made: Record<string, string> = {};
  for (const [username, role] of [["alice", "admin"], ["bob", "member"], ["carol", "auditor"]] as const) {
    const r = await call("POST", `/teams/${team}/users`, { token: serviceToken, body: { username, password: `pw-${username}-12345`, role } });
    if (r.status !== 201) throw new Error(`create user ${username}: ${r.status} ${r.raw}`);
  }
  const adminLogin = await call<{ token: string }>("POST", "/auth/login", { body: { team, username: "alice", password: "pw-alice-12345" } });
  made.admin = adminLogin.body.token;
  const enrolled = await call<{ token: string }>("POST", `/teams/${team}/devices`, { token: made.admin, body: { device: "till-1", user: "bob" } });
  if (enrolled.status !== 201) throw new Error(`enroll: ${enrolled.status} ${enrolled.raw}`);
  made.member = enrolled.body.token;
  made.auditor = (await call<{ token: string }>("POST", "/auth/login", { body: { team, username: "carol", password: "pw-carol-12345" } })).body.token;
  return Object.assign(shop, { url, member: made.member, auditor: made.auditor, adminToken: made.admin, serviceToken, call });
}

export interface SyncBody {
  success: boolean;
  message: string;
  summary: Record<string, number>;
  synced: Record<string, string[]>;
  data: Record<string, Record<string, unknown>[]>;
  error?: { code: string; message: string };
}
