/** `/api/openapi.json`, generated from the route records themselves. */
import type { Route, Schema } from "./route.js";

export function toOpenApiPath(expressPath: string): string {
  return expressPath.replace(/:([A-Za-z0-9_]+)/g, "{$1}");
}

export function openApiDocument(routes: readonly Route[], prefix = "/api"): Schema {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const path = prefix + toOpenApiPath(r.path);
    const params = [
      ...[...r.path.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => ({ name: m[1], in: "path", required: true, schema: { type: "string" } })),
      ...Object.entries(r.query ?? {}).map(([name, description]) => ({ name, in: "query", required: false, description, schema: { type: "string" } })),
      ...Object.entries(r.headers ?? {}).map(([name, description]) => ({ name, in: "header", required: false, description, schema: { type: "string" } })),
    ];
    const op: Record<string, unknown> = {
      summary: r.summary,
      tags: [r.tag],
      operationId: `${r.method}${path.replace(/[^A-Za-z0-9]+(.)?/g, (_m, ch: string | undefined) => (ch ? ch.toUpperCase() : ""))}`,
      responses: Object.fromEntries(
        Object.entries(r.responses).map(([status, resp]) => [status, { description: resp.description, content: { "application/json": { schema: resp.schema } } }]),
      ),
    };
    if (params.length > 0) op.parameters = params;
    if (r.body) op.requestBody = { required: true, content: { "application/json": { schema: r.body } } };
    if (r.auth === false) op.security = [];
    (paths[path] ??= {})[r.method] = op;
  }
  return {
    openapi: "3.1.0",
    info: { title: "ledger-sync API", version: "0.1.0", description: "Accounts, the classic batch-sync gateway, auditor reads and sync status. Money is integer minor units." },
    servers: [{ url: "/" }],
    components: { securitySchemes: { bearer: { type: "http", scheme: "bearer", bearerFormat: "JWT (ES256)" } } },
    security: [{ bearer: [] }],
    paths,
  };
}
