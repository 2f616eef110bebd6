/**
 * Materializer leases (issue 17), with real materializer processes on one relay and database and
 * no MATERIALIZER_TEAMS split:
 *  - two instances share two teams, each team decided by exactly one of them;
 *  - SIGKILL of an instance: the other takes its teams within the lease time and decides what
 *    the devices write next;
 *  - SIGSTOP of the holder past its lease: a third instance takes over; after SIGCONT the stalled
 *    one stops its teams and never writes again (its lease epoch shows no write after it resumed);
 * and through it all every journal stays gapless, each entry decided once, the chain verifying.
 */
import type { ChildProcess } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CatalogDoc } from "../../../shared/docs.js";
import { collections, type Collections } from "../../../server/materializer/collections.js";
import { verifyJournal } from "../../../server/materializer/journal.js";
import { FencedError, Leases, LEASES_COLLECTION } from "../../../server/materializer/leases.js";
import type { CreatedTeam } from "../../../server/relay/teams.js";
import { connectClient, eventually, startTestRelay, type TestClient, type TestRelay } from "../relay/harness.js";
import { Device, sale, type Shop } from "./harness.js";
import { spawnMaterializer } from "./process.js";

const LEASE_MS = 4000;
const TEAMS = ["lease-a", "lease-b"] as const;

interface Instance {
  name: string;
  proc: ChildProcess;
  /** Teams this instance logged "team materializing" for, in order. */
  started: string[];
  lost: string[];
}

let relay: TestRelay;
let c: Collections;
const live = new Set<ChildProcess>();
const devices = new Map<string, Device>();
const admins: TestClient[] = [];
const written = new Map<string, string[]>();

async function setUpTeam(team: CreatedTeam): Promise<void> {
  const admin = await connectClient(relay.service.syncUrl, relay.token({ sub: "boss", team: team.team, role: "admin", device: "office" }));
  admins.push(admin);
  const catalog = await admin.repo.find<CatalogDoc>(team.catalogUrl);
  catalog.change((d) => {
    d.items.tea = { id: "tea", name: "Tea", price: 100, unit: "pcs", group: null, description: "", active: true };
  });
  const device = new Device({ relay, team } as unknown as Shop, `till-${team.team}`);
  devices.set(team.team, device);
  written.set(team.team, []);
  write(team.team, 5);
  await device.online();
}

let n = 0;
/** Entries the materializers must decide: stock in, then sales of one unit each. */
function write(team: string, count: number): void {
  const device = devices.get(team)!;
  for (let i = 0; i < count; i++) {
    const id = `e-${n++}`;
    const at = new Date(Date.UTC(2026, 10, 1, 8, 0, n)).toISOString();
    device.write(i === 0 ? { id, kind: "stock", item: "tea", delta: 100, reason: "delivery", at } : { id, ...sale("tea", 1, 100), at });
    written.get(team)!.push(id);
  }
}

async function startMaterializer(name: string): Promise<Instance> {
  const started: string[] = [];
  const lost: string[] = [];
  const onLine = (line: string): void => {
    let parsed: { msg?: string; team?: string } = {};
    try {
      parsed = JSON.parse(line) as typeof parsed;
    } catch {
      return;
    }
    if (parsed.msg === "team materializing" && parsed.team) started.push(parsed.team);
    if (parsed.msg === "team lease lost: stopped deciding this team" && parsed.team) lost.push(parsed.team);
  };
  const m = await spawnMaterializer(relay, { MATERIALIZER_LEASE_MS: String(LEASE_MS) }, { onLine, readyMs: 60_000 });
  live.add(m.proc);
  m.proc.once("exit", () => live.delete(m.proc));
  return { name, proc: m.proc, started, lost };
}

const signal = (p: ChildProcess, sig: NodeJS.Signals): Promise<void> =>
  new Promise((resolve) => {
    if (p.exitCode !== null || p.signalCode !== null) return resolve();
    if (sig !== "SIGKILL" && sig !== "SIGTERM") {
      p.kill(sig);
      return resolve();
    }
    p.once("exit", () => resolve());
    p.kill(sig);
  });

/** Every entry written so far is journaled once, in a gapless chain that verifies. */
async function allDecided(team: string, ms = 120_000): Promise<void> {
  const want = written.get(team)!;
  await eventually(async () => (await c.journal.countDocuments({ team })) >= want.length, `${team}: ${want.length} entries journaled`, ms);
  const records = await c.journal.find({ team }).sort({ seq: 1 }).toArray();
  expect(records.map((r) => r.entryId).sort()).toEqual([...want].sort());
  expect(records.map((r) => r.seq)).toEqual(records.map((_, i) => i + 1));
  expect((await verifyJournal(c, team)).breaks).toEqual([]);
}

beforeAll(async () => {
  relay = await startTestRelay();
  c = collections(relay.db.db);
  for (const t of TEAMS) await setUpTeam(await relay.service.teams.createTeam(t));
}, 120_000);

afterAll(async () => {
  for (const p of live) {
    p.kill("SIGCONT");
    p.kill("SIGKILL");
  }
  for (const d of devices.values()) await d.close();
  for (const a of admins) await a.close();
  await relay?.close();
});

