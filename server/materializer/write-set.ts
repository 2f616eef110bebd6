/**
 * Replaces whole documents by key with two commands per collection (deleteMany by `_id` + insertMany),
 * whatever the number of documents. FerretDB v1 runs every update as a scan of its collection
 * (measured: ~60 ms per replaceOne at 5,000 documents), so per-document upserts make a batch cost
 * grow with the square of the data; two commands per batch keep it linear. On MongoDB it is as
 * cheap as a bulk of upserts.
 */
import type { ClientSession, Collection, Document, OptionalUnlessRequiredId } from "mongodb";

const CHUNK = 1000;
/** Point lookups in flight at once; the driver's pool is 100 connections. */
const LOOKUP_CONCURRENCY = 16;

export interface ReadOptions {
  session?: ClientSession | undefined;
  /** Look documents up one `_id` at a time instead of with `$in` (see DatabaseFeatures). */
  pointLookups?: boolean | undefined;
}

/**
 * The documents with these `_id`s. FerretDB answers `_id` equality from its primary key but
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

export async function replaceAll<T extends Document & { _id: string }>(coll: Collection<T>, docs: Iterable<T>, session?: ClientSession): Promise<void> {
  const all = [...docs];
  const opts = session ? { session } : {};
  for (let i = 0; i < all.length; i += CHUNK) {
    const chunk = all.slice(i, i + CHUNK);
    const ids = chunk.map((d) => d._id);
    await coll.deleteMany({ _id: { $in: ids } } as Parameters<Collection<T>["deleteMany"]>[0], opts);
    await coll.insertMany(chunk as OptionalUnlessRequiredId<T>[], { ordered: false, ...opts });
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
