/**
 * Links between a team's documents (root → catalog, registry, status; status → verdicts) are
 * claims, not facts (DESIGN.md "Trust boundaries"): the materializer and the API act for every
 * team, so a link to another team's document would make them read or write that team's data
 * under this team's name. Every link is checked against `documents` before it is opened.
 */
import { isValidAutomergeUrl, parseAutomergeUrl, type AutomergeUrl } from "@automerge/automerge-repo";
import type { DocKind } from "../../shared/docs.js";
import type { DocRecord } from "./access.js";
import type { DocumentRegistry } from "./registry.js";

export class ForeignDocumentError extends Error {
  constructor(
    readonly team: string,
    readonly documentId: string,
    readonly kind: DocKind,
    readonly reason: string,
  ) {
    super(`team ${team}: ${kind} document ${documentId} refused: ${reason}`);
    this.name = "ForeignDocumentError";
  }
}

/** Why a document registered as `rec` may not serve as the team's `kind` document; null when it may. */
export function linkRefusal(team: string, kind: DocKind, rec: DocRecord | null): string | null {
  if (!rec) return "not registered to any team";
  if (rec.team !== team) return `registered to team ${rec.team}`;
  if (rec.kind !== kind) return `registered as ${rec.kind}, not ${kind}`;
  return null;
}

/** The link as a URL once `documents` registers it to `team` as `kind`; throws ForeignDocumentError otherwise. */
export async function checkedLink(registry: DocumentRegistry, team: string, kind: DocKind, link: unknown): Promise<AutomergeUrl> {
  if (typeof link !== "string" || !isValidAutomergeUrl(link)) {
    throw new ForeignDocumentError(team, String(link).slice(0, 80), kind, "not an Automerge URL");
  }
  const { documentId } = parseAutomergeUrl(link);
  const reason = linkRefusal(team, kind, await registry.lookup(documentId));
  if (reason !== null) throw new ForeignDocumentError(team, documentId, kind, reason);
  return link;
}