describe("materializer leases", () => {
  it("share the teams, take over a killed instance's teams, and fence a stalled one", async () => {
    const one = await startMaterializer("one");
    const two = await startMaterializer("two");
    for (const t of TEAMS) await allDecided(t);
    // Each team started by exactly one instance, also two lease periods on (a window is the
    // only way to see that something does not happen): nobody decides a team another holds.
    await new Promise((r) => setTimeout(r, 2 * LEASE_MS));
    for (const t of TEAMS) {
      const holders = [one, two].filter((i) => i.started.includes(t));
      expect(holders.map((h) => h.name), `instances deciding ${t}`).toHaveLength(1);
    }

    // SIGKILL whoever holds lease-a; the other takes its teams within the lease (plus its poll).
    const victim = one.started.includes("lease-a") ? one : two;
    const survivor = victim === one ? two : one;
    const victimTeams = [...victim.started];
    const killedAt = Date.now();
    await signal(victim.proc, "SIGKILL");
    for (const t of TEAMS) write(t, 5);
    await eventually(() => victimTeams.every((t) => survivor.started.includes(t)), `${survivor.name} takes ${victimTeams.join(", ")}`, 60_000);
    const takeoverMs = Date.now() - killedAt;
    console.log(`[leases] takeover after SIGKILL: ${takeoverMs} ms (lease ${LEASE_MS} ms)`);
    // Generous for a busy machine, but bounded: the lease, a poll, a team start.
    expect(takeoverMs).toBeLessThan(LEASE_MS + 30_000);
    for (const t of TEAMS) await allDecided(t);

    // SIGSTOP the survivor (holding every team now) past its lease: a third instance takes over.
    const third = await startMaterializer("three");
    await signal(survivor.proc, "SIGSTOP");
    const stoppedAt = Date.now();
    await eventually(() => TEAMS.every((t) => third.started.includes(t)), "three takes every team from the stalled one", 60_000);
    expect(Date.now() - stoppedAt).toBeGreaterThanOrEqual(LEASE_MS - 500);
    for (const t of TEAMS) write(t, 5);
    for (const t of TEAMS) await allDecided(t);

    // The stalled one comes back with its old leases: it must notice and never write.
    const resumedAt = new Date();
    await signal(survivor.proc, "SIGCONT");
    for (const t of TEAMS) write(t, 5);
    await eventually(() => TEAMS.every((t) => survivor.lost.includes(t)), "the resumed instance gives up its stale teams", 60_000);
    for (const t of TEAMS) await allDecided(t);
    const epochs = await relay.db.db.collection<{ team: string; owner: string; token: number; lastWriteAt?: Date }>(LEASES_COLLECTION).find({ token: { $exists: true }, owner: { $exists: true } }).toArray();
    for (const t of TEAMS) {
      const mine = epochs.filter((e) => e.team === t).sort((a, b) => a.token - b.token);
      const stale = mine.at(-2)!;
      // The stalled instance's epoch records no journal write after it resumed.
      expect(stale.lastWriteAt === undefined || stale.lastWriteAt < resumedAt, `${t}: stale epoch ${stale.token} wrote after resuming`).toBe(true);
      expect(mine.at(-1)!.token).toBeGreaterThan(stale.token);
    }
    await signal(third.proc, "SIGTERM");
    await signal(survivor.proc, "SIGTERM");
  }, 420_000);
});

describe("lease records on the database", () => {
  it("one holder at a time, racing takers included; the old holder is fenced with its token in the error", async () => {
    let clock = Date.UTC(2026, 10, 1);
    const make = (owner: string) => new Leases(relay.db.db, { owner, leaseMs: 1000, now: () => clock });
    const a = make("a");
    const b = make("b");
    expect(await a.acquire("fence-team")).toBe(1);
    expect(await b.acquire("fence-team")).toBeNull();
    await a.check("fence-team");

    clock += 1500; // a stalled past its lease
    const racers = Array.from({ length: 6 }, (_, i) => make(`r${i}`));
    const tokens = await Promise.all(racers.map((r) => r.acquire("fence-team")));
    expect(tokens.filter((t) => t !== null)).toEqual([2]);
    const fenced = await a.check("fence-team").catch((err: unknown) => err);
    expect(fenced).toBeInstanceOf(FencedError);
    expect((fenced as Error).message).toBe("team fence-team: lease 1 no longer held (expired or taken over); not writing");
    expect(await a.renew("fence-team")).toBe(false);

    // The same instance restarted (same name, a new process) takes its lease back at once,
    // and its previous process, were it still alive, is fenced.
    const winner0 = racers[tokens.indexOf(2)]!;
    const restarted = make(winner0.opts.owner);
    expect(await restarted.acquire("fence-team")).toBe(3);
    await expect(winner0.check("fence-team")).rejects.toThrow("team fence-team: lease 2 no longer held");
    expect(await b.acquire("fence-team")).toBeNull();

    // A clean stop hands the team on at once.
    await restarted.release("fence-team");
    expect(await b.acquire("fence-team")).toBe(4);
  }, 60_000);
});
