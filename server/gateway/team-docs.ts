/**
 * A team's server-side documents as the gateway needs them: the root (settings), the catalog it
 * edits and the segment registry it registers its segments in, found through the relay's Repo.
 */
import type { AutomergeUrl, DocHandle, Repo } from "@automerge/automerge-repo";
import type { CatalogDoc, SegmentRegistryDoc, TeamRootDoc } from "../../shared/docs.js";
import { parseCustomer, parseGroup, parseItem, parseSettings, DEFAULT_SETTINGS, type Customer, type Group, type Item, type TeamSettings } from "../../shared/domain/index.js";
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
  settings: TeamSettings;
}

/**
 * Only URLs and settings are cached: the relay unloads idle documents, so a handle kept here
 * could be one the Repo has let go of. `repo.find` of a loaded document is cheap.
 */
export function teamDocsLoader(repo: Repo, registry: DocumentRegistry): (team: string) => Promise<TeamDocs> {
  const cache = new Map<string, Promise<TeamRefs>>();
  const load = async (team: string): Promise<TeamRefs> => {
    const rec = await registry.getTeam(team);
    if (!rec) throw new ApiError(404, "no-such-team", `team ${team} does not exist`);
    const rootUrl = `automerge:${rec.rootDocumentId}` as AutomergeUrl;
    const root = await repo.find<TeamRootDoc>(rootUrl);
    const r = root.doc();
    const parsed = parseSettings(plain(r.settings));
    return { rootUrl, catalog: r.catalog, registry: r.registry, settings: parsed.ok ? parsed.settings : { ...DEFAULT_SETTINGS } };
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
      settings: r.settings,
    };
  };
}
