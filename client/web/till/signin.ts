/**
 * Signing the till in: with team, user and password (POST /api/auth/login, then the team's root
 * URL and public key from the API), or with an enrolment link from `npm run admin --
 * enroll-device` (`/app/#enroll=<base64url JSON>`: the fragment never reaches a server or a log).
 */
import { readEnrolmentFragment } from "../../../shared/enrolment-link.js";
import { api, ApiFailure, login } from "../common/api.js";
import { signInForm } from "../common/signin-form.js";
import { parseTillSession, previousDeviceId, saveTillSession, type TillSession } from "../common/session.js";

function newDeviceId(): string {
  return `web-${globalThis.crypto.randomUUID().slice(0, 8)}`;
}

export async function signInWithPassword(team: string, user: string, password: string): Promise<TillSession> {
  const answer = await login(team, user, password);
  if (answer.role === "auditor") throw new ApiFailure(403, "auditor", "an auditor cannot sell: open the audit view at /audit/");
  const { rootUrl } = await api<{ rootUrl: string }>(`/teams/${encodeURIComponent(answer.team)}`, { token: answer.token });
  // The key that signs tokens also signs the server's statements; the checkpoints page names it.
  const { publicKey } = await api<{ publicKey: string }>("/journal/checkpoints?limit=1", { token: answer.token });
  const candidate = {
    team: answer.team,
    user: answer.user,
    deviceId: answer.device ?? previousDeviceId(answer.team, answer.user) ?? newDeviceId(),
    token: answer.token,
    rootUrl,
    publicKey,
  };
  const session = parseTillSession(candidate);
  if (typeof session === "string") throw new ApiFailure(0, "bad-answer", `the service's answer is unusable: ${session}`);
  saveTillSession(session);
  return session;
}

/** The session carried by `#enroll=...`, or undefined when the page was opened without one. */
export function sessionFromLink(hash: string): TillSession | string | undefined {
  const raw = readEnrolmentFragment(hash);
  if (raw === undefined || raw instanceof Error) return raw?.message;
  const o = typeof raw === "object" && raw !== null ? (raw as Record<string, unknown>) : {};
  const session = parseTillSession({ ...o, deviceId: o.deviceId ?? o.device });
  return typeof session === "string" ? `the enrolment link is not usable: ${session}` : session;
}

/** The till's sign-in form; `onSession` gets the stored session. */
export function tillSignInForm(onSession: (s: TillSession) => void, notice?: string): HTMLFormElement {
  return signInForm({
    title: "Sign in to the till",
    hint: "Or open the enrolment link an admin gave you (npm run admin -- enroll-device).",
    ...(notice ? { notice } : {}),
    signIn: async (team, user, password) => onSession(await signInWithPassword(team, user, password)),
  });
}
