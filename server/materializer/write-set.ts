/**
 * Writes whole documents by key. `replaceAll` sends two commands per collection per chunk: a
 * bulk of `deleteOne` by `_id`, then `insertMany`. Each delete is an index lookup on MongoDB and on our
 * FerretDB build (tools/ferretdb/sqlite-id-index.patch); `deleteMany` with `$in` would scan the
 * collection on FerretDB, and a bulk of upserts there stalls the server (measured: 200
 * `replaceOne` upserts in one bulk never answered, while 200 `deleteOne` took 68 ms).
 */
import { MongoBulkWriteError, type AnyBulkWriteOperation, type ClientSession, type Collection, type Document, type Filter, type OptionalUnlessRequiredId } from "mongodb";

const CHUNK = 1000;
/** Point lookups in flight at once; the driver's pool is 100 connections. */
const LOOKUP_CONCURRENCY = 16;
/** Single upserts in flight at once. */
const UPSERT_CONCURRENCY = 4;

export interface ReadOptions {
  session?: ClientSession | undefined;
  /** Look documents up one `_id` at a time instead of with `$in` (see DatabaseFeatures). */
  pointLookups?: boolean | undefined;
}

/**
 * The documents with these `_id`s. FerretDB (our build) answers `_id` equality from its `_id` index but
 * scans (and decodes) the whole collection for `$in`; there, many small lookups are far cheaper.
 */
export async function findByIds<T extends Document & { _id: string }>(
  coll: Collection<T>,
  ids: readonly string[],
  opts: ReadOptions = {},
): Promise<T[]> {
  if (ids.length === 0) return [];
  const session = opts.session ? { session: opts.session } : {};
  if (!opts.pointLookups) {
    return (await coll.find({ _id: { $in: [...ids] } } as Parameters<Collection<T>["find"]>[0], session).toArray()) as T[];
  }
  const out: T[] = [];
  for (let i = 0; i < ids.length; i += LOOKUP_CONCURRENCY) {
    // `_id` alone: any further condition makes FerretDB scan again (filter in code instead).
    const found = await Promise.all(
      ids.slice(i, i + LOOKUP_CONCURRENCY).map((id) => coll.findOne({ _id: id } as Parameters<Collection<T>["findOne"]>[0], session)),
    );
    for (const d of found) if (d) out.push(d as T);
  }
  return out;
}

/**
 * Replaces whole documents by key, one `replaceOne` upsert each, so no document is ever absent
 * or half-written: for documents that hold accumulated state (aggregate parts, summaries,
 * balances), which a kill between `replaceAll`'s delete and insert would lose for good. Not a
 * bulk: a bulk of upserts stalls FerretDB; single upserts answer like any update by `_id`.
 */
export async function upsertEach<T extends Document & { _id: string }>(
  coll: Collection<T>,
  docs: Iterable<T>,
  session?: ClientSession,
  /** Called after each group of concurrent writes (the crash tests' pause point). */
  afterGroup?: () => Promise<void>,
): Promise<void> {
  const all = [...docs];
  const opts = session ? { session } : {};
  for (let i = 0; i < all.length; i += UPSERT_CONCURRENCY) {
    await Promise.all(
      all.slice(i, i + UPSERT_CONCURRENCY).map((d) => coll.replaceOne({ _id: d._id } as Filter<T>, d, { upsert: true, ...opts })),
    );
    await afterGroup?.();
  }
}

/**
 * Replaces documents that a replay of their journal records rewrites whole (entries, invoices,
 * stock levels): a kill between the delete and the insert leaves one missing until `catchUp`
 * writes it again from the same records. Accumulated state goes through `upsertEach`.
 */
export async function replaceAll<T extends Document & { _id: string }>(
  coll: Collection<T>,
  docs: Iterable<T>,
  session?: ClientSession,
): Promise<void> {
  const opts = session ? { session } : {};
  await inChunks(docs, async (chunk) => {
    await coll.bulkWrite(
      chunk.map((d): AnyBulkWriteOperation<T> => ({ deleteOne: { filter: { _id: d._id } as Filter<T> } })),
      { ordered: false, ...opts },
    );
    await coll.insertMany(chunk as OptionalUnlessRequiredId<T>[], { ordered: false, ...opts });
  });
}

async function inChunks<T>(docs: Iterable<T>, write: (chunk: T[]) => Promise<void>): Promise<void> {
  const all = [...docs];
  for (let i = 0; i < all.length; i += CHUNK) await write(all.slice(i, i + CHUNK));
}

/**
 * `replaceAll` for documents that are mostly new (one per journal record: verdicts, movements,
 * rejections, payments, new invoices): one unordered `insertMany`, then `replaceAll` of only
 * those whose `_id` was there already (a replay after a crash, a payment's invoice). One round
 * trip instead of two in the common case; the end state is `replaceAll`'s.
 */
export async function insertOrReplace<T extends Document & { _id: string }>(coll: Collection<T>, docs: Iterable<T>, session?: ClientSession): Promise<void> {
  await inChunks(docs, async (chunk) => {
    const present = await insertNew(coll, chunk, session ? { session } : {});
    if (present.length > 0) await replaceAll(coll, present, session);
  });
}

/** Inserts `docs`, unordered; gives back those refused only because their `_id` exists. */
async function insertNew<T extends Document & { _id: string }>(coll: Collection<T>, docs: T[], opts: { session?: ClientSession }): Promise<T[]> {
  try {
    await coll.insertMany(docs as OptionalUnlessRequiredId<T>[], { ordered: false, ...opts });
    return [];
  } catch (err) {
    if (!(err instanceof MongoBulkWriteError)) throw err;
    const errors = Array.isArray(err.writeErrors) ? err.writeErrors : [err.writeErrors];
    if (errors.length === 0 || errors.some((e) => e.code !== 11000)) throw err;
    return errors.map((e) => docs[e.index]!);
  }
}

/** Inserts the documents whose `_id` is not there yet, leaving existing ones untouched. */
export async function insertMissing<T extends Document & { _id: string }>(coll: Collection<T>, docs: Iterable<T>, read: ReadOptions = {}): Promise<void> {
  const all = [...docs];
  const opts = read.session ? { session: read.session } : {};
  for (let i = 0; i < all.length; i += CHUNK) {
    const chunk = all.slice(i, i + CHUNK);
    const have = new Set((await findByIds(coll, chunk.map((d) => d._id), read)).map((d) => d._id));
    const missing = chunk.filter((d) => !have.has(d._id));
    if (missing.length > 0) await coll.insertMany(missing as OptionalUnlessRequiredId<T>[], { ordered: false, ...opts });
  }
}
