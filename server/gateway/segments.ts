/**
 * The gateway's ledger segments: one writer per gateway device id (`gw-<device or user>`),
 * registered like any device's segment (the `documents` registry first, then the team's segment
 * registry under `<deviceId>/<n>`), so the materializer decides gateway entries exactly as it
 * decides a tablet's. Rotates at the same bounds as devices (entries, calendar month).
 */
import { isValidAutomergeUrl, parseAutomergeUrl, type DocHandle, type Repo } from "@automerge/automerge-repo";
import { SEGMENT_MAX_ENTRIES, segmentKey, type LedgerSegmentDoc } from "../../shared/docs.js";
import type { LedgerEntry } from "../../shared/domain/index.js";
import type { Logger } from "../log.js";
import { linkRefusal } from "../relay/links.js";
import type { DocumentRegistry } from "../relay/registry.js";
import type { TeamDocs } from "./team-docs.js";

/**
 * The owner recorded for gateway segments. `~` cannot occur in a token's subject, so no device
 * identity (`<sub>/<device>`) ever matches it and only the server writes these segments.
 */
export function gatewayOwner(device: string): string {
  return `~gateway/${device}`;
}

/**
 * Why the registry's link under a gateway key may not be appended to; null when it may. The
 * segment registry is member-writable: a member could name another team's segment (or any
 * document) there, and the gateway writes with the server's authority.
 */
async function segmentRefusal(registry: DocumentRegistry, team: string, device: string, link: unknown): Promise<string | null> {
  if (typeof link !== "string" || !isValidAutomergeUrl(link)) return "not an Automerge URL";
  const rec = await registry.lookup(parseAutomergeUrl(link).documentId);
  const reason = linkRefusal(team, "ledger-segment", rec);
  if (reason !== null) return reason;
  return rec?.owner === gatewayOwner(device) ? null : `owned by ${rec?.owner ?? "nobody"}, not this gateway device`;
}

export async function appendToGatewaySegment(
  repo: Repo,
  registry: DocumentRegistry,
  docs: TeamDocs,
  device: string,
  entries: readonly LedgerEntry[],
  log?: Logger,
): Promise<string> {
  const segments = docs.registry.doc().segments ?? {};
  let n = -1;
  for (const key of Object.keys(segments)) {
    if (!key.startsWith(`${device}/`)) continue;
    const k = Number(key.slice(device.length + 1));
    if (Number.isInteger(k) && k > n) n = k;
  }
  let handle: DocHandle<LedgerSegmentDoc> | undefined;
  // Only a segment registered to this team and owned by this gateway device is appended to;
  // anything else is left alone and the gateway starts its next segment.
  const last = n >= 0 ? segments[segmentKey(device, n)] : undefined;
  const refusal = last === undefined ? null : await segmentRefusal(registry, docs.team, device, last);
  if (refusal !== null) {
    log?.warn({ team: docs.team, key: segmentKey(device, n), link: String(last).slice(0, 80), kind: "ledger-segment", reason: refusal }, "refused a gateway segment link not registered to the team; starting a new segment");
  } else if (last !== undefined) {
    const current = await repo.find<LedgerSegmentDoc>(last);
    const doc = current.doc();
    const size = Object.keys(doc.entries ?? {}).length;
    const sameMonth = typeof doc.createdAt === "string" && doc.createdAt.slice(0, 7) === new Date().toISOString().slice(0, 7);
    if (sameMonth && (size === 0 || size + entries.length <= SEGMENT_MAX_ENTRIES)) handle = current;
  }
  if (!handle) {
    n += 1;
    handle = repo.create<LedgerSegmentDoc>({ type: "ledger-segment", team: docs.team, device, n, createdAt: new Date().toISOString(), entries: {} });
    // Registered to the team before any registry names it: the relay and the materializer
    // accept a segment only when `documents` says whose it is.
    await registry.register({
      _id: handle.documentId, team: docs.team, kind: "ledger-segment", readOnly: false, owner: gatewayOwner(device), createdAt: new Date(),
    });
    const url = handle.url;
    docs.registry.change((d) => {
      d.segments[segmentKey(device, n)] = url;
    });
  }
  handle.change((d) => {
    for (const e of entries) {
      // A retry that finishes an earlier attempt writes only what is missing.
      if (Object.hasOwn(d.entries, e.id)) continue;
      d.entries[e.id] = JSON.parse(JSON.stringify(e)) as unknown;
    }
  });
  await repo.flush([handle.documentId, docs.registry.documentId]);
  return handle.documentId;
}
