import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  DEFAULT_SETTINGS,
  GRANT_SCOPE,
  decideBatch,
  parseEntry,
  parseSettings,
  planGrants,
  reservedFor,
  spentOf,
  type BatchInput,
  type LedgerState,
  type Verdict,
} from "../../../shared/domain/index.js";
import { AT, NOW, item, sale, stateWith } from "./fixtures.js";

const ITEM = "i1";

function grant(id: string, holder: string, granted: number): BatchInput {
  return { key: id, raw: { id, kind: "allowance", at: AT, device: "server", user: "materializer", item: ITEM, holder, granted }, scope: GRANT_SCOPE, owner: null };
}

function claimed(id: string, device: string, quantity: number, claim: number | undefined, owner = device, at = AT): BatchInput {
  const line: Record<string, unknown> = { item: ITEM, quantity, price: 100 };
  if (claim !== undefined) line.claim = claim;
  return { key: id, raw: sale(id, [line as { item: string; quantity: number; price: number }], { device, at }), scope: `seg-${owner}`, owner };
}

function run(state: LedgerState, batch: BatchInput[]): { state: LedgerState; verdicts: Verdict[] } {
  return decideBatch(state, batch, DEFAULT_SETTINGS, NOW);
}

function statusOf(verdicts: Verdict[], id: string): string | undefined {
  return verdicts.find((v) => v.id === id)?.status;
}

