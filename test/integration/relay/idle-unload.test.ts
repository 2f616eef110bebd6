/**
 * The relay unloads documents nobody touched for RELAY_IDLE_UNLOAD_MS. An unloaded document must
 * come back whole from disk when a peer asks again: the team's documents the relay created
 * itself (catalog, root) as well as a segment a device brought, changed or not since. Measured
 * before the fix: the reloaded root was empty, and in a 100,000-entry bench run the catalog's
 * file had become an empty document (automerge-repo saved the unloaded, emptied handle).
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { Repo, type AutomergeUrl } from "@automerge/automerge-repo";
import type { CatalogDoc, LedgerSegmentDoc, SegmentRegistryDoc, TeamRootDoc } from "../../../shared/docs.js";
import { createFileStorage } from "../../../server/relay/storage.js";
import type { CreatedTeam } from "../../../server/relay/teams.js";
import { connectClient, eventually, startTestRelay, type TestClient, type TestRelay } from "./harness.js";

let relay: TestRelay;
let team: CreatedTeam;
const clients: TestClient[] = [];

beforeAll(async () => {
  relay = await startTestRelay({ idleUnloadMs: 300 });
  team = await relay.service.teams.createTeam("idle-shop");
});

afterAll(async () => {
  for (const c of clients) await c.close();
  await relay?.close();
});

async function client(device: string): Promise<TestClient> {
  const c = await connectClient(relay.service.syncUrl, relay.token({ sub: `u-${device}`, team: "idle-shop", role: "member", device }));
  clients.push(c);
  return c;
}

it("serves every document whole after unloading it, whether or not it changed after its creation", async () => {
  const tablet = await client("tablet");
  const root = await tablet.repo.find<TeamRootDoc>(team.rootUrl);
  const registry = await tablet.repo.find<SegmentRegistryDoc>(team.registryUrl);
  const segment = tablet.repo.create<LedgerSegmentDoc>({ type: "ledger-segment", team: "idle-shop", device: "tablet", n: 0, createdAt: new Date().toISOString(), entries: {} });
  registry.change((d) => {
    d.segments["tablet/0"] = segment.url;
  });
  segment.change((d) => {
    d.entries.e1 = { kind: "note" };
  });
  // The catalog is left as the relay created it: read, never changed.
  const catalog = await tablet.repo.find<CatalogDoc>(team.catalogUrl);
  expect(Object.keys(catalog.doc().items)).toEqual([]);
  await eventually(async () => {
    const held = await relay.service.repo.find<LedgerSegmentDoc>(segment.url);
    return Object.hasOwn(held.doc().entries, "e1");
  }, "the relay holds the segment's entry");
  await tablet.close();
  clients.splice(clients.indexOf(tablet), 1);

  await eventually(() => Object.keys(relay.service.repo.handles).length === 0, "the relay unloads every idle document", 10_000);

  // What matters most is the relay's disk: a Repo reading its folder sees every document whole.
  const disk = new Repo({ network: [], storage: createFileStorage(relay.dataDir) });
  try {
    const stored = async <T,>(url: AutomergeUrl): Promise<T> => (await disk.find<T>(url, { signal: AbortSignal.timeout(5000) })).doc();
    expect((await stored<CatalogDoc>(team.catalogUrl)).type).toBe("catalog");
    expect((await stored<TeamRootDoc>(team.rootUrl)).catalog).toBe(team.catalogUrl);
    expect((await stored<SegmentRegistryDoc>(team.registryUrl)).segments["tablet/0"]).toBe(segment.url);
    expect((await stored<LedgerSegmentDoc>(segment.url)).entries.e1).toEqual({ kind: "note" });
  } finally {
    await disk.shutdown();
  }

  const fresh = await client("new-tablet");
  const open = async <T,>(what: string, url: AutomergeUrl): Promise<T> => {
    try {
      return (await fresh.repo.find<T>(url, { signal: AbortSignal.timeout(10_000) })).doc();
    } catch (err) {
      throw new Error(`the ${what} did not come back after unloading: ${String(err)}`);
    }
  };
  const got = {
    root: await open<TeamRootDoc>("team root", team.rootUrl),
    registry: await open<SegmentRegistryDoc>("segment registry", team.registryUrl),
    segment: await open<LedgerSegmentDoc>("segment", segment.url),
    catalog: await open<CatalogDoc>("catalog", team.catalogUrl),
  };
  expect(got.root.catalog).toBe(team.catalogUrl);
  expect(got.catalog).toMatchObject({ type: "catalog", team: "idle-shop", items: {} });
  expect(got.registry.segments["tablet/0"]).toBe(segment.url);
  expect(got.segment.entries.e1).toEqual({ kind: "note" });
}, 60_000);
