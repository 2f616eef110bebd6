import { describe, expect, it } from "vitest";
import {
  DEFAULT_SETTINGS,
  effectsOf,
  emptyProjection,
  foldEffects,
  provisionalView,
} from "../../../shared/domain/index.js";
import { decide, input, item, payment, sale, stateWith, stock, voidEntry } from "./fixtures.js";

const DAY2 = "2025-01-13T09:00:00.000Z";

function scenario() {
  const s0 = stateWith([item("i1"), item("i2")], { i1: 10, i2: 10 });
  const r1 = decide(s0, [
    sale("s1", [{ item: "i1", quantity: 2, price: 100 }], { customer: "c1", paid: 50 }),
    sale("s2", [{ item: "i2", quantity: 1, price: 300 }], { customer: "c1" }),
    sale("s3", [{ item: "i1", quantity: 1, price: 100 }], { customer: "c2", paid: 100 }),
  ]);
  const r2 = decide(r1.state, [payment("p1", "s1", 150, DAY2), voidEntry("v1", "s2", DAY2), stock("k1", "i2", 5, DAY2)]);
  return { r1, r2, effects: [...effectsOf(r1.verdicts), ...effectsOf(r2.verdicts)] };
}

describe("foldEffects", () => {
  it("computes stock, invoices, customer balances and daily summaries", () => {
    const { r1, effects } = scenario();
    const mid = foldEffects(emptyProjection(), effectsOf(r1.verdicts));
    expect(mid.customerBalances).toEqual({ c1: 150 + 300, c2: 0 });
    expect(mid.daily["2025-01-12"]).toEqual({ salesCount: 3, revenue: 600, paymentsReceived: 150, outstanding: 450 });

    const p = foldEffects(emptyProjection(), effects);
    expect(p.stock).toEqual({ i1: 7, i2: 15 });
    expect(p.invoices.s1).toMatchObject({ paid: 200, outstanding: 0, status: "finalized" });
    expect(p.invoices.s2).toMatchObject({ status: "void", outstanding: 0 });
    expect(p.customerBalances).toEqual({ c1: 0, c2: 0 });
    expect(p.daily["2025-01-12"]).toEqual({ salesCount: 2, revenue: 300, paymentsReceived: 150, outstanding: 0 });
    expect(p.daily["2025-01-13"]).toEqual({ salesCount: 0, revenue: 0, paymentsReceived: 150, outstanding: 0 });
    expect(Object.keys(p.purchases).sort()).toEqual(["s1", "s3"]);
    expect(p.payments.p1).toMatchObject({ invoice: "s1", amount: 150 });
  });

  it("is idempotent: replaying effects after a crash changes nothing", () => {
    const { effects } = scenario();
    const once = foldEffects(emptyProjection(), effects);
    expect(foldEffects(once, effects)).toEqual(once);
  });

  it("folding one by one equals folding all at once, and does not mutate its input", () => {
    const { effects } = scenario();
    const start = emptyProjection();
    const stepwise = effects.reduce((p, e) => foldEffects(p, [e]), start);
    expect(stepwise).toEqual(foldEffects(start, effects));
    expect(start).toEqual(emptyProjection());
  });

  it("records items created by sale lines", () => {
    const r = decide(stateWith([]), [sale("s1", [{ item: "n1", quantity: 1, price: 5, name: "Tea" }])]);
    expect(foldEffects(emptyProjection(), effectsOf(r.verdicts)).items).toEqual({ n1: { id: "n1", name: "Tea", price: 5, active: true } });
  });
});

describe("provisionalView", () => {
  it("adds a device's own undecided entries, decided tentatively, to the authoritative figures", () => {
    const { r1 } = scenario();
    const authoritative = { state: r1.state, projection: foldEffects(emptyProjection(), effectsOf(r1.verdicts)) };
    const own = [payment("p9", "s2", 100, DAY2), sale("s9", [{ item: "i1", quantity: 99, price: 1 }])].map(input);
    const view = provisionalView(authoritative, own, DEFAULT_SETTINGS, DAY2);
    expect(view.verdicts.map((v) => [v.id, v.status])).toEqual([["s9", "rejected"], ["p9", "accepted"]]);
    expect(view.projection.customerBalances.c1).toBe(350);
    expect(view.projection.stock.i1).toBe(7);
    expect(authoritative.projection.customerBalances.c1).toBe(450);
  });

  it("shows nothing new for entries the server already decided", () => {
    const { r1 } = scenario();
    const projection = foldEffects(emptyProjection(), effectsOf(r1.verdicts));
    const view = provisionalView({ state: r1.state, projection }, [input(sale("s1", [{ item: "i1", quantity: 2, price: 100 }], { customer: "c1", paid: 50 }))], DEFAULT_SETTINGS, DAY2);
    expect(view.verdicts).toEqual([]);
    expect(view.projection).toEqual(projection);
  });
});
