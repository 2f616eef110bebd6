/**
 * What a signed-in page keeps in the browser. The till keeps its device identity and token in
 * localStorage (it must reopen offline, after a reload, without asking anyone); the audit view
 * keeps its token in sessionStorage only (a read-only view has nothing to do offline, and an
 * auditor's token should not outlive the tab).
 */
import type { Claims } from "../../../shared/auth/claims.js";
import { readOwnClaims } from "../../token.js";

export interface TillSession {
  team: string;
  user: string;
  /** This browser's device id: entries name it, and its documents live in their own database. */
  deviceId: string;
  token: string;
  rootUrl: string;
  /** The service's public key (PEM): verifies the server's statements on status and verdicts. */
  publicKey: string;
}

const TILL_KEY = "ledger-sync.till";
const AUDIT_KEY = "ledger-sync.audit";

function str(o: Record<string, unknown>, k: string): string | undefined {
  return typeof o[k] === "string" ? (o[k] as string) : undefined;
}

/** A till session from anything (storage, an enrolment link): checked field by field. */
export function parseTillSession(raw: unknown): TillSession | string {
  if (typeof raw !== "object" || raw === null) return "not an object";
  const o = raw as Record<string, unknown>;
  const fields = ["team", "user", "deviceId", "token", "rootUrl", "publicKey"] as const;
  const out: Partial<TillSession> = {};
  for (const f of fields) {
    const v = str(o, f);
    if (!v) return `${f} is missing`;
    out[f] = v;
  }
  if (!out.rootUrl!.startsWith("automerge:")) return "rootUrl is not an automerge URL";
  if (!out.publicKey!.includes("BEGIN PUBLIC KEY")) return "publicKey is not a PEM public key";
  let claims: Claims;
  try {
    claims = readOwnClaims(out.token!);
  } catch (err) {
    return err instanceof Error ? err.message : "unreadable token";
  }
  if (claims.team !== out.team) return `the token is for team ${claims.team}, not ${out.team}`;
  if (claims.device !== undefined && claims.device !== out.deviceId) return `the token is for device ${claims.device}, not ${out.deviceId}`;
  if (claims.role !== "member" && claims.role !== "admin") return `a till needs a member or admin, not ${claims.role}`;
  return out as TillSession;
}

export function loadTillSession(): TillSession | undefined {
  try {
    const parsed = parseTillSession(JSON.parse(localStorage.getItem(TILL_KEY) ?? "null"));
    return typeof parsed === "string" ? undefined : parsed;
  } catch {
    return undefined;
  }
}

/** team/user → the device id this browser used for them: a device's unsent entries wait in its own database. */
const DEVICES_KEY = "ledger-sync.devices";

function knownDevices(): Record<string, string> {
  try {
    const o = JSON.parse(localStorage.getItem(DEVICES_KEY) ?? "{}") as unknown;
    return typeof o === "object" && o !== null && !Array.isArray(o) ? (o as Record<string, string>) : {};
  } catch {
    return {};
  }
}

export function saveTillSession(s: TillSession): void {
  localStorage.setItem(TILL_KEY, JSON.stringify(s));
  localStorage.setItem(DEVICES_KEY, JSON.stringify({ ...knownDevices(), [`${s.team}/${s.user}`]: s.deviceId }));
}

/** Signing out forgets the token only: the device id and its unsent entries stay in the browser. */
export function forgetTillToken(): void {
  const s = loadTillSession();
  if (s) localStorage.setItem(TILL_KEY, JSON.stringify({ ...s, token: "" }));
}

/**
 * The device id this browser used for a team and user before, so signing in again (after another
 * user, after an expiry) reopens that device and delivers what it still holds.
 */
export function previousDeviceId(team: string, user: string): string | undefined {
  const id = Object.hasOwn(knownDevices(), `${team}/${user}`) ? knownDevices()[`${team}/${user}`] : undefined;
  return typeof id === "string" && id !== "" ? id : undefined;
}

export function loadAuditToken(): { token: string; claims: Claims } | undefined {
  const token = sessionStorage.getItem(AUDIT_KEY);
  if (!token) return undefined;
  try {
    return { token, claims: readOwnClaims(token) };
  } catch {
    return undefined;
  }
}

export function saveAuditToken(token: string): void {
  sessionStorage.setItem(AUDIT_KEY, token);
}

export function forgetAuditToken(): void {
  sessionStorage.removeItem(AUDIT_KEY);
}

