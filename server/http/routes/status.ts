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
import { teamProblems as recordedProblems } from "../../health/team-health.js";
import { checkedLink, ForeignDocumentError } from "../../relay/links.js";
import { teamKey } from "../../materializer/collections.js";
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

/** Duplicate entries named per device in the answer; the count covers them all. */
const MAX_DUPLICATES_LISTED = 100;

export function statusRoutes({ c, db, repo, registry, teamProblems }: ApiDeps): Route[] {
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
        const [decided, deferred, rejected, quarantined, activity, head, state] = await Promise.all([
          countBy(c.journal as unknown as Collection<Document>, team, "provenance.segment"),
          countBy(c.deferred as unknown as Collection<Document>, team, "provenance.segment"),
          countBy(c.rejections as unknown as Collection<Document>, team, "segment"),
          countBy(c.quarantine as unknown as Collection<Document>, team, "segment"),
          activityCollection(db).find({ team }).toArray(),
          c.journal.find({ team }).sort({ seq: -1 }).limit(1).project<{ seq: number; decidedAt: string }>({ seq: 1, decidedAt: 1 }).next(),
          c.teamState.findOne({ _id: team }),
        ]);

        interface Row {
          device: string; segments: number; entries: number | null; decided: number; deferred: number; rejected: number; quarantined: number;
          duplicates: number; duplicateEntries: { id: string; segments: string[] }[];
        }
        const rows = new Map<string, Row>();
        const deviceOf = (key: string): string => key.slice(0, key.lastIndexOf("/")) || key;
        // Registry keys of the segments holding each entry id: the journal decides an id once.
        const holders = new Map<string, string[]>();
        const documentOf = new Map<string, string>();
        let loaded = 0;
        for (const [key, url] of segments) {
          const device = deviceOf(key);
          let row = rows.get(device);
          if (!row) rows.set(device, (row = { device, segments: 0, entries: 0, decided: 0, deferred: 0, rejected: 0, quarantined: 0, duplicates: 0, duplicateEntries: [] }));
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
          documentOf.set(key, documentId);
          if (row.entries !== null && loaded < MAX_SEGMENTS_LOADED && (await registry.lookup(documentId))?.team === team) {
            loaded += 1;
            const doc = (await repo.find<LedgerSegmentDoc>(url)).doc();
            const ids = Object.keys(doc.entries ?? {});
            row.entries += ids.length;
            for (const id of ids) {
              const held = holders.get(id);
              if (held) held.push(key);
              else holders.set(id, [key]);
            }
          } else row.entries = null;
        }
        await countDuplicates(c, team, holders, documentOf, (key) => rows.get(deviceOf(key)));
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
              deferred: [...deferred.values()].reduce((s, n) => s + n, 0), lastDecisionAt: head?.decidedAt ?? null,
            },
          },
        };
      },
    },
  ];
}

/**
 * An entry id listed in several segments is decided once, where the journal says (its
 * provenance); every other copy is a duplicate of the row holding it, not an undecided entry.
 * Before its decision the first holder in registry order counts it.
 */
async function countDuplicates(
  c: ApiDeps["c"],
  team: string,
  holders: ReadonlyMap<string, string[]>,
  documentOf: ReadonlyMap<string, string>,
  rowOf: (key: string) => { duplicates: number; duplicateEntries: { id: string; segments: string[] }[] } | undefined,
): Promise<void> {
  const repeated = [...holders].filter(([, keys]) => keys.length > 1);
  if (repeated.length === 0) return;
  const home = new Map<string, string>();
  const records = await c.journal.find({ _id: { $in: repeated.map(([id]) => teamKey(team, id)) } }, { projection: { entryId: 1, provenance: 1 } }).toArray();
  for (const r of records) home.set(r.entryId, r.provenance.segment);
  for (const [id, keys] of repeated) {
    const counted = keys.find((k) => documentOf.get(k) === home.get(id)) ?? keys[0];
    const listed = new Set<unknown>();
    for (const key of keys) {
      if (key === counted) continue;
      const row = rowOf(key);
      if (!row) continue;
      row.duplicates += 1;
      if (!listed.has(row) && row.duplicateEntries.length < MAX_DUPLICATES_LISTED) row.duplicateEntries.push({ id, segments: keys });
      listed.add(row);
    }
  }
}
