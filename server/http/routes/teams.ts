/** Team creation and the server-made documents of a team (the relay's original routes). */
import { isId, isTeamId } from "../../../shared/auth/claims.js";
import type { DocKind } from "../../../shared/docs.js";
import type { ApiDeps } from "../deps.js";
import { ApiError, type Route } from "../route.js";
import { errors } from "../schemas.js";

const SERVER_KINDS: readonly DocKind[] = ["verdicts", "status"];

const CreatedTeam = {
  type: "object",
  required: ["team", "rootUrl", "catalogUrl", "registryUrl", "statusUrl"],
  properties: { team: { type: "string" }, rootUrl: { type: "string" }, catalogUrl: { type: "string" }, registryUrl: { type: "string" }, statusUrl: { type: "string" } },
};

/** Offline stock allowances (shared/domain/allowances.ts, README "Offline stock allowances"). */
const Allowances = {
  type: "object",
  additionalProperties: false,
  properties: {
    items: { oneOf: [{ const: "all" }, { type: "array", maxItems: 10_000, items: { type: "string", maxLength: 64 } }] },
    atRisk: { enum: ["flag", "refuse"] },
    sharePercent: { type: "integer", minimum: 0, maximum: 100 },
  },
};

const Settings = {
  type: "object",
  required: ["oversell", "deferWaitSeconds"],
  properties: {
    oversell: { enum: ["reject", "allow-negative"] },
    deferWaitSeconds: { type: "integer", minimum: 0, maximum: 31_536_000 },
    allowances: Allowances,
    closeAfterHours: { type: ["integer", "null"], minimum: 0, maximum: 8_760, description: "close each day this many hours after its end (UTC); null: only an admin closes days" },
  },
};

export function teamRoutes({ teams }: ApiDeps): Route[] {
  return [
    {
      method: "post",
      path: "/teams",
      summary: "Create a team and its documents",
      tag: "teams",
      body: { type: "object", required: ["team"], properties: { team: { type: "string" }, settings: { type: "object" } } },
      // A service, or an admin whose token already names the team it sets up.
      authorize: (c, ctx) => c.role === "service" || (c.role === "admin" && c.team === ctx.body.team),
      responses: { 201: { description: "created", schema: CreatedTeam }, ...errors(400, 401, 403, 409) },
      async handle({ body }) {
        if (!isTeamId(body.team)) throw new ApiError(400, "invalid-team", "body.team: expected [a-z0-9][a-z0-9_-]{0,62}");
        const settings = typeof body.settings === "object" && body.settings !== null ? body.settings : {};
        return { status: 201, body: await teams.createTeam(body.team, settings) };
      },
    },
    {
      method: "get",
      path: "/teams/:team",
      summary: "The team's root document URL",
      tag: "teams",
      authorize: (c, ctx) => c.role === "service" || c.team === ctx.params.team,
      responses: {
        200: { description: "the root URL", schema: { type: "object", required: ["team", "rootUrl"], properties: { team: { type: "string" }, rootUrl: { type: "string" } } } },
        ...errors(401, 403, 404),
      },
      async handle({ params }) {
        const rootUrl = await teams.rootUrl(params.team ?? "");
        if (!rootUrl) throw new ApiError(404, "no-such-team", `team ${params.team} does not exist`);
        return { status: 200, body: { team: params.team, rootUrl } };
      },
    },
    {
      method: "patch",
      path: "/teams/:team/settings",
      summary: "Change the team's settings (the server writes them to the read-only root)",
      tag: "teams",
      body: { ...Settings, required: [], minProperties: 1, additionalProperties: false },
      authorize: (c, ctx) => c.role === "service" || (c.role === "admin" && c.team === ctx.params.team),
      responses: {
        200: { description: "the settings now in force", schema: { type: "object", required: ["team", "settings"], properties: { team: { type: "string" }, settings: Settings } } },
        ...errors(400, 401, 403, 404),
      },
      async handle({ params, body }) {
        const team = params.team ?? "";
        return { status: 200, body: { team, settings: await teams.updateSettings(team, body) } };
      },
    },
    {
      method: "post",
      path: "/teams/:team/documents",
      summary: "Register a server-made document (services only)",
      tag: "teams",
      body: { type: "object", required: ["kind", "documentId"], properties: { kind: { enum: SERVER_KINDS }, documentId: { type: "string" } } },
      authorize: (c) => c.role === "service",
      responses: {
        201: { description: "registered", schema: { type: "object", required: ["url"], properties: { url: { type: "string" } } } },
        ...errors(400, 401, 403, 404, 409),
      },
      async handle({ params, body, claims }) {
        const kind = body.kind;
        if (typeof kind !== "string" || !(SERVER_KINDS as readonly string[]).includes(kind)) {
          throw new ApiError(400, "invalid-kind", `body.kind: expected one of ${SERVER_KINDS.join(", ")}`);
        }
        if (!isId(body.documentId)) throw new ApiError(400, "invalid-document", "body.documentId: expected an Automerge document id");
        await teams.registerDocument(params.team ?? "", body.documentId, kind as DocKind, claims!.sub);
        return { status: 201, body: { url: `automerge:${body.documentId}` } };
      },
    },
  ];
}
