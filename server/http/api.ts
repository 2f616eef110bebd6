/**
 * The minimal `/api` routes of the relay: create a team, register a server-made document, read
 * a team's root URL. Routes are data, run by one function in the same order every time:
 * authenticate, authorize, validate, handle.
 */
import express, { type Request, type Response, type Router } from "express";
import { isId, isTeamId, type Claims } from "../../shared/auth/claims.js";
import type { DocKind } from "../../shared/docs.js";
import type { Logger } from "../log.js";
import { TeamError, type Teams } from "../relay/teams.js";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

interface Route {
  method: "get" | "post";
  path: string;
  authorize(claims: Claims, params: Record<string, string>, body: Record<string, unknown>): boolean;
  handle(ctx: { claims: Claims; params: Record<string, string>; body: Record<string, unknown> }): Promise<{ status: number; body: unknown }>;
}

const SERVER_KINDS: readonly DocKind[] = ["verdicts", "status"];

export function apiRouter(deps: { teams: Teams; verify(token: string): Claims; logger: Logger }): Router {
  const { teams } = deps;
  const routes: Route[] = [
    {
      method: "post",
      path: "/teams",
      // A service, or an admin whose token already names the team it sets up.
      authorize: (c, _p, b) => c.role === "service" || (c.role === "admin" && c.team === b.team),
      async handle({ body }) {
        if (!isTeamId(body.team)) throw new ApiError(400, "invalid-team", "body.team: expected [a-z0-9][a-z0-9_-]{0,62}");
        const settings = typeof body.settings === "object" && body.settings !== null ? body.settings : {};
        const created = await teams.createTeam(body.team, settings);
        return { status: 201, body: created };
      },
    },
    {
      method: "get",
      path: "/teams/:team",
      authorize: (c, p) => c.role === "service" || c.team === p.team,
      async handle({ params }) {
        const rootUrl = await teams.rootUrl(params.team ?? "");
        if (!rootUrl) throw new ApiError(404, "no-such-team", `team ${params.team} does not exist`);
        return { status: 200, body: { team: params.team, rootUrl } };
      },
    },
    {
      method: "post",
      path: "/teams/:team/documents",
      authorize: (c) => c.role === "service",
      async handle({ params, body, claims }) {
        const kind = body.kind;
        if (typeof kind !== "string" || !(SERVER_KINDS as readonly string[]).includes(kind)) {
          throw new ApiError(400, "invalid-kind", `body.kind: expected one of ${SERVER_KINDS.join(", ")}`);
        }
        if (!isId(body.documentId)) throw new ApiError(400, "invalid-document", "body.documentId: expected an Automerge document id");
        await teams.registerDocument(params.team ?? "", body.documentId, kind as DocKind, claims.sub);
        return { status: 201, body: { url: `automerge:${body.documentId}` } };
      },
    },
  ];

  const router = express.Router();
  router.use(express.json({ limit: "64kb" }));
  for (const route of routes) {
    router[route.method](route.path, async (req: Request, res: Response) => {
      try {
        const claims = authenticate(req, deps.verify);
        const params = req.params as Record<string, string>;
        const body = isObject(req.body) ? req.body : {};
        if (!route.authorize(claims, params, body)) throw new ApiError(403, "forbidden", "this token may not do that");
        const out = await route.handle({ claims, params, body });
        res.status(out.status).json(out.body);
      } catch (err) {
        sendError(res, err, deps.logger);
      }
    });
  }
  router.use((_req: Request, res: Response) => {
    res.status(404).json({ error: { code: "not-found", message: "no such route" } });
  });
  return router;
}

function authenticate(req: Request, verify: (token: string) => Claims): Claims {
  const auth = req.headers.authorization;
  if (typeof auth !== "string" || !auth.startsWith("Bearer ")) throw new ApiError(401, "unauthorized", "Bearer token required");
  try {
    return verify(auth.slice(7).trim());
  } catch (err) {
    throw new ApiError(401, "unauthorized", err instanceof Error ? err.message : "token refused");
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function sendError(res: Response, err: unknown, logger: Logger): void {
  if (err instanceof ApiError || err instanceof TeamError) {
    res.status(err.status).json({ error: { code: err.code, message: err.message } });
    return;
  }
  logger.error({ err }, "api request failed");
  res.status(500).json({ error: { code: "internal", message: "internal error" } });
}
