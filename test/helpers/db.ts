import { randomBytes } from "node:crypto";
import { MongoClient, type Db } from "mongodb";
import { inject } from "vitest";

export interface TestDb {
  uri: string;
  dbName: string;
  client: MongoClient;
  db: Db;
  /** Drops the database and closes the client. */
  close(): Promise<void>;
}

/** A database of its own for one test file (or test), on the run's shared server. */
export async function freshDb(prefix = "t"): Promise<TestDb> {
  const uri = inject("mongoUri");
  const dbName = `${prefix}_${randomBytes(6).toString("hex")}`;
  const client = new MongoClient(uri);
  await client.connect();
  const db = client.db(dbName);
  return {
    uri,
    dbName,
    client,
    db,
    close: async () => {
      await db.dropDatabase().catch(() => undefined);
      await client.close();
    },
  };
}

export function databaseInfo() {
  return inject("database");
}
