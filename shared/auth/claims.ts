/**
 * Token claims as the relay and devices understand them. A decoded token is untrusted input:
 * `parseClaims` accepts exactly the documented shape and nothing looser.
 */
export type Role = "member" | "auditor" | "admin" | "service";

export const ROLES: readonly Role[] = ["member", "auditor", "admin", "service"];

/** The team claim of a `service` token: the materializer reads and writes every team. */
export const ALL_TEAMS = "*";

export interface Claims {
  /** User id (or service name for `service`). */
  sub: string;
  /** Team id, or `*` for a `service` token only. */
  team: string;
  role: Role;
  /** Device id, when the token was issued to one device. */
  device?: string;
  /** Expiry, seconds since the epoch. */
  exp: number;
}

/** Ids are used in keys, logs and URLs: keep them short and free of separators that mean something. */
const ID = /^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$/;
export const TEAM_ID = /^[a-z0-9][a-z0-9_-]{0,62}$/;

export function isId(value: unknown): value is string {
  return typeof value === "string" && ID.test(value);
}

export function isTeamId(value: unknown): value is string {
  return typeof value === "string" && TEAM_ID.test(value);
}

export class ClaimsError extends Error {
  constructor(readonly reason: string) {
    super(`invalid token claims: ${reason}`);
    this.name = "ClaimsError";
  }
}

export function parseClaims(payload: unknown): Claims {
  if (typeof payload !== "object" || payload === null || Array.isArray(payload)) {
    throw new ClaimsError("payload is not an object");
  }
  const p = payload as Record<string, unknown>;
  if (!isId(p.sub)) throw new ClaimsError("sub missing or malformed");
  if (typeof p.role !== "string" || !(ROLES as readonly string[]).includes(p.role)) {
    throw new ClaimsError("role missing or unknown");
  }
  const role = p.role as Role;
  if (role === "service") {
    if (p.team !== ALL_TEAMS) throw new ClaimsError("a service token must have team '*'");
  } else if (!isTeamId(p.team)) {
    throw new ClaimsError("team missing or malformed");
  }
  if (p.device !== undefined && !isId(p.device)) throw new ClaimsError("device malformed");
  if (typeof p.exp !== "number" || !Number.isInteger(p.exp)) throw new ClaimsError("exp missing");
  const claims: Claims = { sub: p.sub, team: p.team as string, role, exp: p.exp };
  if (typeof p.device === "string") claims.device = p.device;
  return claims;
}

/** One identity per user and device: a peer id is bound to this while its socket lives. */
export function identityOf(claims: Pick<Claims, "sub" | "device">): string {
  return `${claims.sub}/${claims.device ?? ""}`;
}
