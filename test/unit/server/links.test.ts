/** Link checks and foreign-row detection: the pure parts, on every way a link can be wrong. */
import { describe, expect, it } from "vitest";
import type { DocRecord } from "../../../server/relay/access.js";
import { linkRefusal } from "../../../server/relay/links.js";
import { catalogRows, notInCatalog } from "../../../server/materializer/catalog-rows.js";

const rec = (team: string, kind: DocRecord["kind"]): DocRecord => ({ _id: "doc1", team, kind, readOnly: false, createdAt: new Date(0) });

describe("linkRefusal", () => {
  it("accepts a document registered to the team as that kind", () => {
    expect(linkRefusal("a", "catalog", rec("a", "catalog"))).toBeNull();
  });
  it("names why anything else is refused", () => {
    expect(linkRefusal("a", "catalog", null)).toBe("not registered to any team");
    expect(linkRefusal("a", "catalog", rec("b", "catalog"))).toBe("registered to team b");
    expect(linkRefusal("a", "status", rec("a", "ledger-segment"))).toBe("registered as ledger-segment, not status");
  });
});

describe("catalog rows", () => {
  const catalog = {
    type: "catalog" as const,
    team: "a",
    items: { tea: { id: "tea", name: "Tea", price: 300, unit: "pcs", group: null, description: "", active: true }, junk: { name: 1 } },
    groups: { g1: { id: "g1", name: "Drinks" } },
    customers: { c1: { id: "c1", name: "Ravi", phone: null } },
  };

  it("are the catalog's valid entries, keyed by team", () => {
    const rows = catalogRows("a", catalog, "2026-11-28T00:00:00.000Z");
    expect(rows.items).toEqual([{ _id: "a:tea", team: "a", id: "tea", name: "Tea", price: 300, unit: "pcs", group: null, description: "", active: true, source: "catalog", updatedAt: "2026-11-28T00:00:00.000Z" }]);
    expect(rows.groups.map((g) => g._id)).toEqual(["a:g1"]);
    expect(rows.customers.map((c) => c._id)).toEqual(["a:c1"]);
  });

  it("a row whose id the catalog map lacks is foreign", () => {
    expect(notInCatalog(["tea", "b-secret", "junk"], catalog.items)).toEqual(["b-secret"]);
    expect(notInCatalog(["x"], undefined)).toEqual(["x"]);
  });
});
