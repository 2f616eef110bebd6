/**
 * The `/api` router: every route record (teams, accounts, the classic gateway, auditor reads,
 * sync status) mounted by one runner, plus `/api/openapi.json` generated from the same records.
 * Bodies are JSON up to 1 MB; malformed or oversized bodies answer with a clear message.
 */
import express, { type NextFunction, type Request, type Response, type Router } from "express";
import type { ApiDeps } from "./deps.js";
import { noStore } from "./headers.js";
import { openApiDocument } from "./openapi.js";
import { errorBody, runRoute, type Route } from "./route.js";
import { accountRoutes } from "./routes/accounts.js";
import { certificateRoutes } from "./routes/certificates.js";
import { gatewayRoutes } from "./routes/gateway.js";
import { periodRoutes } from "./routes/periods.js";
import { readRoutes } from "./routes/reads.js";
import { statusRoutes } from "./routes/status.js";
import { teamRoutes } from "./routes/teams.js";

export { ApiError } from "./route.js";
export type { ApiDeps } from "./deps.js";

export const BODY_LIMIT = "1mb";

export function apiRoutes(deps: ApiDeps): Route[] {
  const routes: Route[] = [...teamRoutes(deps), ...accountRoutes(deps), ...certificateRoutes(deps), ...gatewayRoutes(deps), ...readRoutes(deps), ...statusRoutes(deps), ...periodRoutes(deps)];
  routes.push({
    method: "get",
    path: "/openapi.json",
    summary: "This document",
    tag: "meta",
    auth: false,
    responses: { 200: { description: "OpenAPI 3.1", schema: { type: "object", required: ["openapi", "paths"] } } },
    handle: async () => ({ status: 200, body: openApiDocument(routes) }),
  });
  return routes;
}

export function apiRouter(deps: ApiDeps): Router {
  const routes = apiRoutes(deps);
  const router = express.Router();
  router.use(noStore);
  router.use(express.json({ limit: BODY_LIMIT, strict: true, type: ["application/json", "application/*+json"] }));
  const verify = (t: string) => deps.tokens.verify(t);
  for (const route of routes) {
    router[route.method](route.path, (req: Request, res: Response) => {
      void runRoute(route, req, res, { verify, logger: deps.logger });
    });
  }
  router.use((_req: Request, res: Response) => {
    res.status(404).json(errorBody("not-found", "no such route"));
  });
  // Body parser failures: a clear message, never the parser's stack. They happen before any
  // route runs, so the classic shape is chosen by path.
  const classicPaths = new Set(routes.filter((r) => r.classic).map((r) => `${r.method.toUpperCase()} ${r.path}`));
  router.use((err: Error & { type?: string; status?: number }, req: Request, res: Response, _next: NextFunction) => {
    const classic = classicPaths.has(`${req.method} ${req.path}`);
    if (err.type === "entity.too.large") {
      res.status(413).json(errorBody("body-too-large", `request body exceeds the ${BODY_LIMIT.replace("mb", " MB")} limit`, {}, classic));
    } else if (err.type === "entity.parse.failed") {
      res.status(400).json(errorBody("malformed-json", "request body is not valid JSON", {}, classic));
    } else if (typeof err.status === "number" && err.status >= 400 && err.status < 500) {
      res.status(err.status).json(errorBody("bad-request", err.message, {}, classic));
    } else {
      deps.logger.error({ err }, "api request failed");
      res.status(500).json(errorBody("internal", "internal error", {}, classic));
    }
  });
  return router;
}
