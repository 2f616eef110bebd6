/**
 * Sync status per device: what the classic queue designs showed as pending and failed counts.
 * Segments are found through the team's segment registry (`<deviceId>/<n>` keys), counts from
 * the rows the materializer keeps per segment (sync-counts.ts; no scan of the journal), last
 * seen from `device_activity`, and the materializer's lag from its checkpoint.
 */
import type { AutomergeUrl } from "@automerge/automerge-repo";
import type { SegmentRegistryDoc, TeamRootDoc } from "../../../shared/docs.js";
import { activityCollection, isConnected } from "../../accounts/activity.js";
import { teamProblems as recordedProblems } from "../../health/team-health.js";
import { checkedLink, ForeignDocumentError } from "../../relay/links.js";
import type { ApiDeps } from "../deps.js";
import { ApiError, type Route } from "../route.js";
import { errors } from "../schemas.js";
import { readTeam } from "./reads.js";
import { deviceRows } from "./sync-counts.js";

const int = { type: "integer" };
const Device = {
  type: "object",
  required: ["device", "segments", "entries", "decided", "undecided", "deferred", "rejected", "quarantined", "lastSeen", "connected"],
  properties: {
    device: { type: "string" }, segments: int, entries: { type: ["integer", "null"] }, decided: int, undecided: { type: ["integer", "null"] },
    deferred: int, rejected: int, quarantined: int, lastSeen: { type: ["string", "null"] }, connected: { type: "boolean" }, user: { type: ["string", "null"] },
    duplicates: int,
    duplicateEntries: { type: "array", items: { type: "object", required: ["id", "segments"], properties: { id: { type: "string" }, segments: { type: "array", items: { type: "string" } } } } },
  },
};

const Health = {
  type: "object",
  required: ["ok", "problems"],
  properties: {
    ok: { type: "boolean" },
    problems: {
      type: "array",
      items: {
        type: "object",
        required: ["document", "role", "since", "reason", "source"],
        properties: {
          document: { type: ["string", "null"] }, role: { type: ["string", "null"] }, since: { type: "string" }, reason: { type: "string" },
          source: { enum: ["materializer", "relay-storage"] },
        },
      },
    },
  },
};

export function statusRoutes({ c, db, repo, registry, teamProblems, pointLookups = false }: ApiDeps): Route[] {
  const problemsOf = teamProblems ?? ((team: string) => recordedProblems(db, { damaged: () => [] }, registry, team));
  return [
    {
      method: "get",
      path: "/sync-status",
      summary: "Per device: last seen, entries undecided, rejections; and the materializer's lag",
      tag: "operations",
      query: { team: "team to read (service tokens only)" },
      authorize: () => true,
      responses: {
        200: {
          description: "status",
          schema: {
            type: "object",
            required: ["team", "health", "devices", "materializer"],
            properties: {
              team: { type: "string" },
              health: Health,
              devices: { type: "array", items: Device },
              materializer: {
                type: "object",
                required: ["journalSeq", "projectedSeq", "behind", "undecided", "deferred"],
                properties: { journalSeq: int, projectedSeq: int, behind: int, undecided: { type: ["integer", "null"] }, deferred: int, lastDecisionAt: { type: ["string", "null"] } },
              },
            },
          },
        },
        ...errors(400, 401, 403, 404),
      },
      async handle(ctx) {
        const team = readTeam(ctx.claims!, ctx.query);
        const rec = await registry.getTeam(team);
        if (!rec) throw new ApiError(404, "no-such-team", `team ${team} does not exist`);
        const problemsNow = async () => (await problemsOf(team)).map(({ team: _team, ...p }) => p);
        let problems = await problemsNow();
        let segments: [string, AutomergeUrl][] = [];
        try {
          const root = (await repo.find<TeamRootDoc>(`automerge:${rec.rootDocumentId}` as AutomergeUrl)).doc();
          segments = Object.entries((await repo.find<SegmentRegistryDoc>(await checkedLink(registry, team, "segment-registry", root.registry))).doc().segments ?? {});
        } catch (err) {
          // The figures from MongoDB still stand; the devices' counts need the team's documents.
          // This very load may be what found the damage: look again.
          problems = await problemsNow();
          if (err instanceof ForeignDocumentError || problems.length === 0) throw err;
        }
        const [counted, activity, state, kept] = await Promise.all([
          c.segmentCounts.find({ team }).toArray(),
          activityCollection(db).find({ team }).toArray(),
          c.teamState.findOne({ _id: team }),
          c.journalHeads.findOne({ _id: team }),
        ]);
        // The head the materializer keeps; only a database from before it has the journal sorted.
        const head =
          kept
            ? { seq: Math.max(kept.seq, state?.projectedSeq ?? 0), decidedAt: kept.decidedAt }
            : await c.journal.find({ team }).sort({ seq: -1 }).limit(1).project<{ seq: number; decidedAt: string }>({ seq: 1, decidedAt: 1 }).next();
        const rows = await deviceRows({ c, repo, registry, pointLookups }, team, segments, counted);
        const seen = new Map(activity.map((a) => [a.device ?? `user:${a.user}`, a]));
        const devices = [...rows.values()].map((r) => {
          // Gateway segments (`gw-<device>`) were last active when their device was.
          const a = seen.get(r.device) ?? seen.get(r.device.replace(/^gw-/, ""));
          return {
            ...r,
            undecided: r.entries === null ? null : Math.max(0, r.entries - r.decided - r.deferred - r.duplicates),
            lastSeen: a?.lastSeen.toISOString() ?? null,
            connected: a ? isConnected(a) : false,
            user: a?.user ?? null,
          };
        });
        for (const [key, a] of seen) {
          if (!rows.has(key)) {
            devices.push({ device: key, segments: 0, entries: 0, decided: 0, deferred: 0, rejected: 0, quarantined: 0, duplicates: 0, duplicateEntries: [], undecided: 0, lastSeen: a.lastSeen.toISOString(), connected: isConnected(a), user: a.user });
          }
        }
        devices.sort((x, y) => (x.device < y.device ? -1 : x.device > y.device ? 1 : 0));
        const journalSeq = head?.seq ?? 0;
        const projectedSeq = state?.projectedSeq ?? 0;
        const undecided = devices.some((d) => d.undecided === null) ? null : devices.reduce((s, d) => s + (d.undecided ?? 0), 0);
        return {
          status: 200,
          body: {
            team,
            health: { ok: problems.length === 0, problems },
            devices,
            materializer: {
              journalSeq, projectedSeq, behind: Math.max(0, journalSeq - projectedSeq), undecided,
              deferred: counted.reduce((n, r) => n + r.deferred, 0), lastDecisionAt: head?.decidedAt ?? null,
            },
          },
        };
      },
    },
  ];
}