describe("allowance grants", () => {
  it("are accepted from the materializer's scope only, and never beyond unreserved stock", () => {
    const s0 = stateWith([item(ITEM)], { [ITEM]: 10 });
    const forged: BatchInput = { ...grant("g-forged", "tab-1", 5), scope: "seg-tab-1", owner: "tab-1" };
    const r = run(s0, [grant("g1", "tab-1", 6), forged, grant("g2", "tab-2", 5)]);
    expect(statusOf(r.verdicts, "g1")).toBe("accepted");
    expect(r.verdicts.find((v) => v.id === "g-forged")?.reason).toContain("granted by the materializer only; a device may give back only its own");
    expect(r.verdicts.find((v) => v.id === "g2")?.reason).toBe("insufficient stock for allowance of item i1 to device tab-2: requested 5, unreserved 4");
    expect(reservedFor(r.state.allowances, ITEM)).toBe(6);
  });

  it("can be given back by their own device, down to the units it sold, and the rest is free stock again", () => {
    const back = (id: string, device: string, owner: string, granted: number): BatchInput => ({
      key: id, raw: { id, kind: "allowance", at: AT, device, user: "u", item: ITEM, holder: device, granted }, scope: `seg-${owner}`, owner,
    });
    const s1 = run(stateWith([item(ITEM)], { [ITEM]: 10 }), [grant("g1", "tab-1", 8)]).state;
    const s2 = run(s1, [claimed("s1", "tab-1", 3, 0)]).state;
    const r = run(s2, [back("r-forged", "tab-1", "tab-2", 3), back("r-low", "tab-1", "tab-1", 2), back("r1", "tab-1", "tab-1", 3)]);
    expect(statusOf(r.verdicts, "r-forged")).toBe("rejected");
    expect(r.verdicts.find((v) => v.id === "r-low")?.reason).toBe("allowance of item i1 for device tab-1: units up to 3 are sold, cannot give back below");
    expect(statusOf(r.verdicts, "r1")).toBe("accepted");
    expect(reservedFor(r.state.allowances, ITEM)).toBe(0);
    expect(statusOf(run(r.state, [claimed("s2", "tab-2", 7, undefined)]).verdicts, "s2")).toBe("accepted");
  });

  it("keep reserved units from sales without a claim and from write-offs", () => {
    const s1 = run(stateWith([item(ITEM)], { [ITEM]: 10 }), [grant("g1", "tab-1", 8)]).state;
    const r = run(s1, [claimed("s-other", "tab-2", 3, undefined)]);
    expect(r.verdicts[0]?.reason).toBe("insufficient stock for item i1: requested 3, available 2 (8 held in devices' offline allowances)");
    const w = run(s1, [{ key: "w1", raw: { id: "w1", kind: "stock", at: AT, device: "tab-2", user: "u", item: ITEM, delta: -5, reason: "damaged" } }]);
    expect(w.verdicts[0]?.status).toBe("rejected");
  });

  it("honour a claim once: the same units in a second entry, or in a team mate's forged entry, come from the pool", () => {
    const s1 = run(stateWith([item(ITEM)], { [ITEM]: 4 }), [grant("g1", "tab-1", 3)]).state;
    const forged = claimed("forged", "tab-1", 3, 0, "tab-2");
    const r = run(s1, [forged, claimed("real", "tab-1", 3, 0, "tab-1", "2025-01-12T11:00:00.000Z"), claimed("twice", "tab-1", 3, 0, "tab-1", "2025-01-12T12:00:00.000Z")]);
    // The forged one had only the single unreserved unit to take from.
    expect(statusOf(r.verdicts, "forged")).toBe("rejected");
    expect(statusOf(r.verdicts, "real")).toBe("accepted");
    expect(r.verdicts.find((v) => v.id === "twice")?.reason).toMatch(/^insufficient stock for item i1: requested 3, available 1/);
    expect(r.state.stock[ITEM]).toBe(1);
  });

  it("hostile claims and grants are invalid with a reason, never honoured", () => {
    const line = (claim: unknown) => ({ ...sale("s-bad", [{ item: ITEM, quantity: 1, price: 100 }]), lines: [{ item: ITEM, quantity: 1, price: 100, claim }] });
    for (const [claim, reason] of [
      [-1, "lines[0].claim must be an integer between 0 and 1000000000"],
      [1.5, "lines[0].claim must be an integer between 0 and 1000000000"],
      ["0", "lines[0].claim must be an integer between 0 and 1000000000"],
      [2 ** 60, "lines[0].claim must be an integer between 0 and 1000000000"],
    ] as const) {
      expect(parseEntry("s-bad", line(claim))).toEqual({ ok: false, reason: `entry s-bad: ${reason}` });
    }
    const g = { id: "g-bad", kind: "allowance", at: AT, device: "x", user: "x", item: ITEM, holder: "tab-1", granted: -5 };
    expect(parseEntry("g-bad", g)).toEqual({ ok: false, reason: "entry g-bad: granted must be an integer between 0 and 1000000000" });
    const { holder: _h, ...noHolder } = g;
    expect(parseEntry("g-bad", { ...noHolder, granted: 5 })).toEqual({ ok: false, reason: "entry g-bad: holder is required" });
  });

  it("settings: allowances parse, and a bad value says what is wrong", () => {
    const ok = parseSettings({ allowances: { items: "all", atRisk: "refuse" } });
    expect(ok.ok && ok.settings.allowances).toEqual({ items: "all", atRisk: "refuse", sharePercent: 80 });
    expect(parseSettings({ allowances: { items: "x" } })).toEqual({ ok: false, reason: 'settings: allowances.items must be "all" or a list of at most 10000 item ids' });
    expect(parseSettings({ allowances: { sharePercent: 120 } }).ok).toBe(false);
  });

  it("planGrants tops devices up by demand and never plans beyond the share", () => {
    const plan = planGrants({
      items: [{ item: ITEM, stock: 100, allowances: [] }],
      devices: ["tab-2", "tab-1"],
      recentSales: new Map([[`${ITEM}/tab-1`, 3]]),
      sharePercent: 80,
    });
    expect(plan).toEqual([{ item: ITEM, holder: "tab-1", granted: 64 }, { item: ITEM, holder: "tab-2", granted: 16 }]);
  });
});

