/**
 * Calls the running service's HTTP API from a command-line tool, with a short-lived service
 * token signed by the keys the service uses. Tools that create documents go through here:
 * only the service may write its document storage (a second writer races its saves).
 */
import type { Config } from "../config.js";
import { loadOrCreateKeys } from "../auth/keys.js";
import { createTokenService } from "../auth/tokens.js";
import { readServiceFile } from "../service-file.js";

/** Long enough for one call on a busy machine, short enough to be worthless if it leaks. */
const TOKEN_TTL_SECONDS = 120;
const TIMEOUT_MS = 60_000;

/** The service did not answer at all (not running, wrong SERVICE_URL or PORT). */
export class ServiceUnreachable extends Error {
  constructor(url: string, reason: string) {
    super(`the service is not reachable at ${url} (${reason}): start it (npm start) on the same DATA_DIR, or set SERVICE_URL or PORT to where it listens`);
    this.name = "ServiceUnreachable";
  }
}

/** The service answered with an error: `{error: {code, message}}`. */
export class ServiceRefused extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(`${message} (HTTP ${status} ${code})`);
    this.name = "ServiceRefused";
  }
}

/** SERVICE_URL when set, else the running service of DATA_DIR (service.json), else HOST:PORT. */
export async function serviceUrlOf(config: Config, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  if (env.SERVICE_URL?.trim()) return config.serviceUrl;
  return (await readServiceFile(config.dataDir))?.url ?? config.serviceUrl;
}

export async function callService(config: Config, method: "GET" | "POST", route: string, body?: unknown): Promise<unknown> {
  const serviceUrl = await serviceUrlOf(config);
  const keys = await loadOrCreateKeys({ privateKeyPem: config.jwt.privateKeyPem, publicKeyPem: config.jwt.publicKeyPem, dataDir: config.dataDir });
  const token = createTokenService(keys, config.jwt).issue({ sub: "admin-cli", team: "*", role: "service" }, TOKEN_TTL_SECONDS);
  const url = `${serviceUrl}/api${route}`;
  let res: Response;
  try {
    res = await fetch(url, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new ServiceUnreachable(serviceUrl, cause?.code ?? cause?.message ?? (err instanceof Error ? err.message : String(err)));
  }
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text === "" ? null : JSON.parse(text);
  } catch {
    throw new ServiceRefused(res.status, "not-json", `the service at ${serviceUrl} answered something other than JSON`);
  }
  if (!res.ok) {
    const error = (parsed as { error?: { code?: unknown; message?: unknown } } | null)?.error;
    throw new ServiceRefused(res.status, typeof error?.code === "string" ? error.code : "error", typeof error?.message === "string" ? error.message : res.statusText);
  }
  return parsed;
}
