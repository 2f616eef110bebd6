/**
 * Routes as data: `{method, path, auth, authorize, query, body, responses, handle}`, run by one
 * function in the same order every time (authenticate, authorize, validate, handle). The same
 * records generate `/api/openapi.json`, so the document cannot drift from what is served.
 */
import type { Request, Response } from "express";
import type { Claims } from "../../shared/auth/claims.js";
import type { Logger } from "../log.js";
import { ForeignDocumentError } from "../relay/links.js";
import { TeamError } from "../relay/teams.js";

/** The one error type a handler throws on purpose: a status, a stable code and a message safe for clients. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** Extra fields of the error body (the gateway answers in the classic `{success, message}` shape). */
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = "ApiError";
  }
}

/** A JSON Schema (2020-12, as OpenAPI 3.1 uses). Kept as plain data. */
export type Schema = Record<string, unknown>;

export interface RouteContext {
  /** Undefined only on routes with `auth: false`. */
  claims: Claims | undefined;
  params: Record<string, string>;
  query: Record<string, string>;
  body: Record<string, unknown>;
  headers: Request["headers"];
  /** Client address, for rate limits. */
  ip: string;
  log: Logger;
}

export type RouteResult =
  | { status: number; body: unknown; headers?: Record<string, string> }
  /** Exact bytes to send (idempotent replays answer byte for byte). */
  | { status: number; raw: string; headers?: Record<string, string> };

export interface Route {
  method: "get" | "post" | "patch";
  /** Express form, `/teams/:team`; OpenAPI paths are derived from it. */
  path: string;
  summary: string;
  tag: string;
  /** False for login; everything else needs a Bearer token. */
  auth?: boolean;
  /** Classic gateway routes: every error body also carries `{success: false, message}`, as the classic API's do. */
  classic?: boolean;
  authorize?(claims: Claims, ctx: RouteContext): boolean;
  /** Names of accepted query parameters and their descriptions. */
  query?: Record<string, string>;
  headers?: Record<string, string>;
  body?: Schema;
  /** Status → schema of the JSON body. Every status a handler may answer is listed. */
  responses: Record<number, { description: string; schema: Schema }>;
  handle(ctx: RouteContext): Promise<RouteResult>;
}

export function authenticate(req: Request, verify: (token: string) => Claims): Claims {
  const auth = req.headers.authorization;
  if (typeof auth !== "string" || !auth.startsWith("Bearer ")) throw new ApiError(401, "unauthorized", "Bearer token required");
  try {
    return verify(auth.slice(7).trim());
  } catch (err) {
    throw new ApiError(401, "unauthorized", err instanceof Error ? err.message : "token refused");
  }
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function queryOf(req: Request): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.query)) if (typeof v === "string") out[k] = v;
  return out;
}

/** Runs one route for one request; never lets an exception (or its stack) reach the client. */
export async function runRoute(route: Route, req: Request, res: Response, deps: { verify(token: string): Claims; logger: Logger }): Promise<void> {
  const log = deps.logger;
  try {
    const claims = route.auth === false ? undefined : authenticate(req, deps.verify);
    if (route.body && req.body !== undefined && !isObject(req.body)) {
      throw new ApiError(400, "invalid-body", "request body must be a JSON object");
    }
    const ctx: RouteContext = {
      claims,
      params: req.params as Record<string, string>,
      query: queryOf(req),
      body: isObject(req.body) ? req.body : {},
      headers: req.headers,
      ip: req.ip ?? req.socket.remoteAddress ?? "unknown",
      log,
    };
    if (claims && route.authorize && !route.authorize(claims, ctx)) {
      throw new ApiError(403, "forbidden", `role ${claims.role} of team ${claims.team} may not ${route.method.toUpperCase()} ${req.baseUrl}${route.path}`);
    }
    const out = await route.handle(ctx);
    if (out.headers) res.set(out.headers);
    if ("raw" in out) res.status(out.status).type("application/json").send(out.raw);
    else res.status(out.status).json(out.body);
  } catch (err) {
    sendError(res, err, log, route.classic === true);
  }
}

/** With `classic`, the body also has the classic gateway's `success: false` and `message`. */
export function errorBody(code: string, message: string, extra: Record<string, unknown> = {}, classic = false): Record<string, unknown> {
  return { ...(classic ? { success: false, message } : {}), ...extra, error: { code, message } };
}

export function sendError(res: Response, err: unknown, logger: Logger, classic = false): void {
  if (err instanceof ApiError) {
    res.status(err.status).json(errorBody(err.code, err.message, err.extra, classic));
    return;
  }
  if (err instanceof TeamError) {
    res.status(err.status).json(errorBody(err.code, err.message, {}, classic));
    return;
  }
  if (err instanceof ForeignDocumentError) {
    // The team's documents link to one registered elsewhere: refused, and the client is told
    // which of its team's documents is wrong without learning whose the linked one is.
    logger.error({ team: err.team, documentId: err.documentId, kind: err.kind, reason: err.reason }, "refused a linked document not registered to the team");
    res.status(500).json(errorBody("foreign-document", `team ${err.team}: its ${err.kind} link is refused (not a document of this team)`));
    return;
  }
  logger.error({ err }, "api request failed");
  res.status(500).json(errorBody("internal", "internal error", {}, classic));
}

/** `?limit=` for every list: 1..500, default 100. */
export function pageLimit(raw: string | undefined, fallback = 100): number {
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 500) throw new ApiError(400, "invalid-query", "limit must be an integer from 1 to 500");
  return n;
}