describe("property: sales within allowances, any delivery", () => {
  it("every sale within its device's allowance is accepted; stock never negative; totals balance", () => {
    const arb = fc.record({
      stock: fc.integer({ min: 0, max: 40 }),
      devices: fc.integer({ min: 1, max: 4 }),
      // Per device: quantities of its offline sales (some will go beyond its allowance).
      sales: fc.array(fc.array(fc.integer({ min: 1, max: 4 }), { maxLength: 8 }), { minLength: 4, maxLength: 4 }),
      extra: fc.array(fc.integer({ min: 1, max: 3 }), { maxLength: 5 }),
      seed: fc.integer(),
      cuts: fc.array(fc.integer({ min: 1, max: 40 }), { maxLength: 6 }),
      duplicates: fc.array(fc.nat(), { maxLength: 6 }),
    });
    fc.assert(
      fc.property(arb, ({ stock, devices, sales, extra, seed, cuts, duplicates }) => {
        const names = Array.from({ length: devices }, (_, i) => `tab-${i}`);
        let state = stateWith([item(ITEM)], { [ITEM]: stock });
        const plan = planGrants({ items: [{ item: ITEM, stock, allowances: [] }], devices: names, recentSales: new Map(), sharePercent: 80 });
        state = run(state, plan.map((g, i) => grant(`g${i}`, g.holder, g.granted))).state;
        const granted = new Map(plan.map((g) => [g.holder, g.granted]));

        // Offline: each device claims units in order while its allowance lasts, then sells at risk.
        const entries: BatchInput[] = [];
        const within = new Set<string>();
        names.forEach((d, di) => {
          let next = 0;
          sales[di]!.forEach((q, si) => {
            const id = `s-${d}-${si}`;
            const at = `2025-01-12T1${si}:0${di}:00.000Z`;
            if (next + q <= (granted.get(d) ?? 0)) {
              entries.push(claimed(id, d, q, next, d, at));
              within.add(id);
              next += q;
            } else entries.push(claimed(id, d, q, undefined, d, at));
          });
          // Every other device gives back what it did not sell, after its sales (as a device does).
          if (di % 2 === 1 && next < (granted.get(d) ?? 0)) {
            const id = `r-${d}`;
            entries.push({ key: id, raw: { id, kind: "allowance", at: "2025-01-12T19:00:00.000Z", device: d, user: "u", item: ITEM, holder: d, granted: next }, scope: `seg-${d}`, owner: d });
          }
        });
        // Other hazards: the gateway selling from the pool, a team mate forging device 0's claims.
        extra.forEach((q, i) => entries.push(claimed(`gw-${i}`, "gateway", q, undefined)));
        entries.push(claimed("forged", "tab-0", 2, 0, "tab-1"));
        // Replays: an entry delivered again (another segment carrying it).
        for (const d of duplicates) if (entries.length > 0) entries.push({ ...entries[d % entries.length]!, scope: "copy" });

        // A delivery order and a partition into batches, from the seed and cuts.
        let x = seed >>> 0;
        const rand = (): number => ((x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 2 ** 32);
        const order = entries.map((e) => ({ e, k: rand() })).sort((a, b) => a.k - b.k).map((o) => o.e);
        const bounds = [...new Set(cuts.map((c) => c % (order.length + 1)))].sort((a, b) => a - b);
        const verdicts = new Map<string, Verdict>();
        let from = 0;
        for (const to of [...bounds, order.length]) {
          const r = run(state, order.slice(from, to));
          state = r.state;
          for (const v of r.verdicts) if (!verdicts.has(v.id)) verdicts.set(v.id, v);
          from = to;
          expect(state.stock[ITEM]).toBeGreaterThanOrEqual(reservedFor(state.allowances, ITEM));
        }
        for (const id of within) expect(verdicts.get(id)?.status, id).toBe("accepted");
        for (const [id, v] of verdicts) if (id.startsWith("r-")) expect(v.status, id).toBe("accepted");
        const sold = [...verdicts.values()].filter((v) => v.status === "accepted" && v.entry?.kind === "sale")
          .reduce((n, v) => n + (v.entry?.kind === "sale" ? v.entry.lines[0]!.quantity : 0), 0);
        expect(state.stock[ITEM]).toBe(stock - sold);
        expect(state.stock[ITEM]).toBeGreaterThanOrEqual(0);
        // What is still held for devices plus what was sold never exceeds what was there.
        expect(reservedFor(state.allowances, ITEM) + sold).toBeLessThanOrEqual(stock);
        const spent = Object.values(state.allowances ?? {}).reduce((n, a) => n + spentOf(a), 0);
        expect(spent).toBe([...within].reduce((n, id) => n + (verdicts.get(id)?.entry?.kind === "sale" ? (verdicts.get(id)!.entry as { lines: { quantity: number }[] }).lines[0]!.quantity : 0), 0));
      }),
      { numRuns: 300 },
    );
  });
});
