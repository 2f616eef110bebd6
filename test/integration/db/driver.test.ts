/**
 * What the materializer needs from the database, checked against the run's real server with the
 * official driver. The same file runs unchanged against MongoDB (set MONGODB_URI).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MongoBulkWriteError, MongoServerError } from "mongodb";
import { databaseInfo, freshDb, type TestDb } from "../../helpers/db.js";

let t: TestDb;
beforeAll(async () => {
  t = await freshDb("driver");
});
afterAll(async () => {
  await t.close();
});

describe("MongoDB-wire server, as the materializer uses it", () => {
  it("reports what it is and what it supports", async () => {
    const info = databaseInfo();
    expect(["external", "mongod", "memory-server", "ferretdb"]).toContain(info.kind);
    if (info.kind === "ferretdb") {
      expect(info.server).toBe("FerretDB v1.24.2");
      expect(info.features).toEqual({ transactions: false, changeStreams: false, indexedQueries: false });
    }
  });

  it("refuses a duplicate on a unique index with code 11000", async () => {
    const journal = t.db.collection<{ _id: string; team: string; seq: number }>("journal_unique");
    await journal.createIndex({ team: 1, seq: 1 }, { unique: true });
    await journal.insertOne({ _id: "e1", team: "A", seq: 1 });
    const err = await journal.insertOne({ _id: "e2", team: "A", seq: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MongoServerError);
    expect((err as MongoServerError).code).toBe(11000);
    // Same seq in another team is fine: the index is compound.
    await journal.insertOne({ _id: "e3", team: "B", seq: 1 });
    expect(await journal.countDocuments()).toBe(2);
  });

  it("upserts with $set, $setOnInsert and $inc", async () => {
    const stock = t.db.collection<{ _id: string; qty: number; name: string; createdAt: string }>("stock_upsert");
    const up = (qty: number, name: string) =>
      stock.updateOne(
        { _id: "item-1" },
        { $inc: { qty }, $set: { name }, $setOnInsert: { createdAt: "first" } },
        { upsert: true },
      );
    const first = await up(5, "Tea");
    expect(first.upsertedCount).toBe(1);
    await up(-2, "Green tea");
    expect(await stock.findOne({ _id: "item-1" })).toEqual({ _id: "item-1", qty: 3, name: "Green tea", createdAt: "first" });
  });

  it("runs ordered bulkWrite up to the first error, unordered past it", async () => {
    const coll = t.db.collection<{ _id: string; v: number }>("bulk");
    await coll.insertOne({ _id: "dup", v: 0 });
    const ops = [
      { insertOne: { document: { _id: "a", v: 1 } } },
      { insertOne: { document: { _id: "dup", v: 2 } } },
      { insertOne: { document: { _id: "b", v: 3 } } },
    ];
    const ordered = await coll.bulkWrite(ops, { ordered: true }).catch((e: unknown) => e);
    expect(ordered).toBeInstanceOf(MongoBulkWriteError);
    expect(await coll.findOne({ _id: "b" })).toBeNull();

    await coll.deleteMany({ _id: { $in: ["a", "b"] } });
    const unordered = await coll.bulkWrite(ops, { ordered: false }).catch((e: unknown) => e);
    expect(unordered).toBeInstanceOf(MongoBulkWriteError);
    expect((unordered as MongoBulkWriteError).writeErrors).toHaveLength(1);
    expect(await coll.countDocuments()).toBe(3);

    const upserts = await coll.bulkWrite([
      { updateOne: { filter: { _id: "a" }, update: { $set: { v: 10 } }, upsert: true } },
      { updateOne: { filter: { _id: "c" }, update: { $set: { v: 30 } }, upsert: true } },
      { deleteOne: { filter: { _id: "dup" } } },
    ]);
    expect(upserts.upsertedCount).toBe(1);
    expect(upserts.modifiedCount).toBe(1);
    expect(upserts.deletedCount).toBe(1);
    expect(await coll.find().sort({ _id: 1 }).toArray()).toEqual([
      { _id: "a", v: 10 },
      { _id: "b", v: 3 },
      { _id: "c", v: 30 },
    ]);
  });

  it("hands out gapless sequence numbers with findOneAndUpdate", async () => {
    const counters = t.db.collection<{ _id: string; seq: number }>("counters");
    const seqs: number[] = [];
    for (let i = 0; i < 5; i++) {
      const doc = await counters.findOneAndUpdate(
        { _id: "team-A" },
        { $inc: { seq: 1 } },
        { upsert: true, returnDocument: "after" },
      );
      seqs.push(doc?.seq ?? -1);
    }
    expect(seqs).toEqual([1, 2, 3, 4, 5]);
  });

  it("aggregates with $match, $group, $sum and $sort", async () => {
    const sales = t.db.collection<{ team: string; day: string; total: number }>("sales_agg");
    await sales.insertMany([
      { team: "A", day: "2026-11-01", total: 100 },
      { team: "A", day: "2026-11-01", total: 250 },
      { team: "A", day: "2026-11-02", total: 40 },
      { team: "B", day: "2026-11-01", total: 999 },
    ]);
    // One accumulator per $group: FerretDB v1 computes only the first (see the next test).
    const revenue = await sales
      .aggregate<{ _id: string; revenue: number }>([
        { $match: { team: "A" } },
        { $group: { _id: "$day", revenue: { $sum: "$total" } } },
        { $sort: { _id: -1 } },
      ])
      .toArray();
    expect(revenue).toEqual([
      { _id: "2026-11-02", revenue: 40 },
      { _id: "2026-11-01", revenue: 350 },
    ]);
    const counts = await sales
      .aggregate<{ _id: string; count: number }>([
        { $match: { team: "A" } },
        { $group: { _id: "$day", count: { $sum: 1 } } },
        { $sort: { _id: 1 } },
      ])
      .toArray();
    expect(counts).toEqual([
      { _id: "2026-11-01", count: 2 },
      { _id: "2026-11-02", count: 1 },
    ]);
  });

  it("computes several accumulators in one $group on MongoDB, only the first on FerretDB v1", async () => {
    // Pinned here so the README's compatibility note fails loudly if the server changes.
    const coll = t.db.collection<{ d: string; t: number }>("multi_acc");
    await coll.insertMany([{ d: "a", t: 1 }, { d: "a", t: 2 }]);
    const [row] = await coll
      .aggregate<{ r: number; n: number }>([{ $group: { _id: "$d", r: { $sum: "$t" }, n: { $sum: 1 } } }])
      .toArray();
    expect(row?.r).toBe(3);
    expect(row?.n).toBe(databaseInfo().kind === "ferretdb" ? 0 : 2);
  });

  it("counts documents with a filter", async () => {
    const coll = t.db.collection<{ status: string }>("count");
    await coll.insertMany([{ status: "accepted" }, { status: "rejected" }, { status: "accepted" }]);
    expect(await coll.countDocuments({ status: "accepted" })).toBe(2);
    expect(await coll.countDocuments({ status: "deferred" })).toBe(0);
  });

  it("supports transactions exactly when it says so", async () => {
    const info = databaseInfo();
    const coll = t.db.collection<{ _id: string }>("tx");
    await coll.insertOne({ _id: "seed" });
    const session = t.client.startSession();
    const attempt = session
      .withTransaction(async () => {
        await coll.insertOne({ _id: "in-tx" }, { session });
      })
      .then(() => "committed", () => "failed");
    const outcome = await attempt;
    await session.endSession();
    expect(outcome).toBe(info.features.transactions ? "committed" : "failed");
  });

  it("finds, updates and deletes by _id through the _id index (our FerretDB build's patch)", async () => {
    const coll = t.db.collection<{ _id: string; n: number }>("by_id");
    await coll.insertMany(Array.from({ length: 50 }, (_, n) => ({ _id: `team:${n}`, n })));
    const plan = await t.db.command({ explain: { find: "by_id", filter: { _id: "team:42" } } });
    if (databaseInfo().kind === "ferretdb") {
      // Without tools/ferretdb/sqlite-id-index.patch this plan is "SCAN", for every `_id` lookup.
      expect(JSON.stringify(plan.queryPlanner)).toMatch(/USING INDEX \S+__id_/);
    }
    expect(await coll.findOne({ _id: "team:42" })).toEqual({ _id: "team:42", n: 42 });
    expect(await coll.findOne({ _id: "team:missing" })).toBeNull();
    const bulk = await coll.bulkWrite(["team:1", "team:2", "team:missing"].map((_id) => ({ deleteOne: { filter: { _id } } })), { ordered: false });
    expect(bulk.deletedCount).toBe(2);
    expect(await coll.countDocuments({})).toBe(48);
  });
});
