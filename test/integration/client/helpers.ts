/**
 * Client test helpers: an in-process relay (the relay suite's harness), teams with device
 * tokens, temp data folders, and "what does the relay hold" read from the relay's own Repo.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { AutomergeUrl } from "@automerge/automerge-repo";
import type { Db } from "mongodb";
import type { Device } from "../../../client/device.js";
import { openDevice } from "../../../client/node.js";
import { readSegments, segmentEntries } from "../../../client/read-docs.js";
import { accounts } from "../../../server/accounts/store.js";
import type { CreatedTeam } from "../../../server/relay/teams.js";
import { startTestRelay, type TestRelay } from "../relay/harness.js";

export { startTestRelay, type TestRelay };

export interface TestTeam extends CreatedTeam {
  token(device: string, user?: string): string;
  /** Records the device as enrolled for the user (what the service checks before certifying its key). */
  enroll(device: string, user?: string): Promise<void>;
}

export async function createTeam(relay: TestRelay, team: string): Promise<TestTeam> {
  const created = await relay.service.teams.createTeam(team);
  const acc = accounts(relay.db.db);
  return {
    ...created,
    token: (device, user = `clerk-${device}`) => relay.token({ sub: user, team, role: "member", device }),
    async enroll(device, user = `clerk-${device}`) {
      await acc.enrollDevice({ team, device, user, enrolledBy: "test" });
    },
  };
}

/**
 * Records a device as enrolled for its user, which the service checks before it certifies the
 * device's key for peer links. Before the device opens: an online device asks for its
 * certificate by itself as soon as it reaches the service.
 */
export async function enrollForPeers(db: Db, team: string, device: string, user = `clerk-${device}`): Promise<void> {
  await accounts(db).enrollDevice({ team, device, user, enrolledBy: "test" }).catch((err: unknown) => {
    if (!(err instanceof Error && /already enrolled/.test(err.message))) throw err;
  });
}

const dirs: string[] = [];
export async function tmpDir(prefix: string): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), `client-${prefix}-`));
  dirs.push(d);
  return d;
}
export async function removeTmpDirs(): Promise<void> {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
}

/** Entry ids the relay holds for a team, read from the relay's Repo (its storage). */
export async function relayEntries(relay: TestRelay, registryUrl: AutomergeUrl): Promise<{ segments: string[]; entries: Set<string> }> {
  const repo = relay.service.repo;
  const registry = await repo.find<unknown>(registryUrl);
  const segments = readSegments(registry.doc());
  const entries = new Set<string>();
  for (const url of segments.values()) {
    try {
      const h = await repo.find<unknown>(url, { allowableStates: ["ready", "unavailable"] });
      if (!h.isReady()) continue;
      for (const [id] of segmentEntries(h.doc())) entries.add(id);
    } catch {
      // Not on the relay (yet).
    }
  }
  return { segments: [...segments.keys()], entries };
}

export async function eventually(check: () => boolean | Promise<boolean>, what: string, ms = 30_000, stepMs = 100): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/** A device of the shop's team (materializer harness) opened on its relay, trusting the service's key. */
export async function shopDevice(shop: { relay: TestRelay; team: CreatedTeam }, id: string): Promise<Device> {
  return openDevice({
    serverUrl: shop.relay.service.url,
    token: shop.relay.token({ sub: `clerk-${id}`, team: shop.team.team, role: "member", device: id }),
    rootUrl: shop.team.rootUrl,
    deviceId: id,
    dataDir: await tmpDir(id),
    publicKeyPem: shop.relay.service.tokens.publicKeyPem,
    backoff: { baseMs: 100, maxMs: 1000 },
  });
}

/**
 * A device of `team` ready for peer links: enrolled (before it opens: an online device asks for
 * its certificate at once), opened on the relay, its key certified.
 */
export async function certifiedDevice(relay: TestRelay, team: TestTeam, id: string, backoff = { baseMs: 100, maxMs: 1000 }): Promise<Device> {
  await team.enroll(id);
  const d = await openDevice({
    serverUrl: relay.service.url, token: team.token(id), rootUrl: team.rootUrl, deviceId: id,
    dataDir: await tmpDir(id), publicKeyPem: relay.service.tokens.publicKeyPem, backoff,
  });
  await d.peers.certify();
  return d;
}
