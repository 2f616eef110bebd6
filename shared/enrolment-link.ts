/**
 * Enrolment links for the web till: `<service>/app/#enroll=<base64url of JSON>`, carrying what
 * `npm run admin -- enroll-device` answers (team, device, user, token, root URL, public key). In
 * the fragment, so it never reaches a server, a proxy or an access log; the till checks every
 * field before using it (client/web/common/session.ts).
 */
export const ENROL_FRAGMENT = "#enroll=";

function base64Url(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function enrolmentLink(serviceUrl: string, fields: Record<string, unknown>): string {
  return `${new URL("/app/", serviceUrl).href}${ENROL_FRAGMENT}${base64Url(JSON.stringify(fields))}`;
}

/** The JSON a fragment carries: undefined when it is not an enrolment fragment, an error text when damaged. */
export function readEnrolmentFragment(hash: string): unknown {
  if (!hash.startsWith(ENROL_FRAGMENT)) return undefined;
  const part = hash.slice(ENROL_FRAGMENT.length);
  if (!/^[A-Za-z0-9_-]{1,16000}$/.test(part)) return new Error("the enrolment link is damaged (copy it whole)");
  try {
    const b64 = part.replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(b64.padEnd(Math.ceil(b64.length / 4) * 4, "=")), (c) => c.charCodeAt(0)))) as unknown;
  } catch {
    return new Error("the enrolment link is damaged (copy it whole)");
  }
}
