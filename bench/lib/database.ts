/**
 * The bench's database: MONGODB_URI when given, else the embedded default the service itself
 * would start (FerretDB v1 here), once per run, with a fresh database name per measurement.
 */
import { randomBytes } from "node:crypto";
import { MongoClient, type Db } from "mongodb";
import { resolveDatabase, type DatabaseHandle } from "../../server/db/resolve.js";
import { benchDir } from "./servers.js";

export interface BenchDatabase {
  handle: DatabaseHandle;
  client: MongoClient;
  /** A new database name (and handle) for one measurement. */
  fresh(prefix: string): { name: string; db: Db };
  close(): Promise<void>;
}

export async function openBenchDatabase(): Promise<BenchDatabase> {
  const handle = await resolveDatabase({ dataDir: await benchDir("db"), uri: process.env.MONGODB_URI });
  const client = new MongoClient(handle.uri);
  await client.connect();
  const used: string[] = [];
  return {
    handle,
    client,
    fresh(prefix) {
      const name = `bench_${prefix}_${randomBytes(4).toString("hex")}`;
      used.push(name);
      return { name, db: client.db(name) };
    },
    async close() {
      for (const name of used) await client.db(name).dropDatabase().catch(() => undefined);
      await client.close();
      await handle.stop();
    },
  };
}
