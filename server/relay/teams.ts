/**
 * Teams and their server-owned documents (DESIGN.md "Documents"): creating a team creates its
 * root, segment registry, catalog and status, and registers each to the team before any peer
 * can ask for it.
 */
import type { AutomergeUrl, DocumentId, Repo } from "@automerge/automerge-repo";
import type { CatalogDoc, DocKind, SegmentRegistryDoc, StatusDoc, TeamRootDoc } from "../../shared/docs.js";
import { isTeamId } from "../../shared/auth/claims.js";
import { parseSettings as parseTeamSettings } from "../../shared/domain/index.js";
import type { DocumentRegistry } from "./registry.js";

export type TeamSettings = TeamRootDoc["settings"];

export const DEFAULT_TEAM_SETTINGS: TeamSettings = { oversell: "reject", deferWaitSeconds: 7 * 24 * 3600, closeAfterHours: null };

export interface CreatedTeam {
  team: string;
  rootUrl: AutomergeUrl;
  catalogUrl: AutomergeUrl;
  registryUrl: AutomergeUrl;
  statusUrl: AutomergeUrl;
}

/** Errors with a stable code and an HTTP status, safe to show to clients. */
export class TeamError extends Error {
  constructor(
    readonly code: "invalid-team" | "team-exists" | "no-such-team" | "invalid-kind" | "invalid-settings",
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "TeamError";
  }
}

const READ_ONLY: Record<DocKind, boolean> = {
  "team-root": true,
  "segment-registry": false,
  catalog: false,
  "ledger-segment": false,
  status: true,
  verdicts: true,
};

export interface Teams {
  createTeam(teamId: string, settings?: Partial<TeamSettings>): Promise<CreatedTeam>;
  /** Registers a document made elsewhere (the materializer's verdict documents) to a team. */
  registerDocument(teamId: string, documentId: string, kind: DocKind, owner?: string): Promise<void>;
  rootUrl(teamId: string): Promise<AutomergeUrl | null>;
  /**
   * Changes some settings: the server writes them to the root, which only it may change (admins
   * come through the HTTP API), and the materializer and devices pick them up from there.
   */
  updateSettings(teamId: string, patch: Record<string, unknown>): Promise<TeamSettings>;
}

