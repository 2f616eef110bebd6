/**
 * Replaces whole documents by key with two commands per collection (deleteMany by `_id` + insertMany),
 * whatever the number of documents. FerretDB v1 runs every update as a scan of its collection
 * (measured: ~60 ms per replaceOne at 5,000 documents), so per-document upserts make a batch cost
 * grow with the square of the data; two commands per batch keep it linear. On MongoDB it is as
 * cheap as a bulk of upserts.
 */
import type { ClientSession, Collection, Document, OptionalUnlessRequiredId } from "mongodb";

const CHUNK = 1000;

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
export async function insertMissing<T extends Document & { _id: string }>(coll: Collection<T>, docs: Iterable<T>, session?: ClientSession): Promise<void> {
  const all = [...docs];
  const opts = session ? { session } : {};
  for (let i = 0; i < all.length; i += CHUNK) {
    const chunk = all.slice(i, i + CHUNK);
    const have = new Set(
      (await coll.find({ _id: { $in: chunk.map((d) => d._id) } } as Parameters<Collection<T>["find"]>[0], { projection: { _id: 1 }, ...opts }).toArray()).map(
        (d) => String(d._id),
      ),
    );
    const missing = chunk.filter((d) => !have.has(d._id));
    if (missing.length > 0) await coll.insertMany(missing as OptionalUnlessRequiredId<T>[], { ordered: false, ...opts });
  }
}
