/**
 * A device reduced to what load generation needs: a plain Repo with a member token that owns
 * ledger segments, registers them in the team's segment registry, and appends entries. Many of
 * these fit in one process where full client Devices (which hold every segment of the team)
 * would not; the full client is measured on its own in reconnect and the cold pull.
 */
import type { AutomergeUrl, DocHandle } from "@automerge/automerge-repo";
import type { CreatedTeam } from "../../server/relay/teams.js";
import type { LedgerSegmentDoc, SegmentRegistryDoc } from "../../shared/docs.js";
import type { LedgerEntry } from "../../shared/domain/index.js";
import { connect, type Client } from "./client.js";
import { saleEntry } from "./fixtures.js";
import type { RelayProcess } from "./servers.js";

export class LightDevice {
  client!: Client;
  readonly segments: DocHandle<LedgerSegmentDoc>[] = [];
  private registry!: DocHandle<SegmentRegistryDoc>;

  constructor(
    readonly relay: RelayProcess,
    readonly team: CreatedTeam,
    readonly id: string,
  ) {}

  get user(): string {
    return `user-${this.id}`;
  }

  async online(): Promise<void> {
    this.client = await connect(this.relay.dial({ sub: this.user, team: this.team.team, role: "member", device: this.id }), this.id);
    this.registry = await this.client.repo.find<SegmentRegistryDoc>(this.team.registryUrl);
  }

  /** Adds a segment (prebuilt bytes, or a new empty one) and registers it as `<id>/<n>`. */
  addSegment(bytes?: Uint8Array): DocHandle<LedgerSegmentDoc> {
    const n = this.segments.length;
    const handle = bytes
      ? this.client.repo.import<LedgerSegmentDoc>(bytes)
      : this.client.repo.create<LedgerSegmentDoc>({ type: "ledger-segment", team: this.team.team, device: this.id, n, createdAt: new Date().toISOString(), entries: {} });
    const url: AutomergeUrl = handle.url;
    this.registry.change((d) => {
      d.segments[`${this.id}/${n}`] = url;
    });
    this.segments.push(handle);
    return handle;
  }

  /** Lists segments the relay already holds (seeded) in the registry as `<id>/<n>`, without loading them. */
  listSegments(urls: readonly AutomergeUrl[]): void {
    this.registry.change((d) => {
      urls.forEach((url, n) => {
        d.segments[`${this.id}/${n}`] = url;
      });
    });
  }

  write(entry: LedgerEntry): void {
    const seg = this.segments.at(-1) ?? this.addSegment();
    seg.change((d) => {
      d.entries[entry.id] = JSON.parse(JSON.stringify(entry)) as unknown;
    });
  }

  handles(): DocHandle<unknown>[] {
    return [...this.segments, this.registry] as DocHandle<unknown>[];
  }

  close(): Promise<void> {
    return this.client.close();
  }
}

/**
 * Every device writes one sale each `periodMs` for `seconds`, staggered evenly over the period so
 * writes arrive as a steady stream rather than in bursts. Returns when the time is up, with the
 * wall-clock moment each entry was written.
 */
export async function writeSalesSteadily(devices: readonly LightDevice[], periodMs: number, seconds: number): Promise<Map<string, number>> {
  const writtenAt = new Map<string, number>();
  const started = Date.now();
  const timers = devices.map((d, i) =>
    setTimeout(function tick() {
      if (Date.now() - started > seconds * 1000) return;
      const e = saleEntry(d.id, d.user);
      writtenAt.set(e.id, Date.now());
      d.write(e);
      timers[i] = setTimeout(tick, periodMs);
    }, Math.floor((i / devices.length) * periodMs)),
  );
  await new Promise((r) => setTimeout(r, seconds * 1000));
  for (const t of timers) clearTimeout(t);
  return writtenAt;
}
