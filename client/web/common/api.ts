/**
 * The HTTP API as the pages use it: same origin, JSON in and out, the token as a Bearer header,
 * and the API's error message (never a stack) when a call fails.
 */
export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface LoginAnswer {
  token: string;
  expiresAt: string;
  team: string;
  user: string;
  role: "member" | "auditor" | "admin";
  device?: string;
}

function errorOf(status: number, body: unknown): ApiFailure {
  const err = typeof body === "object" && body !== null ? (body as { error?: { code?: unknown; message?: unknown } }).error : undefined;
  const code = typeof err?.code === "string" ? err.code : `http-${status}`;
  const message = typeof err?.message === "string" ? err.message : `the service answered ${status}`;
  return new ApiFailure(status, code, message);
}

export async function api<T>(path: string, opts: { token?: string; method?: string; body?: unknown } = {}): Promise<T> {
  const headers: Record<string, string> = { accept: "application/json" };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (opts.body !== undefined) headers["content-type"] = "application/json";
  let res: Response;
  try {
    res = await fetch(`/api${path}`, { method: opts.method ?? "GET", headers, body: opts.body === undefined ? null : JSON.stringify(opts.body), cache: "no-store" });
  } catch {
    throw new ApiFailure(0, "offline", "the service cannot be reached (offline?)");
  }
  const body: unknown = await res.json().catch(() => undefined);
  if (!res.ok) throw errorOf(res.status, body);
  return body as T;
}

export function login(team: string, username: string, password: string): Promise<LoginAnswer> {
  return api<LoginAnswer>("/auth/login", { method: "POST", body: { team, username, password } });
}
