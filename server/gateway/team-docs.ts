/**
 * A team's server-side documents as the gateway needs them: the root (settings), the catalog it
 * edits and the segment registry it registers its segments in, found through the relay's Repo.
 */
import type { AutomergeUrl, DocHandle, Repo } from "@automerge/automerge-repo";
import type { CatalogDoc, SegmentRegistryDoc, TeamRootDoc } from "../../shared/docs.js";
import { parseCustomer, parseGroup, parseItem, parseSettings, DEFAULT_SETTINGS, type Customer, type Group, type Item, type TeamSettings } from "../../shared/domain/index.js";
import { checkedLink } from "../relay/links.js";
import type { DocumentRegistry } from "../relay/registry.js";
import { ApiError } from "../http/route.js";

export interface TeamDocs {
  team: string;
  rootUrl: AutomergeUrl;
  catalog: DocHandle<CatalogDoc>;
  registry: DocHandle<SegmentRegistryDoc>;
  settings: TeamSettings;
}

export interface CatalogView {
  items: Map<string, Item>;
  groups: Map<string, Group>;
  customers: Map<string, Customer>;
}

/** Automerge proxies are read through plain copies, so the shared parsers see ordinary objects. */
function plain(raw: unknown): unknown {
  return raw === undefined ? undefined : JSON.parse(JSON.stringify(raw)) as unknown;
}

export function readCatalog(doc: CatalogDoc): CatalogView {
  const view: CatalogView = { items: new Map(), groups: new Map(), customers: new Map() };
  for (const [id, raw] of Object.entries(doc.items ?? {})) {
    const p = parseItem(id, plain(raw));
    if (p.ok) view.items.set(id, p.item);
  }
  for (const [id, raw] of Object.entries(doc.groups ?? {})) {
    const p = parseGroup(id, plain(raw));
    if (p.ok) view.groups.set(id, p.group);
  }
  for (const [id, raw] of Object.entries(doc.customers ?? {})) {
    const p = parseCustomer(id, plain(raw));
    if (p.ok) view.customers.set(id, p.customer);
  }
  return view;
}

interface TeamRefs {
  rootUrl: AutomergeUrl;
  catalog: AutomergeUrl;
  registry: AutomergeUrl;
}

function settingsOf(root: TeamRootDoc): TeamSettings {
  const parsed = parseSettings(plain(root.settings));
  return parsed.ok ? parsed.settings : { ...DEFAULT_SETTINGS };
}

/**
 * Only URLs are cached: the relay unloads idle documents, so a handle kept here could be one the
 * Repo has let go of. `repo.find` of a loaded document is cheap. Settings are read from the root
 * each time, since admins change them through the API. Links are checked against the registry
 * (a ForeignDocumentError is not cached, so the check runs again on the next request).
 */
export function teamDocsLoader(repo: Repo, registry: DocumentRegistry): (team: string) => Promise<TeamDocs> {
  const cache = new Map<string, Promise<TeamRefs>>();
  const load = async (team: string): Promise<TeamRefs> => {
    const rec = await registry.getTeam(team);
    if (!rec) throw new ApiError(404, "no-such-team", `team ${team} does not exist`);
    const rootUrl = await checkedLink(registry, team, "team-root", `automerge:${rec.rootDocumentId}`);
    const r = (await repo.find<TeamRootDoc>(rootUrl)).doc();
    return { rootUrl, catalog: await checkedLink(registry, team, "catalog", r.catalog), registry: await checkedLink(registry, team, "segment-registry", r.registry) };
  };
  const refs = (team: string): Promise<TeamRefs> => {
    let p = cache.get(team);
    if (!p) {
      p = load(team);
      cache.set(team, p);
      // A failed load (team not created yet) is not remembered.
      p.catch(() => cache.delete(team));
    }
    return p;
  };
  return async (team) => {
    const r = await refs(team);
    return {
      team,
      rootUrl: r.rootUrl,
      catalog: await repo.find<CatalogDoc>(r.catalog),
      registry: await repo.find<SegmentRegistryDoc>(r.registry),
      settings: settingsOf((await repo.find<TeamRootDoc>(r.rootUrl)).doc()),
    };
  };
}