export function createTeams(repo: Repo, registry: DocumentRegistry): Teams {
  async function register(team: string, documentId: DocumentId | string, kind: DocKind, owner?: string): Promise<void> {
    const rec = await registry.register({
      _id: documentId,
      team,
      kind,
      readOnly: READ_ONLY[kind],
      ...(owner ? { owner } : {}),
      createdAt: new Date(),
    });
    if (rec.team !== team) throw new TeamError("invalid-team", 409, `document ${documentId} belongs to another team`);
  }

  return {
    async createTeam(teamId, partial = {}) {
      if (!isTeamId(teamId)) throw new TeamError("invalid-team", 400, `team id ${JSON.stringify(teamId)}: expected [a-z0-9][a-z0-9_-]{0,62}`);
      if (await registry.getTeam(teamId)) throw new TeamError("team-exists", 409, `team ${teamId} exists`);
      const settings = parseSettings(partial);
      const now = new Date().toISOString();
      // The catalog's maps are created here, once: devices creating them concurrently would hide
      // each other's contents (DESIGN.md).
      const catalog = repo.create<CatalogDoc>({ type: "catalog", team: teamId, items: {}, groups: {}, customers: {} });
      const registryDoc = repo.create<SegmentRegistryDoc>({ type: "segment-registry", team: teamId, segments: {} });
      const status = repo.create<StatusDoc>({
        type: "status",
        team: teamId,
        seq: 0,
        stock: {},
        invoices: {},
        verdicts: {},
        updatedAt: now,
      });
      const root = repo.create<TeamRootDoc>({
        type: "team-root",
        team: teamId,
        catalog: catalog.url,
        registry: registryDoc.url,
        status: status.url,
        settings,
        createdAt: now,
      });
      await register(teamId, catalog.documentId, "catalog");
      await register(teamId, registryDoc.documentId, "segment-registry");
      await register(teamId, status.documentId, "status");
      await register(teamId, root.documentId, "team-root");
      await repo.flush([catalog.documentId, registryDoc.documentId, status.documentId, root.documentId]);
      await registry.insertTeam({ _id: teamId, rootDocumentId: root.documentId, settings: { ...settings }, createdAt: new Date() });
      return { team: teamId, rootUrl: root.url, catalogUrl: catalog.url, registryUrl: registryDoc.url, statusUrl: status.url };
    },
    async registerDocument(teamId, documentId, kind, owner) {
      if (!(await registry.getTeam(teamId))) throw new TeamError("no-such-team", 404, `team ${teamId} does not exist`);
      if (!(kind in READ_ONLY)) throw new TeamError("invalid-kind", 400, `unknown document kind ${JSON.stringify(kind)}`);
      await register(teamId, documentId, kind, owner);
    },
    async updateSettings(teamId, patch) {
      const rec = await registry.getTeam(teamId);
      if (!rec) throw new TeamError("no-such-team", 404, `team ${teamId} does not exist`);
      if (Object.keys(patch).length === 0) throw new TeamError("invalid-settings", 400, "settings: expected oversell, deferWaitSeconds, closeAfterHours and/or allowances");
      const root = await repo.find<TeamRootDoc>(`automerge:${rec.rootDocumentId}` as AutomergeUrl);
      const current = JSON.parse(JSON.stringify(root.doc().settings ?? {})) as Record<string, unknown>;
      const parsed = parseTeamSettings({ ...current, ...patch });
      if (!parsed.ok) throw new TeamError("invalid-settings", 400, parsed.reason);
      const next = parsed.settings;
      root.change((d) => {
        if (d.settings.oversell !== next.oversell) d.settings.oversell = next.oversell;
        if (d.settings.deferWaitSeconds !== next.deferWaitSeconds) d.settings.deferWaitSeconds = next.deferWaitSeconds;
        if ((d.settings.closeAfterHours ?? null) !== next.closeAfterHours) d.settings.closeAfterHours = next.closeAfterHours;
        if (next.allowances && JSON.stringify(d.settings.allowances) !== JSON.stringify(next.allowances)) {
          d.settings.allowances = { ...next.allowances, items: next.allowances.items === "all" ? "all" : [...next.allowances.items] };
        }
      });
      await repo.flush([root.documentId]);
      await registry.setTeamSettings(teamId, { ...next });
      return { ...next };
    },
    async rootUrl(teamId) {
      const team = await registry.getTeam(teamId);
      return team ? (`automerge:${team.rootDocumentId}` as AutomergeUrl) : null;
    },
  };
}

function parseSettings(partial: Partial<TeamSettings>): TeamSettings {
  const out = { ...DEFAULT_TEAM_SETTINGS };
  if (partial.oversell !== undefined) {
    if (partial.oversell !== "reject" && partial.oversell !== "allow-negative") {
      throw new TeamError("invalid-team", 400, "settings.oversell: expected reject or allow-negative");
    }
    out.oversell = partial.oversell;
  }
  if (partial.deferWaitSeconds !== undefined) {
    const n = partial.deferWaitSeconds;
    if (!Number.isInteger(n) || n < 0 || n > 365 * 24 * 3600) {
      throw new TeamError("invalid-team", 400, "settings.deferWaitSeconds: expected an integer from 0 to one year");
    }
    out.deferWaitSeconds = n;
  }
  if (partial.closeAfterHours !== undefined) {
    const parsed = parseTeamSettings({ closeAfterHours: partial.closeAfterHours });
    if (!parsed.ok) throw new TeamError("invalid-team", 400, parsed.reason);
    out.closeAfterHours = parsed.settings.closeAfterHours;
  }
  return out;
}
