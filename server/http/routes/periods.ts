/**
 * Closed periods (docs/AUDIT.md "Closed periods"): an admin asks to close the team's books
 * through a day; auditors and admins read what is closed. The API only stores the request: the
 * team's materializer applies it between two batches (server/materializer/periods.ts), so no
 * entry is decided while a close is half made. The request waits a little for it.
 */
import { dayOf, isDay } from "../../../shared/domain/index.js";
import type { Claims } from "../../../shared/auth/claims.js";
import { teamKey, type ClosedPeriodDoc } from "../../materializer/collections.js";
import { latestClose } from "../../materializer/periods.js";
import type { ApiDeps } from "../deps.js";
import { ApiError, type Route } from "../route.js";
import { errors, SummaryRow } from "../schemas.js";

/** How long a close request waits for the materializer before answering 202. */
const WAIT_MS = 10_000;
const POLL_MS = 200;

const str = { type: "string" };
const ClosedPeriod = {
  type: "object",
  required: ["through", "previousThrough", "seq", "head", "closedAt", "closedBy", "cause", "summaries"],
  properties: {
    through: str, previousThrough: { type: ["string", "null"] }, seq: { type: "integer" }, head: str, closedAt: str,
    closedBy: { type: ["string", "null"] }, cause: { enum: ["admin", "setting"] }, summaries: { type: "array", items: SummaryRow },
  },
};
const CloseResult = {
  type: "object",
  required: ["team", "through", "status"],
  properties: { team: str, through: str, status: { enum: ["closed", "already-closed", "pending"] }, close: ClosedPeriod, message: str },
};

const sameTeam = (roles: readonly string[]) => (c: Claims, ctx: { params: Record<string, string> }): boolean =>
  c.role === "service" || (roles.includes(c.role) && c.team === ctx.params.team);

function view(doc: ClosedPeriodDoc): Omit<ClosedPeriodDoc, "_id" | "team"> {
  const { _id: _ignored, team: _team, ...rest } = doc;
  return rest;
}

export function periodRoutes({ c, teams }: ApiDeps): Route[] {
  const existing = async (team: string): Promise<void> => {
    if (!(await teams.rootUrl(team))) throw new ApiError(404, "no-such-team", `team ${team} does not exist`);
  };
  return [
    {
      method: "post",
      path: "/teams/:team/periods/close",
      summary: "Close the team's books through a day (and every day before it): admins of the team",
      tag: "teams",
      body: { type: "object", required: ["through"], additionalProperties: false, properties: { through: { ...str, description: "YYYY-MM-DD (UTC), today at the latest" } } },
      authorize: sameTeam(["admin"]),
      responses: {
        200: { description: "closed (now, or already before)", schema: CloseResult },
        202: { description: "asked: the materializer closes it between two batches", schema: CloseResult },
        ...errors(400, 401, 403, 404),
      },
      async handle({ params, body, claims }) {
        const team = params.team ?? "";
        const through = body.through;
        const extra = Object.keys(body).filter((k) => k !== "through");
        if (extra.length > 0) throw new ApiError(400, "invalid-body", `body: unknown field ${JSON.stringify(extra[0]!.slice(0, 60))}`);
        if (!isDay(through)) throw new ApiError(400, "invalid-day", "body.through: expected a day as YYYY-MM-DD");
        const today = dayOf(new Date().toISOString());
        if (through > today) throw new ApiError(400, "invalid-day", `body.through: ${through} has not ended yet (today is ${today}, UTC)`);
        await existing(team);
        const current = await latestClose(c, team);
        if (current && current.through >= through) {
          return { status: 200, body: { team, through, status: "already-closed", close: view(current) } };
        }
        await c.closeRequests.replaceOne(
          { _id: teamKey(team, through) },
          { team, through, by: claims!.sub, requestedAt: new Date().toISOString() },
          { upsert: true },
        );
        for (const deadline = Date.now() + WAIT_MS; Date.now() < deadline; ) {
          await new Promise((r) => setTimeout(r, POLL_MS));
          const now = await latestClose(c, team);
          if (now && now.through >= through) return { status: 200, body: { team, through, status: "closed", close: view(now) } };
        }
        return {
          status: 202,
          body: { team, through, status: "pending", message: "asked; the team's materializer closes it between two batches (GET /api/teams/:team/periods shows it then)" },
        };
      },
    },
    {
      method: "get",
      path: "/teams/:team/periods",
      summary: "The team's closed periods and pending close requests: auditors and admins of the team",
      tag: "audit",
      authorize: sameTeam(["admin", "auditor"]),
      responses: {
        200: {
          description: "closes, oldest first",
          schema: {
            type: "object",
            required: ["team", "closedThrough", "closes", "pending"],
            properties: {
              team: str, closedThrough: { type: ["string", "null"] }, closes: { type: "array", items: ClosedPeriod },
              pending: { type: "array", items: { type: "object", properties: { through: str, by: str, requestedAt: str } } },
            },
          },
        },
        ...errors(401, 403, 404),
      },
      async handle({ params }) {
        const team = params.team ?? "";
        await existing(team);
        const closes = await c.closedPeriods.find({ team }).sort({ through: 1 }).toArray();
        const pending = (await c.closeRequests.find({ team }).sort({ through: 1 }).toArray()).map((r) => ({ through: r.through, by: r.by, requestedAt: r.requestedAt }));
        return { status: 200, body: { team, closedThrough: closes.at(-1)?.through ?? null, closes: closes.map(view), pending } };
      },
    },
  ];
}
