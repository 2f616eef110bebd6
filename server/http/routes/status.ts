/**
 * Sync status per device: what the classic queue designs showed as pending and failed counts.
 * Segments are found through the team's segment registry (`<deviceId>/<n>` keys), counts come
 * from the journal's provenance (one `$group` per collection, one accumulator each, as FerretDB
 * v1 needs), last seen from `device_activity`, and the materializer's lag from its checkpoint.
 */
import { parseAutomergeUrl, type AutomergeUrl } from "@automerge/automerge-repo";
import type { Collection, Document } from "mongodb";
import type { LedgerSegmentDoc, SegmentRegistryDoc, TeamRootDoc } from "../../../shared/docs.js";
import { activityCollection, isConnected } from "../../accounts/activity.js";
import type { ApiDeps } from "../deps.js";
import { ApiError, type Route } from "../route.js";
import { errors } from "../schemas.js";
import { readTeam } from "./reads.js";

/** Segments whose entries are counted per request; a bigger team shows `entries: null` beyond it. */
const MAX_SEGMENTS_LOADED = 200;

async function countBy(col: Collection<Document>, team: string, field: string): Promise<Map<string, number>> {
  const rows = await col.aggregate<{ _id: string; n: number }>([{ $match: { team } }, { $group: { _id: `$${field}`, n: { $sum: 1 } } }]).toArray();
  return new Map(rows.map((r) => [String(r._id), r.n]));
}

const int = { type: "integer" };
const Device = {
  type: "object",
  required: ["device", "segments", "entries", "decided", "undecided", "deferred", "rejected", "quarantined", "lastSeen", "connected"],
  properties: {
    device: { type: "string" }, segments: int, entries: { type: ["integer", "null"] }, decided: int, undecided: { type: ["integer", "null"] },
    deferred: int, rejected: int, quarantined: int, lastSeen: { type: ["string", "null"] }, connected: { type: "boolean" }, user: { type: ["string", "null"] },
  },
};

export function statusRoutes({ c, db, repo, registry }: ApiDeps): Route[] {
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
            required: ["team", "devices", "materializer"],
            properties: {
              team: { type: "string" },
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
        const root = (await repo.find<TeamRootDoc>(`automerge:${rec.rootDocumentId}` as AutomergeUrl)).doc();
        const segments = Object.entries((await repo.find<SegmentRegistryDoc>(root.registry)).doc().segments ?? {});
        const [decided, deferred, rejected, quarantined, activity, head, state] = await Promise.all([
          countBy(c.journal as unknown as Collection<Document>, team, "provenance.segment"),
          countBy(c.deferred as unknown as Collection<Document>, team, "provenance.segment"),
          countBy(c.rejections as unknown as Collection<Document>, team, "segment"),
          countBy(c.quarantine as unknown as Collection<Document>, team, "segment"),
          activityCollection(db).find({ team }).toArray(),
          c.journal.find({ team }).sort({ seq: -1 }).limit(1).project<{ seq: number; decidedAt: string }>({ seq: 1, decidedAt: 1 }).next(),
          c.teamState.findOne({ _id: team }),
        ]);

        interface Row { device: string; segments: number; entries: number | null; decided: number; deferred: number; rejected: number; quarantined: number }
        const rows = new Map<string, Row>();
        let loaded = 0;
        for (const [key, url] of segments) {
          const device = key.slice(0, key.lastIndexOf("/")) || key;
          let row = rows.get(device);
          if (!row) rows.set(device, (row = { device, segments: 0, entries: 0, decided: 0, deferred: 0, rejected: 0, quarantined: 0 }));
          row.segments += 1;
          let documentId: string;
          try {
            documentId = parseAutomergeUrl(url).documentId;
          } catch {
            continue;
          }
          row.decided += decided.get(documentId) ?? 0;
          row.deferred += deferred.get(documentId) ?? 0;
          row.rejected += rejected.get(documentId) ?? 0;
          row.quarantined += quarantined.get(documentId) ?? 0;
          if (row.entries !== null && loaded < MAX_SEGMENTS_LOADED && (await registry.lookup(documentId))?.team === team) {
            loaded += 1;
            const doc = (await repo.find<LedgerSegmentDoc>(url)).doc();
            row.entries += Object.keys(doc.entries ?? {}).length;
          } else row.entries = null;
        }
        const seen = new Map(activity.map((a) => [a.device ?? `user:${a.user}`, a]));
        const devices = [...rows.values()].map((r) => {
          // Gateway segments (`gw-<device>`) were last active when their device was.
          const a = seen.get(r.device) ?? seen.get(r.device.replace(/^gw-/, ""));
          return {
            ...r,
            undecided: r.entries === null ? null : Math.max(0, r.entries - r.decided - r.deferred),
            lastSeen: a?.lastSeen.toISOString() ?? null,
            connected: a ? isConnected(a) : false,
            user: a?.user ?? null,
          };
        });
        for (const [key, a] of seen) {
          if (!rows.has(key)) {
            devices.push({ device: key, segments: 0, entries: 0, decided: 0, deferred: 0, rejected: 0, quarantined: 0, undecided: 0, lastSeen: a.lastSeen.toISOString(), connected: isConnected(a), user: a.user });
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
            devices,
            materializer: {
              journalSeq, projectedSeq, behind: Math.max(0, journalSeq - projectedSeq), undecided,
              deferred: [...deferred.values()].reduce((s, n) => s + n, 0), lastDecisionAt: head?.decidedAt ?? null,
            },
          },
        };
      },
    },
  ];
}
