/**
 * A relay on 127.0.0.1, an in-process materializer connected to it as a service peer, and
 * devices that write their ledger segments offline and then connect: the shape of a shop.
 */
import { randomUUID } from "node:crypto";
import { Repo, type AutomergeUrl, type DocHandle, type PeerId } from "@automerge/automerge-repo";
import { pino } from "pino";
import type { CatalogDoc, LedgerSegmentDoc, SegmentRegistryDoc, StatusDoc, TeamRootDoc, VerdictsDoc } from "../../../shared/docs.js";
import { readVerdicts } from "../../../client/read-docs.js";
import { loadOrCreateKeys } from "../../../server/auth/keys.js";
import { createCheckpointSigner } from "../../../server/audit/signer.js";
import type { Anchoring, CheckpointPolicy } from "../../../server/materializer/anchor.js";
import { Materializer, type MaterializerOptions } from "../../../server/materializer/materializer.js";
import type { CreatedTeam } from "../../../server/relay/teams.js";
import type { LedgerEntry } from "../../../shared/domain/index.js";
import { databaseInfo } from "../../helpers/db.js";
import { connectClient, eventually, QuietClientAdapter, startTestRelay, type TestClient, type TestRelay } from "../relay/harness.js";

export { eventually };

export interface Shop {
  relay: TestRelay;
  team: CreatedTeam;
  materializer: Materializer;
  service: TestClient;
  admin: TestClient;
  close(): Promise<void>;
}

/** Materializer options for the shop's materializer, and checkpoints signed with the relay's key. */
export interface ShopOptions extends Partial<MaterializerOptions> {
  /** Sign journal checkpoints with the relay's key, as the materializer process does. */
  checkpoints?: CheckpointPolicy;
}

/** The anchoring the materializer process sets up: the service key from the relay's data folder. */
export async function anchoringOf(relay: TestRelay, policy: CheckpointPolicy): Promise<Anchoring> {
  const keys = await loadOrCreateKeys({ privateKeyPem: undefined, publicKeyPem: undefined, dataDir: relay.dataDir });
  return { signer: createCheckpointSigner(keys), publicKeyPem: keys.publicKeyPem, policy };
}

export async function startShop(teamId = `shop${randomUUID().slice(0, 8)}`, settings: Record<string, unknown> = {}, opts: ShopOptions = {}): Promise<Shop> {
  const relay = await startTestRelay();
  const team = await relay.service.teams.createTeam(teamId, settings);
  const service = await connectClient(relay.service.syncUrl, relay.token({ sub: "materializer", team: "*", role: "service" }));
  const { checkpoints, ...extra } = opts;
  const materializer = new Materializer({
    ...(checkpoints ? { anchor: await anchoringOf(relay, checkpoints) } : {}),
    db: relay.db.db,
    client: relay.db.client,
    features: databaseInfo().features,
    repo: service.repo,
    logger: pino({ level: "warn" }),
    teamPollMs: 200,
    ...extra,
    statementKeyPem: (await loadOrCreateKeys({ privateKeyPem: undefined, publicKeyPem: undefined, dataDir: relay.dataDir })).privateKeyPem,
  });
  await materializer.start();
  const admin = await connectClient(relay.service.syncUrl, relay.token({ sub: "boss", team: teamId, role: "admin", device: "office" }));
  return {
    relay,
    team,
    materializer,
    service,
    admin,
    async close() {
      await materializer.stop();
      await admin.close();
      await service.close();
      await relay.close();
    },
  };
}

/** A device with its own ledger segment; it may write before it has ever connected. */
export class Device {
  readonly repo: Repo;
  segment!: DocHandle<LedgerSegmentDoc>;
  private n = 0;

  constructor(
    readonly shop: Shop,
    readonly id: string,
    readonly user = `user-${id}`,
  ) {
    this.repo = new Repo({ network: [], peerId: `${id}-${randomUUID().slice(0, 6)}` as PeerId });
  }

  /** Connects to the relay, fetches the team's documents and registers the segment. */
  async online(): Promise<void> {
    const token = this.shop.relay.token({ sub: this.user, team: this.shop.team.team, role: "member", device: this.id });
    const adapter = new QuietClientAdapter(`${this.shop.relay.service.syncUrl}?token=${encodeURIComponent(token)}`, 300);
    this.repo.networkSubsystem.addNetworkAdapter(adapter);
    await new Promise<void>((resolve) => this.repo.networkSubsystem.once("peer", () => resolve()));
    const registry = await this.repo.find<SegmentRegistryDoc>(this.shop.team.registryUrl);
    const segmentUrl = this.segment.url;
    registry.change((d) => {
      d.segments[`${this.id}/0`] = segmentUrl;
    });
  }

  /** Writes an entry as the device would (or, for hostile tests, anything at all under `entries`). */
  write(entry: { kind: LedgerEntry["kind"] | string; id?: string; at?: string; [field: string]: unknown }): string {
    if (!this.segment) {
      this.segment = this.repo.create<LedgerSegmentDoc>({
        type: "ledger-segment", team: this.shop.team.team, device: this.id, n: 0, createdAt: new Date().toISOString(), entries: {},
      });
    }
    const id = entry.id ?? randomUUID();
    const at = entry.at ?? new Date(Date.UTC(2026, 10, 22, 9, 0, this.n++)).toISOString();
    const full = { ...entry, id, at, device: this.id, user: this.user };
    this.segment.change((d) => {
      d.entries[id] = JSON.parse(JSON.stringify(full)) as unknown;
    });
    return id;
  }

  async verdict(entryId: string): Promise<{ status: string; reason?: string } | undefined> {
    const status = await this.repo.find<StatusDoc>(this.shop.team.statusUrl);
    const url = status.doc().verdicts[this.segment.url];
    if (!url) return undefined;
    const verdicts = await this.repo.find<VerdictsDoc>(url);
    return readVerdicts(verdicts.doc()).get(entryId);
  }

  async close(): Promise<void> {
    await this.repo.shutdown().catch(() => undefined);
  }
}

export async function addItem(shop: Shop, id: string, name: string, price: number): Promise<void> {
  const catalog = await shop.admin.repo.find<CatalogDoc>(shop.team.catalogUrl);
  catalog.change((d) => {
    d.items[id] = { id, name, price, unit: "pcs", group: null, description: "", active: true };
  });
}

export function sale(item: string, quantity: number, price: number, extra: { paid?: number; customer?: string | null } = {}) {
  const subtotal = quantity * price;
  return {
    kind: "sale" as const,
    lines: [{ item, quantity, price }],
    subtotal, tax: 0, discount: 0, total: subtotal,
    customer: extra.customer ?? null, paid: extra.paid ?? 0,
  };
}

/** Waits until these entries are journaled and the projections have caught up with them. */
export async function settled(shop: Shop, entryIds: readonly string[], ms = 30_000): Promise<void> {
  const { c } = shop.materializer;
  const team = shop.team.team;
  await eventually(async () => {
    const records = await c.journal.find({ team, entryId: { $in: [...entryIds] } }).toArray();
    if (records.length !== entryIds.length) return false;
    const seq = Math.max(...records.map((r) => r.seq));
    return ((await c.teamState.findOne({ _id: team }))?.projectedSeq ?? 0) >= seq;
  }, `entries ${entryIds.length} decided and projected`, ms);
}

export async function rootOf(shop: Shop): Promise<TeamRootDoc> {
  return (await shop.admin.repo.find<TeamRootDoc>(shop.team.rootUrl)).doc();
}

export type { AutomergeUrl };
